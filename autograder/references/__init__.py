"""Reference implementations the hidden checks compare against (never shipped to students)."""

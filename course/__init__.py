"""Helpers for the course notebooks: data, devices, training loops and plots."""

#!/usr/bin/env bash
# Create (or update) the course environment in .venv with pip: Python 3.11 and pip are all it needs.
# Re-running is cheap: pip only installs what changed. Set COURSE_VENV to use another folder.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${COURSE_VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version.split()[0]'
  echo "Creating $VENV (Python: $("$PY" --version))"
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
# Register the kernel nbgrader and JupyterLab use, inside the environment (no global side effects).
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (odl-course)" >/dev/null
# JupyterLab saves widget state into notebooks, so a saved lecture reopens showing its playgrounds' last figure
# instead of "Error displaying widget: model not found" (the extension's default is not to save it).
OVERRIDES="$VENV/share/jupyter/lab/settings/overrides.json"
if [ ! -e "$OVERRIDES" ]; then
  mkdir -p "$(dirname "$OVERRIDES")"
  printf '{\n  "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": true}\n}\n' > "$OVERRIDES"
fi
echo "Environment ready: $VENV (activate with: source $VENV/bin/activate)"

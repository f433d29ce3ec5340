#!/usr/bin/env bash
# Run a command as a simulated student of `odl-grade exchange init --students ...`: in their home folder,
# with their own Jupyter config (course id, exchange root, student id) and nbgrader cache.
#   scripts/as-student.sh alice nbgrader fetch_assignment 01_pytorch_basics
#   scripts/as-student.sh alice jupyter lab --port 8890     # alice's JupyterLab (Nbgrader > Assignment List)
# Students' homes: $ODL_STUDENTS_DIR (default: .work/students in the current folder, the course folder).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 STUDENT COMMAND [ARG ...]" >&2
  exit 2
fi
student=$1
shift
home="${ODL_STUDENTS_DIR:-$PWD/.work/students}/$student"
if [ ! -f "$home/.jupyter/nbgrader_config.py" ]; then
  echo "$0: no simulated student $student in ${home%/*} (odl-grade exchange init --students $student)" >&2
  exit 2
fi
unset JUPYTER_CONFIG_DIR JUPYTER_DATA_DIR JUPYTER_RUNTIME_DIR JUPYTER_PATH JUPYTER_CONFIG_PATH
export HOME="$home"
cd "$home"
exec "$@"

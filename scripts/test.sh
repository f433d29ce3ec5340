#!/usr/bin/env bash
# Set everything up, then run the whole test suite (extra arguments go to pytest, e.g. -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${COURSE_VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH" MPLBACKEND=Agg COURSE_PROGRESS=0
exec python -m pytest "$@"

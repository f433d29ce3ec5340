#!/usr/bin/env bash
# Set everything up, then run the instructor pipeline demo (release, submit, autograde, feedback, export).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${COURSE_VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH"
exec python -m autograder demo "$@"

#!/usr/bin/env bash
# The test command (README, CI): installs what is missing, then ruff, the
# format check, mypy (strict) and the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
BIN=.venv/bin
"$BIN/ruff" check generator tests bench
"$BIN/ruff" format --check generator tests bench
"$BIN/mypy" generator
"$BIN/pytest" -q "$@"

#!/usr/bin/env bash
# Set up mongrel2 and a venv with wsgid and its test extras, then run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/mongrel2-install.sh
VENV=${WSGID_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -e ".[test]"
# One switch for the mode: the modules of setup.py's COMPILED are built by
# Cython, as installs with a C compiler do, unless WSGID_PURE_PYTHON=1 installs
# them as plain Python (.ci/run runs the suite both ways). tests/test_mode.py
# checks the suite runs in that mode: now, in one line, and again in the suite.
if [ -n "${WSGID_PURE_PYTHON:-}" ]; then
    export WSGID_EXPECT_COMPILED=0
else
    export WSGID_EXPECT_COMPILED=1
fi
"$VENV/bin/python" tests/test_mode.py
# The tests run in WSGID_TEST_PROCESSES processes (pytest-xdist), 3 by default
# on any machine: an end-to-end test mostly waits. 0 runs them in this one
# (for -s or --pdb).
exec "$VENV/bin/python" -m pytest -n "${WSGID_TEST_PROCESSES:-3}" "$@"

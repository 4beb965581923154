#!/usr/bin/env bash
# Set up mongrel2 and a venv with wsgid and its test extras, then run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/mongrel2-install.sh
VENV=${WSGID_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -e ".[test]"
# The suite runs the compiled data path, as installs with a C compiler do
# (.ci/run also runs the plain-Python one).
"$VENV/bin/python" -c 'import sys, wsgid.message as m
sys.exit(0 if m.__file__.endswith(".so") else "wsgid was not compiled (a C compiler and the Python headers are needed): " + m.__file__)'
exec "$VENV/bin/python" -m pytest "$@"

#!/usr/bin/env bash
# Set up mongrel2 and a venv with wsgid and its test extras, then run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/mongrel2-install.sh
VENV=${WSGID_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -e ".[test]"
exec "$VENV/bin/python" -m pytest "$@"

#!/usr/bin/env bash
# The Python venv the tests use, .tools/venv: schemathesis (the API fuzzer, scripts/schemathesis.sh)
# and, through it, `requests` (the half-duplex stream client, test/ops/stream-half-duplex.test.ts).
# Installs schemathesis $SCHEMATHESIS_VERSION from PyPI unless it is already there; prints the
# venv's python. Test files run in parallel, so concurrent callers wait on a lock.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCHEMATHESIS_VERSION=${SCHEMATHESIS_VERSION:-4.32.5}
VENV=${SCHEMATHESIS_VENV:-$ROOT/.tools/venv}

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
  echo "test-venv.sh: installing schemathesis==$SCHEMATHESIS_VERSION into $VENV" >&2
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
echo "$VENV/bin/python"

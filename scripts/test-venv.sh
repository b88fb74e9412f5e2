#!/usr/bin/env bash
# The Python venv the tests use, .tools/venv: schemathesis (the API fuzzer, scripts/schemathesis.sh)
# and, through it, `requests` (the half-duplex stream client, test/ops/stream-half-duplex.test.ts).
# Installs schemathesis $SCHEMATHESIS_VERSION from PyPI unless it is already there; prints the
# venv's python. Test files run in parallel, so concurrent callers wait on a lock.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCHEMATHESIS_VERSION=${SCHEMATHESIS_VERSION:-4.32.5}
VENV=${SCHEMATHESIS_VENV:-$ROOT/.tools/venv}

# The newest CPython 3 that runs here (pyenv's installed versions included): 3.11.7 raised
# "SystemError: AST constructor recursion depth mismatch" inside hypothesis on a draw
# (python/cpython#106905), failing a schemathesis run that found nothing; 3.13 runs that seed clean.
pick_python() {
  local candidate
  for candidate in python3.13 "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3 python3.12 python3; do
    if "$candidate" -c 'import sys' >/dev/null 2>&1; then
      command -v "$candidate"
      return
    fi
  done
}
PYTHON=${TEST_VENV_PYTHON:-$(pick_python)}
version_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
# A venv made with another interpreter is made again.
if [ -x "$VENV/bin/python" ] && [ "$(version_of "$VENV/bin/python")" != "$(version_of "$PYTHON")" ]; then
  rm -rf "$VENV"
fi
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
  echo "test-venv.sh: installing schemathesis==$SCHEMATHESIS_VERSION into $VENV (Python $(version_of "$PYTHON"))" >&2
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
echo "$VENV/bin/python"

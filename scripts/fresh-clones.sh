#!/usr/bin/env bash
# The README's test command as a newcomer runs it, on N fresh clones of this checkout's HEAD
# in a row: `git clone`, then `npm ci && npm test` without CI, DEEP_TESTS or a local-kms endpoint
# (each clone installs its own Python venv and hadolint, and starts its own local-kms). Prints
# one line a clone and the count; exits non-zero if any failed. Logs stay in the work dir.
#
#   scripts/fresh-clones.sh [N]      (default 10; about four minutes a clone on two cores)
set -uo pipefail

N=${1:-10}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fresh-clones.XXXXXX")
head=$(git -C "$ROOT" rev-parse --short HEAD)
pass=0
fail=0
for i in $(seq 1 "$N"); do
  dir=$WORK/clone-$i
  git clone -q "$ROOT" "$dir"
  start=$SECONDS
  if (cd "$dir" && env -u CI -u DEEP_TESTS -u LOCAL_KMS_ENDPOINT bash -c 'npm ci --no-audit --no-fund && npm test') >"$WORK/clone-$i.log" 2>&1; then
    pass=$((pass + 1)); verdict=PASS
  else
    fail=$((fail + 1)); verdict=FAIL
  fi
  summary=$(grep -E 'Tests .*(passed|failed)' "$WORK/clone-$i.log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g')
  echo "clone $i of $head: $verdict in $((SECONDS - start)) s; $summary"
  rm -rf "$dir"
done
echo "fresh clones: $pass passed, $fail failed (logs in $WORK)"
[ "$fail" -eq 0 ]

#!/usr/bin/env bash
# API fuzzing with schemathesis (PyPI) against openapi.yaml and a real, freshly started service.
#
#   scripts/schemathesis.sh              run every default check, bounded (see below)
#   SCHEMATHESIS_MAX_EXAMPLES=50 scripts/schemathesis.sh     more examples per operation
#   SCHEMATHESIS_PHASES=examples,fuzzing scripts/schemathesis.sh   only those phases (default: all)
#   scripts/schemathesis.sh --seed 42    extra arguments go to `schemathesis run`
#
# What it does:
#   1. installs schemathesis $SCHEMATHESIS_VERSION into .tools/venv unless it is already there;
#   2. makes sure openapi.yaml exists (`npm run openapi` when it does not);
#   3. starts the service (tsx src/server.ts) on a free loopback port, with the embedded local
#      provider, a throwaway keystore and audit log in a temp dir, and dev-token authentication;
#   4. waits for /readyz, runs `schemathesis run openapi.yaml` with the bearer header and all of
#      schemathesis's default checks (scripts/schemathesis.toml only declares 422 as the
#      expected answer to schema-valid but unopenable ciphertexts), bounded by --max-examples,
#      a per-request timeout and an overall `timeout`;
#   5. stops the service, removes the temp dir, and exits with schemathesis's status.
#
# Loopback only; nothing leaves the machine. Bounded in examples and in time. `npm test` runs it
# with fewer examples per operation unless DEEP_TESTS=1 (test/fuzz/schemathesis.test.ts).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SCHEMATHESIS_VERSION=${SCHEMATHESIS_VERSION:-4.32.5}
VENV=${SCHEMATHESIS_VENV:-$ROOT/.tools/venv}
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-600}
# Hard cap for the whole schemathesis run (seconds); the service start has its own.
RUN_TIMEOUT_S=${SCHEMATHESIS_TIMEOUT_S:-420}
START_TIMEOUT_S=${SCHEMATHESIS_START_TIMEOUT_S:-60}
TOKEN=${SCHEMATHESIS_TOKEN:-dev-token}
PHASES=${SCHEMATHESIS_PHASES:-}

log() { echo "schemathesis.sh: $*" >&2; }

# ---- 1. schemathesis ----------------------------------------------------------------------
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
  log "installing schemathesis==$SCHEMATHESIS_VERSION into $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# ---- 2. the spec --------------------------------------------------------------------------
if [ ! -f openapi.yaml ]; then
  if [ -f scripts/generate-openapi.ts ]; then
    log "openapi.yaml missing: generating it (npm run openapi)"
    npm run --silent openapi
  else
    log "openapi.yaml missing and scripts/generate-openapi.ts not there to make it"
    exit 2
  fi
fi

# ---- 3. the service -----------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
WORK=$(mktemp -d "${TMPDIR:-/tmp}/envelope-schemathesis.XXXXXX")
SERVICE_LOG=$WORK/service.log
SERVICE_PID=

cleanup() {
  local status=$?
  if [ -n "$SERVICE_PID" ] && kill -0 "$SERVICE_PID" 2>/dev/null; then
    kill -TERM "$SERVICE_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVICE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVICE_PID" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -s "$SERVICE_LOG" ]; then
    log "service log (last 40 lines):"
    tail -n 40 "$SERVICE_LOG" >&2 || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT INT TERM

log "starting the service on 127.0.0.1:$PORT (work dir $WORK)"
# AUTH_FAILURE_MAX: schemathesis probes every operation with bad credentials, all from this one
# address, and expects 401; the default per-address limit (20 a minute) turns the later probes
# into 429s. The limit has its own tests (test/admission/auth-failure-flood.test.ts).
# exec: the PID is tsx's node process itself, so SIGTERM reaches the service's graceful shutdown.
env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
  PORT="$PORT" HOST=127.0.0.1 KMS_PROVIDER=local \
  LOCAL_KEYSTORE="$WORK/keystore.json" AUDIT_LOG="$WORK/audit.log" \
  DEV_TOKEN="$TOKEN" LOG_LEVEL=warn AUTH_FAILURE_MAX=1000000 REFUSAL_HOLD_MAX_MS=0 \
  bash -c 'exec node --import tsx src/server.ts' >"$SERVICE_LOG" 2>&1 &
SERVICE_PID=$!

deadline=$((SECONDS + START_TIMEOUT_S))
until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/readyz" 2>/dev/null; do
  if ! kill -0 "$SERVICE_PID" 2>/dev/null; then log "the service exited during start"; exit 3; fi
  if [ "$SECONDS" -ge "$deadline" ]; then log "the service was not ready within ${START_TIMEOUT_S}s"; exit 3; fi
  sleep 0.2
done
log "service ready; running schemathesis (max $MAX_EXAMPLES examples per operation, phases: ${PHASES:-all})"

# ---- 4. schemathesis ----------------------------------------------------------------------
# Run from the work dir: schemathesis keeps its example database in ./.schemathesis, which
# then goes away with the temp dir instead of landing in the repository.
cd "$WORK"
set +e
timeout --kill-after=10 "$RUN_TIMEOUT_S" \
  "$VENV/bin/schemathesis" --config-file "$ROOT/scripts/schemathesis.toml" run "$ROOT/openapi.yaml" \
    --url "http://127.0.0.1:$PORT" \
    -H "Authorization: Bearer $TOKEN" \
    --max-examples "$MAX_EXAMPLES" \
    --request-timeout 10 \
    --workers 2 \
    ${PHASES:+--phases "$PHASES"} \
    "$@"
status=$?
set -e
if [ "$status" -eq 124 ]; then log "schemathesis did not finish within ${RUN_TIMEOUT_S}s"; fi
log "schemathesis exited with $status"
exit "$status"

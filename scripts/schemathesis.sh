#!/usr/bin/env bash
# API fuzzing with schemathesis (PyPI) against openapi.yaml and a real, freshly started service.
#
#   scripts/schemathesis.sh              run every default check, bounded (see below)
#   SCHEMATHESIS_MAX_EXAMPLES=50 scripts/schemathesis.sh     more examples per operation
#   SCHEMATHESIS_PHASES=examples,fuzzing scripts/schemathesis.sh   only those phases (default: all)
#   SCHEMATHESIS_SEED=123 scripts/schemathesis.sh   replay seed 123 (default: a fixed seed;
#                                                    `random` draws a fresh one and prints it)
#   scripts/schemathesis.sh --checks all   extra arguments go to `schemathesis run`
#
# What it does:
#   1. installs schemathesis $SCHEMATHESIS_VERSION into .tools/venv unless it is already there;
#   2. makes sure openapi.yaml exists (`npm run openapi` when it does not);
#   3. starts the service (tsx src/server.ts) on a free loopback port, with the embedded local
#      provider, a throwaway keystore and audit log in a temp dir, and dev-token authentication;
#   4. waits for /readyz, runs `schemathesis run openapi.yaml` with the bearer header and all of
#      schemathesis's default checks (scripts/schemathesis.toml declares the expected answers
#      a schema cannot state; scripts/schemathesis_hooks.py checks that every 400 answered to
#      schema-valid data is one of the documented context rules no schema can state), bounded
#      by --max-examples, a per-request timeout and an overall `timeout`, with one seed and no
#      example database, so the same seed draws the same requests (but for the values
#      schemathesis takes from the service's answers: the fresh keystore's key ARN, ciphertexts,
#      which are random by design);
#   5. stops the service, removes the temp dir, and exits with schemathesis's status; on a
#      failure it prints the command that replays the run.
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
# A fixed seed by default: the same requests on every run (test/helpers/seed.ts has the same).
SEED=${SCHEMATHESIS_SEED:-20261206}
if [ "$SEED" = random ]; then SEED=$(python3 -c 'import random; print(random.getrandbits(63))'); fi
case "$SEED" in '' | *[!0-9]*) echo "schemathesis.sh: SCHEMATHESIS_SEED must be a number or random, got '$SEED'" >&2; exit 2 ;; esac
REPLAY="SCHEMATHESIS_SEED=$SEED SCHEMATHESIS_MAX_EXAMPLES=$MAX_EXAMPLES ${PHASES:+SCHEMATHESIS_PHASES=$PHASES }SCHEMATHESIS_TIMEOUT_S=$RUN_TIMEOUT_S scripts/schemathesis.sh"

log() { echo "schemathesis.sh: $*" >&2; }

# ---- 1. schemathesis ----------------------------------------------------------------------
SCHEMATHESIS_VERSION=$SCHEMATHESIS_VERSION SCHEMATHESIS_VENV=$VENV "$ROOT/scripts/test-venv.sh" >/dev/null

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
log "service ready; running schemathesis (seed $SEED, max $MAX_EXAMPLES examples per operation, phases: ${PHASES:-all})"

# ---- 4. schemathesis ----------------------------------------------------------------------
# No example database (--generation-database none): replayed failures from an earlier run would
# make two runs with one seed differ. Run from the work dir all the same, so nothing else
# schemathesis writes lands in the repository.
cd "$WORK"
set +e
PYTHONPATH="$ROOT/scripts${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=schemathesis_hooks \
timeout --kill-after=10 "$RUN_TIMEOUT_S" \
  "$VENV/bin/schemathesis" --config-file "$ROOT/scripts/schemathesis.toml" run "$ROOT/openapi.yaml" \
    --url "http://127.0.0.1:$PORT" \
    -H "Authorization: Bearer $TOKEN" \
    --max-examples "$MAX_EXAMPLES" \
    --request-timeout 10 \
    --workers 2 \
    --seed "$SEED" \
    --generation-database none \
    ${PHASES:+--phases "$PHASES"} \
    "$@"
status=$?
set -e
if [ "$status" -eq 124 ]; then log "schemathesis did not finish within ${RUN_TIMEOUT_S}s"; fi
log "schemathesis exited with $status (seed $SEED)"
if [ "$status" -ne 0 ]; then log "replay: $REPLAY${*:+ $(printf '%q ' "$@")}"; fi
exit "$status"

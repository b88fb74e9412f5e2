#!/usr/bin/env bash
# local-kms (github.com/nsmithuk/local-kms, the Go KMS emulator) for tests and CI.
#
#   scripts/local-kms.sh install   go install the pinned version unless the binary is found
#   scripts/local-kms.sh start     start it seeded, on 127.0.0.1:$LOCAL_KMS_PORT (default 4599),
#                                  with a fresh temporary data dir; waits until it answers and
#                                  prints `export LOCAL_KMS_ENDPOINT=…` on stdout (for eval)
#   scripts/local-kms.sh stop      stop the instance started by `start`, remove its data dir
#   scripts/local-kms.sh status    exit 0 and print the endpoint if it is running
#
# Pinned version: the design names commit e4d9425700fe6617ec37062adec06c9a3dc75fb7 (tag
# 3.11.7), but the Go module proxy used here refuses that version (403); the pseudo-version
# below is the one that installs. Override with LOCAL_KMS_VERSION if your proxy differs.
#
# Binary lookup order: $LOCAL_KMS_BIN, `local-kms` on PATH, $(go env GOPATH)/bin, ~/go/bin
# (test/helpers/local-kms.ts uses the same order).
#
# Note: local-kms binds every interface (it only takes a port, PORT); the endpoint we hand out
# is the loopback address. Its keys are test keys; do not run it on an exposed host.
set -euo pipefail

LOCAL_KMS_MODULE=github.com/nsmithuk/local-kms
LOCAL_KMS_VERSION=${LOCAL_KMS_VERSION:-v0.0.0-20260228092603-2a5e92d09ab6}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR=${LOCAL_KMS_STATE_DIR:-$ROOT/.tools/local-kms}
PORT=${LOCAL_KMS_PORT:-4599}
SEED=${LOCAL_KMS_SEED:-$ROOT/test/fixtures/local-kms-seed.yaml}
# ARN region/account of the seeded keys; test/helpers/local-kms.ts uses the same values.
REGION=eu-west-2
ACCOUNT=111122223333
START_TIMEOUT_S=${LOCAL_KMS_START_TIMEOUT_S:-20}

PID_FILE=$STATE_DIR/local-kms.pid
DATA_FILE=$STATE_DIR/data-dir
PORT_FILE=$STATE_DIR/port
LOG_FILE=$STATE_DIR/local-kms.log

log() { echo "local-kms: $*" >&2; }

find_binary() {
  local candidate gopath
  if [[ -n "${LOCAL_KMS_BIN:-}" ]]; then
    [[ -x "$LOCAL_KMS_BIN" ]] && { echo "$LOCAL_KMS_BIN"; return 0; }
    log "LOCAL_KMS_BIN=$LOCAL_KMS_BIN is not executable"
    return 1
  fi
  if candidate=$(command -v local-kms 2>/dev/null); then echo "$candidate"; return 0; fi
  if command -v go >/dev/null 2>&1 && gopath=$(go env GOPATH 2>/dev/null) && [[ -x "$gopath/bin/local-kms" ]]; then
    echo "$gopath/bin/local-kms"; return 0
  fi
  if [[ -x "$HOME/go/bin/local-kms" ]]; then echo "$HOME/go/bin/local-kms"; return 0; fi
  return 1
}

# A real KMS call (not just an open port): ListAliases must answer and show the seed.
probe() {
  curl -sS --max-time 2 -X POST \
    -H 'Content-Type: application/x-amz-json-1.1' \
    -H 'X-Amz-Target: TrentService.ListAliases' \
    -d '{}' "http://127.0.0.1:$1/" 2>/dev/null | grep -q '"alias/default"'
}

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid=$(cat "$PID_FILE")
  # Only ours: the pid must still be a local-kms process (pids get reused).
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && [[ "$(ps -p "$pid" -o comm= 2>/dev/null)" == local-kms* ]] || return 1
  echo "$pid"
}

cmd_install() {
  local bin
  if bin=$(find_binary); then log "found $bin"; return 0; fi
  command -v go >/dev/null 2>&1 || { log "Go is not installed; cannot build local-kms"; return 1; }
  log "installing $LOCAL_KMS_MODULE@$LOCAL_KMS_VERSION"
  go install "$LOCAL_KMS_MODULE@$LOCAL_KMS_VERSION"
  bin=$(find_binary) || { log "installed, but the binary is not where expected (GOBIN?); set LOCAL_KMS_BIN"; return 1; }
  log "installed $bin"
}

cmd_start() {
  local pid bin data_dir waited=0
  if pid=$(running_pid); then
    log "already running (pid $pid)"
    echo "export LOCAL_KMS_ENDPOINT=http://127.0.0.1:$(cat "$PORT_FILE")"
    return 0
  fi
  bin=$(find_binary) || { log "binary not found; run: scripts/local-kms.sh install"; return 1; }
  [[ -f "$SEED" ]] || { log "seed file $SEED is missing"; return 1; }
  if probe "$PORT" || curl -s --max-time 1 -o /dev/null "http://127.0.0.1:$PORT/"; then
    log "port $PORT is already in use; set LOCAL_KMS_PORT"
    return 1
  fi
  mkdir -p "$STATE_DIR"
  data_dir=$(mktemp -d "${TMPDIR:-/tmp}/local-kms-data.XXXXXX")
  PORT=$PORT KMS_REGION=$REGION KMS_ACCOUNT_ID=$ACCOUNT KMS_SEED_PATH=$SEED KMS_DATA_PATH=$data_dir \
    nohup "$bin" >"$LOG_FILE" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PID_FILE"
  echo "$data_dir" >"$DATA_FILE"
  echo "$PORT" >"$PORT_FILE"
  until probe "$PORT"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "exited during start; log follows"; cat "$LOG_FILE" >&2
      cleanup_files; return 1
    fi
    if (( waited >= START_TIMEOUT_S * 5 )); then
      log "no answer on port $PORT after ${START_TIMEOUT_S}s; log follows"; cat "$LOG_FILE" >&2
      cmd_stop; return 1
    fi
    sleep 0.2; waited=$((waited + 1))
  done
  log "running (pid $pid) on http://127.0.0.1:$PORT, data in $data_dir, log in $LOG_FILE"
  echo "export LOCAL_KMS_ENDPOINT=http://127.0.0.1:$PORT"
}

cleanup_files() {
  if [[ -f "$DATA_FILE" ]]; then
    local data_dir
    data_dir=$(cat "$DATA_FILE")
    # Only ever a directory mktemp made for us.
    [[ "$data_dir" == */local-kms-data.* && -d "$data_dir" ]] && rm -rf -- "$data_dir"
  fi
  rm -f "$PID_FILE" "$DATA_FILE" "$PORT_FILE"
}

cmd_stop() {
  local pid i
  if pid=$(running_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    log "stopped (pid $pid)"
  else
    log "not running"
  fi
  cleanup_files
}

cmd_status() {
  local pid
  if pid=$(running_pid) && probe "$(cat "$PORT_FILE")"; then
    log "running (pid $pid)"
    echo "export LOCAL_KMS_ENDPOINT=http://127.0.0.1:$(cat "$PORT_FILE")"
  else
    log "not running"; return 1
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac

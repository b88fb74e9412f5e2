#!/usr/bin/env bash
# redis-server (Debian's package) for the shared-limits tests and for trying REDIS_URL by hand.
#
#   scripts/redis.sh install   scripts/fleet-tools.sh: the one install path for Debian's
#                              redis-server (and haproxy), as CI runs it (root when missing)
#   scripts/redis.sh start     start one on 127.0.0.1:$REDIS_PORT (default 6399), persistence off;
#                              waits until it answers and prints `export REDIS_URL=…` (for eval)
#   scripts/redis.sh stop      stop the instance started by `start`
#   scripts/redis.sh status    exit 0 and print the URL if it is running
#
# The tests do not need `start`: each test file starts its own server on a free port
# (test/helpers/redis.ts). The server binds loopback only and has no password: for tests.
set -euo pipefail

PORT=${REDIS_PORT:-6399}
# Pid, port and log of the instance `start` made (nothing cached: the package is the install).
STATE_DIR=${REDIS_STATE_DIR:-${TMPDIR:-/tmp}/envelope-redis-$PORT}
BIN=${REDIS_SERVER_BIN:-redis-server}
START_TIMEOUT_S=${REDIS_START_TIMEOUT_S:-20}
PID_FILE=$STATE_DIR/redis.pid
PORT_FILE=$STATE_DIR/port
LOG_FILE=$STATE_DIR/redis.log

log() { echo "redis: $*" >&2; }

# A real answer (PING), not just an open port; redis-cli comes with the same package.
probe() { redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG; }

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid=$(cat "$PID_FILE")
  # Only ours: the pid must still be a redis-server process (pids get reused).
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && [[ "$(ps -p "$pid" -o comm= 2>/dev/null)" == redis-server* ]] || return 1
  echo "$pid"
}

cmd_install() {
  "$(dirname "${BASH_SOURCE[0]}")/fleet-tools.sh"
}

cmd_start() {
  local pid waited=0
  if pid=$(running_pid); then
    log "already running (pid $pid)"
    echo "export REDIS_URL=redis://127.0.0.1:$(cat "$PORT_FILE")"
    return 0
  fi
  command -v "$BIN" >/dev/null 2>&1 || { log "$BIN not found; run: scripts/redis.sh install"; return 1; }
  if probe "$PORT"; then log "port $PORT is already in use; set REDIS_PORT"; return 1; fi
  mkdir -p "$STATE_DIR"
  nohup "$BIN" --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$STATE_DIR" >"$LOG_FILE" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PID_FILE"
  echo "$PORT" >"$PORT_FILE"
  until probe "$PORT"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "exited during start; log follows"; cat "$LOG_FILE" >&2
      rm -f "$PID_FILE" "$PORT_FILE"; return 1
    fi
    if (( waited >= START_TIMEOUT_S * 5 )); then
      log "no answer on port $PORT after ${START_TIMEOUT_S}s; log follows"; cat "$LOG_FILE" >&2
      cmd_stop; return 1
    fi
    sleep 0.2; waited=$((waited + 1))
  done
  log "running (pid $pid) on redis://127.0.0.1:$PORT, log in $LOG_FILE"
  echo "export REDIS_URL=redis://127.0.0.1:$PORT"
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
  rm -f "$PID_FILE" "$PORT_FILE"
}

cmd_status() {
  local pid
  if pid=$(running_pid) && probe "$(cat "$PORT_FILE")"; then
    log "running (pid $pid)"
    echo "export REDIS_URL=redis://127.0.0.1:$(cat "$PORT_FILE")"
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

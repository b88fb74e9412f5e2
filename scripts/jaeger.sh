#!/usr/bin/env bash
# Jaeger (github.com/jaegertracing/jaeger/cmd/jaeger, the v2 binary: OTLP in, query API out)
# for the tracing tests and CI.
#
#   scripts/jaeger.sh install   build the pinned version into .tools/jaeger/bin unless found
#   scripts/jaeger.sh start     start it on free loopback ports with in-memory storage
#                               (test/fixtures/jaeger.yaml); waits until it is healthy and
#                               prints `export JAEGER_OTLP_ENDPOINT=… JAEGER_QUERY_URL=…` (for eval)
#   scripts/jaeger.sh stop      stop the instance started by `start`
#   scripts/jaeger.sh path      print the binary's path (exit 1 if there is none)
#
# `go install module@version` refuses this module (its go.mod has replace directives), so the
# build goes through a scratch module: `go get -tool` pins the version there, `go build` builds
# it. A few minutes on a cold Go cache.
#
# Binary lookup order: $JAEGER_BIN, .tools/jaeger/bin/jaeger, `jaeger` on PATH
# (test/helpers/jaeger.ts uses the same order).
set -euo pipefail

JAEGER_MODULE=github.com/jaegertracing/jaeger
JAEGER_VERSION=${JAEGER_VERSION:-v1.75.0}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR=$ROOT/.tools/jaeger
BIN_DIR=$TOOLS_DIR/bin
CONFIG=$ROOT/test/fixtures/jaeger.yaml
START_TIMEOUT_S=${JAEGER_START_TIMEOUT_S:-30}

PID_FILE=$TOOLS_DIR/jaeger.pid
PORTS_FILE=$TOOLS_DIR/ports
LOG_FILE=$TOOLS_DIR/jaeger.log

log() { echo "jaeger: $*" >&2; }

find_binary() {
  local candidate
  if [[ -n "${JAEGER_BIN:-}" ]]; then
    [[ -x "$JAEGER_BIN" ]] && { echo "$JAEGER_BIN"; return 0; }
    log "JAEGER_BIN=$JAEGER_BIN is not executable"
    return 1
  fi
  if [[ -x "$BIN_DIR/jaeger" ]]; then echo "$BIN_DIR/jaeger"; return 0; fi
  if candidate=$(command -v jaeger 2>/dev/null); then echo "$candidate"; return 0; fi
  return 1
}

cmd_install() {
  local bin scratch
  if bin=$(find_binary); then log "found $bin"; return 0; fi
  command -v go >/dev/null 2>&1 || { log "Go is not installed; cannot build jaeger"; return 1; }
  mkdir -p "$BIN_DIR"
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/jaeger-build.XXXXXX")
  trap 'rm -rf -- "$scratch"' RETURN
  log "building $JAEGER_MODULE/cmd/jaeger@$JAEGER_VERSION (a few minutes on a cold Go cache)"
  (
    cd "$scratch"
    go mod init jaeger-build >/dev/null 2>&1
    go get -tool "$JAEGER_MODULE/cmd/jaeger@$JAEGER_VERSION"
    go build -o "$BIN_DIR/jaeger.partial" "$JAEGER_MODULE/cmd/jaeger"
  )
  mv "$BIN_DIR/jaeger.partial" "$BIN_DIR/jaeger"
  log "installed $BIN_DIR/jaeger"
}

free_port() {
  node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid=$(cat "$PID_FILE")
  # Only ours: the pid must still be a jaeger process (pids get reused).
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && [[ "$(ps -p "$pid" -o comm= 2>/dev/null)" == jaeger* ]] || return 1
  echo "$pid"
}

print_endpoints() {
  # shellcheck disable=SC1090
  source "$PORTS_FILE"
  echo "export JAEGER_OTLP_ENDPOINT=http://127.0.0.1:$JAEGER_OTLP_HTTP_PORT JAEGER_QUERY_URL=http://127.0.0.1:$JAEGER_QUERY_PORT"
}

cmd_start() {
  local pid bin waited=0
  if pid=$(running_pid); then log "already running (pid $pid)"; print_endpoints; return 0; fi
  bin=$(find_binary) || { log "binary not found; run: scripts/jaeger.sh install"; return 1; }
  mkdir -p "$TOOLS_DIR"
  {
    echo "JAEGER_OTLP_HTTP_PORT=$(free_port)"
    echo "JAEGER_QUERY_PORT=$(free_port)"
    echo "JAEGER_QUERY_GRPC_PORT=$(free_port)"
    echo "JAEGER_HEALTH_PORT=$(free_port)"
  } >"$PORTS_FILE"
  # shellcheck disable=SC1090
  source "$PORTS_FILE"
  JAEGER_OTLP_HTTP_PORT=$JAEGER_OTLP_HTTP_PORT JAEGER_QUERY_PORT=$JAEGER_QUERY_PORT \
    JAEGER_QUERY_GRPC_PORT=$JAEGER_QUERY_GRPC_PORT JAEGER_HEALTH_PORT=$JAEGER_HEALTH_PORT \
    nohup "$bin" --config "$CONFIG" >"$LOG_FILE" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PID_FILE"
  until curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$JAEGER_HEALTH_PORT/status"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "exited during start; log follows"; cat "$LOG_FILE" >&2
      rm -f "$PID_FILE" "$PORTS_FILE"; return 1
    fi
    if (( waited >= START_TIMEOUT_S * 5 )); then
      log "not healthy after ${START_TIMEOUT_S}s; log follows"; cat "$LOG_FILE" >&2
      cmd_stop; return 1
    fi
    sleep 0.2; waited=$((waited + 1))
  done
  log "running (pid $pid), log in $LOG_FILE"
  print_endpoints
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
  rm -f "$PID_FILE" "$PORTS_FILE"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  path) find_binary ;;
  *) echo "usage: $0 install|start|stop|path" >&2; exit 2 ;;
esac

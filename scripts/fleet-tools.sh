#!/usr/bin/env bash
# Installs Debian's redis-server and haproxy for the fleet test (test/fleet) and the bench's
# front-tier case, when missing. Idempotent: does nothing when both binaries exist. Needs root
# to install (CI runs as root; elsewhere run it with sudo). The packages' own services are not
# used: the tests start their own processes on free loopback ports.
#
#   scripts/fleet-tools.sh     install what is missing, then print both versions
set -euo pipefail

REDIS_SERVER="${REDIS_SERVER_PATH:-/usr/bin/redis-server}"
HAPROXY="${HAPROXY_PATH:-/usr/sbin/haproxy}"

missing=()
[ -x "$REDIS_SERVER" ] || missing+=(redis-server)
[ -x "$HAPROXY" ] || missing+=(haproxy)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "fleet-tools: ${missing[*]} missing and this is not root; run: sudo $0" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "fleet-tools: apt-get not found; install ${missing[*]} with this system's package manager" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  # policy-rc.d 101: the packages' own services are not started (no systemd in CI containers,
  # and a system Redis on 6379 is not what the tests use).
  policy=/usr/sbin/policy-rc.d
  created_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && created_policy=1
  fi
  apt-get install -y --no-install-recommends "${missing[@]}"
  [ -n "$created_policy" ] && rm -f "$policy"
fi

"$REDIS_SERVER" --version
# sed reads to the end: `head -1` would close the pipe early (SIGPIPE, a failure under pipefail).
"$HAPROXY" -v | sed -n 1p

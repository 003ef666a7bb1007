#!/usr/bin/env bash
# Interop peers for tests/interop_peers.rs: installs what is missing, then runs the tests.
#
#   tests/interop/run.sh                  install (if needed) and run the interop tests
#   tests/interop/run.sh --install-only   install (if needed) only; .ci/run uses this before
#                                         its `cargo test`, which runs the same tests
#   tests/interop/run.sh -- ARGS          extra arguments for the test binary (e.g. a filter)
#
# Idempotent: each step checks first and does nothing when its peer is already there.
#   - Debian packages: libwebsockets-test-server (lws test server), nginx-light, python3-venv
#     (only when `python3 -m venv` does not work), nodejs/npm (only when `node` is missing)
#   - Python `websockets` pinned in tests/interop/requirements.txt, in a virtual environment
#     under target/interop-venv ($WSBEAT_INTEROP_VENV overrides; the tests look there too)
#   - Node `ws` pinned by tests/interop/node/package-lock.json, `npm ci` into
#     tests/interop/node/node_modules (gitignored)
# The tests run with WSBEAT_REQUIRE_PEERS=1: a peer that is still missing fails them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export DEBIAN_FRONTEND=noninteractive

install_only=0
test_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --install-only) install_only=1 ;;
    --) shift; test_args=("$@"); break ;;
    *) echo "usage: $0 [--install-only] [-- TEST-ARGS...]" >&2; exit 2 ;;
  esac
  shift
done

t0=$(date +%s)
say() { echo "[interop +$(( $(date +%s) - t0 ))s] $*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_install() {
  local missing=""
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  [ -n "$missing" ] || return 0
  say "apt-get install$missing"
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  # shellcheck disable=SC2086
  as_root apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# 1. System packages.
apt_install libwebsockets-test-server nginx-light
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then apt_install nodejs npm; fi

# 2. Python websockets in a virtual environment.
VENV="${WSBEAT_INTEROP_VENV:-$ROOT/target/interop-venv}"
REQ="$ROOT/tests/interop/requirements.txt"
if ! cmp -s "$REQ" "$VENV/.wsbeat-requirements" || ! "$VENV/bin/python" -c "import websockets" 2>/dev/null; then
  say "python venv $VENV"
  PY=python3
  if ! "$PY" -m venv --help >/dev/null 2>&1; then
    apt_install python3-venv
    PY=/usr/bin/python3
  fi
  rm -rf "$VENV"
  "$PY" -m venv "$VENV" || { apt_install python3-venv; /usr/bin/python3 -m venv "$VENV"; }
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$VENV/.wsbeat-requirements"
fi
say "python: $("$VENV/bin/python" -c 'import sys, websockets; print("Python", sys.version.split()[0], "websockets", websockets.__version__)')"

# 3. Node ws.
NODE_DIR="$ROOT/tests/interop/node"
if ! cmp -s "$NODE_DIR/package-lock.json" "$NODE_DIR/node_modules/.wsbeat-lock"; then
  say "npm ci in tests/interop/node"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$NODE_DIR/package-lock.json" "$NODE_DIR/node_modules/.wsbeat-lock"
fi
say "node: $(node --version), ws $(node -p "require('$NODE_DIR/node_modules/ws/package.json').version")"
say "libwebsockets-test-server: $(dpkg-query -W -f '${Version}' libwebsockets-test-server); nginx: $(dpkg-query -W -f '${Version}' nginx-light)"

[ $install_only = 1 ] && exit 0

# 4. The tests.
say "cargo test --test interop_peers"
WSBEAT_REQUIRE_PEERS=1 cargo test --test interop_peers -- --nocapture ${test_args[@]+"${test_args[@]}"}
say "done"

#!/usr/bin/env bash
# Installs the benchmark's peers (idempotent) and runs the benchmark.
#
# usage: bench/run.sh [--quick] [--no-install] [other options of the bench example]
#
#   Python websocket-client and websockets  -> bench/.venv        (pip, bench/requirements.txt)
#   Node ws                                 -> bench/node_modules (npm ci, bench/package.json)
#   websocat                                -> bench/.tools/bin   (cargo install, tried once,
#                                              at most 10 minutes; skipped if it fails)
#   strace                                  -> apt-get, if root and missing
#
# Then: cargo run --release --example bench -- --markdown bench/results.md [options]
# (a full run also rewrites bench/idle.svg). Anything that cannot be installed is skipped and
# reported in the table; nothing here needs the network once installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "run.sh: $*" >&2; }

INSTALL=1
ARGS=()
for a in "$@"; do
  case "$a" in
    --no-install) INSTALL=0 ;;
    *) ARGS+=("$a") ;;
  esac
done

if [ "$INSTALL" = 1 ]; then
  if ! command -v strace >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      log "installing strace"
      apt-get install -y strace >/dev/null 2>&1 ||
        { apt-get update >/dev/null 2>&1 && apt-get install -y strace >/dev/null 2>&1; } ||
        log "strace not installed: no syscall counts"
    else
      log "strace missing (apt-get install -y strace): no syscall counts"
    fi
  fi

  if command -v python3 >/dev/null 2>&1; then
    if [ ! -x bench/.venv/bin/python ]; then
      log "creating bench/.venv"
      python3 -m venv bench/.venv || log "python3 -m venv failed (Debian: apt-get install python3-venv)"
    fi
    if [ -x bench/.venv/bin/python ] &&
       ! bench/.venv/bin/python - <<'PY' 2>/dev/null
import importlib.metadata as m, pathlib
want = dict(l.split("==") for l in pathlib.Path("bench/requirements.txt").read_text().split())
assert all(m.version(k) == v for k, v in want.items())
PY
    then
      log "installing the Python peers (bench/requirements.txt)"
      bench/.venv/bin/pip install -q -r bench/requirements.txt || log "pip install failed: Python peers skipped"
    fi
  else
    log "python3 missing: Python peers skipped"
  fi

  if command -v npm >/dev/null 2>&1; then
    if [ ! -f bench/node_modules/ws/package.json ]; then
      log "installing Node ws (bench/package.json)"
      (cd bench && npm ci --no-audit --no-fund --loglevel=error) || log "npm ci failed: Node peer skipped"
    fi
  else
    log "npm missing: Node peer skipped"
  fi

  if ! command -v websocat >/dev/null 2>&1 && [ ! -x bench/.tools/bin/websocat ]; then
    if [ -e bench/.tools/websocat-failed ]; then
      log "websocat: an earlier install attempt failed (bench/.tools/websocat-install.log); skipped"
    else
      log "building websocat (cargo install, at most 10 minutes, once)"
      mkdir -p bench/.tools
      if ! timeout 600 nice cargo install --locked --quiet websocat --no-default-features \
           --root bench/.tools >bench/.tools/websocat-install.log 2>&1; then
        touch bench/.tools/websocat-failed
        log "websocat did not build: skipped (see bench/.tools/websocat-install.log)"
      fi
    fi
  fi
fi

exec cargo run --release --example bench -- --markdown bench/results.md ${ARGS[@]+"${ARGS[@]}"}

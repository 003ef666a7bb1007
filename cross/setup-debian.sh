#!/usr/bin/env bash
# Install what cross/build.sh and cross/test.sh need on a Debian/Ubuntu x86-64
# host.  Idempotent: does nothing (and needs no root) when all is present.
#
#   cross/setup-debian.sh                    # cross gcc, libc, qemu-user, rustup targets
#   cross/setup-debian.sh --system-openssl   # + dpkg multiarch libssl-dev:armhf/:arm64
#
# Works non-interactively (CI=true, no stdin).  Uses sudo when not root.
# Environment: CROSS_TARGETS="armv7-unknown-linux-gnueabihf aarch64-unknown-linux-gnu"
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
TARGETS=${CROSS_TARGETS:-"armv7-unknown-linux-gnueabihf aarch64-unknown-linux-gnu"}
SYSTEM_OPENSSL=0
for a in "$@"; do
  case "$a" in
    --system-openssl) SYSTEM_OPENSSL=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup-debian.sh: unknown argument '$a'" >&2; exit 2 ;;
  esac
done

log() { echo "setup-debian: $*"; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    SUDO=(__no_root__)
  fi
fi
as_root() {
  if [ "${SUDO[0]:-}" = __no_root__ ]; then
    echo "setup-debian: need root (or passwordless sudo) to run: $*" >&2
    return 1
  fi
  "${SUDO[@]}" "$@"
}

# Packages per Rust target.
pkgs_for() {
  case "$1" in
    armv7-unknown-linux-gnueabihf) echo "gcc-arm-linux-gnueabihf libc6-dev-armhf-cross" ;;
    aarch64-unknown-linux-gnu)     echo "gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;;
    x86_64-unknown-linux-gnu)      echo "" ;;
    *) echo "setup-debian.sh: no package list for target $1" >&2; return 1 ;;
  esac
}
debarch_for() {
  case "$1" in
    armv7-unknown-linux-gnueabihf) echo armhf ;;
    aarch64-unknown-linux-gnu)     echo arm64 ;;
  esac
}

# qemu-user: the plain user-mode emulators (qemu-arm, qemu-aarch64); cargo
# calls them explicitly as the runner, so qemu-user-binfmt is not needed.
# make + perl: the vendored OpenSSL build.  pkg-config: --system-openssl.
WANT=(qemu-user make perl pkg-config binutils ca-certificates)
for t in $TARGETS; do
  # shellcheck disable=SC2207
  WANT+=($(pkgs_for "$t"))
done

missing=()
for p in "${WANT[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

APT_UPDATED=0
apt_update() {
  [ "$APT_UPDATED" = 1 ] && return 0
  log "apt-get update"
  # A half-synced mirror makes apt-get update exit non-zero for one index
  # while the rest is fine; carry on and let apt-get install decide.
  as_root apt-get update -qq >/dev/null 2>&1 || as_root apt-get update -qq || \
    echo "setup-debian: warning: apt-get update reported errors, trying to install anyway" >&2
  APT_UPDATED=1
}
apt_install() {
  apt_update
  log "apt-get install $*"
  local out
  out=$(mktemp)
  if ! as_root apt-get install -y -qq --no-install-recommends "$@" >"$out" 2>&1; then
    cat "$out" >&2; rm -f "$out"; return 1
  fi
  rm -f "$out"
}

if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
else
  log "apt packages already installed"
fi

if [ "$SYSTEM_OPENSSL" = 1 ]; then
  ml=()
  added=()
  for t in $TARGETS; do
    a=$(debarch_for "$t"); [ -n "$a" ] || continue
    if ! dpkg --print-foreign-architectures | grep -qx "$a"; then
      log "dpkg --add-architecture $a"
      as_root dpkg --add-architecture "$a"
      added+=("$a")
      APT_UPDATED=0
    fi
    dpkg-query -W -f='${Status}' "libssl-dev:$a" 2>/dev/null | grep -q "install ok installed" || ml+=("libssl-dev:$a")
  done
  if [ ${#ml[@]} -gt 0 ]; then
    # libssl-dev:<arch> must be the exact version of the installed amd64
    # libssl-dev/libssl3 (Multi-Arch: same); a mirror mid-sync breaks this.
    apt_install "${ml[@]}" || {
      echo "setup-debian: could not install ${ml[*]}.  The foreign package must be the" >&2
      echo "  exact version of the amd64 libssl-dev (a mirror mid-sync breaks that); on" >&2
      echo "  Ubuntu amd64 the foreign architectures come from ports.ubuntu.com (add an" >&2
      echo "  [arch=...] apt source).  Alternative: CROSS_OPENSSL_SYSROOT, see cross/README.md." >&2
      # Leave apt as we found it: a foreign architecture without reachable
      # indexes makes every later apt-get update fail.
      for a in ${added[@]+"${added[@]}"}; do
        as_root dpkg --remove-architecture "$a" 2>/dev/null && log "dpkg --remove-architecture $a (undone)"
      done
      exit 1
    }
  else
    log "multiarch libssl-dev already installed"
  fi
fi

# ------------------------------------------------------------- Rust targets
if ! command -v rustup >/dev/null; then
  echo "setup-debian: rustup not found; install it from https://rustup.rs then re-run" >&2
  exit 1
fi
installed=$(rustup target list --installed)
add=()
for t in $TARGETS; do
  grep -qx "$t" <<<"$installed" || add+=("$t")
done
if [ ${#add[@]} -gt 0 ]; then
  log "rustup target add ${add[*]}"
  rustup target add "${add[@]}" >/dev/null 2>&1 || rustup target add "${add[@]}"
else
  log "rust targets already installed: $TARGETS"
fi

# ------------------------------------------------------------- sanity check
for t in $TARGETS; do
  case "$t" in
    armv7-unknown-linux-gnueabihf) tools="arm-linux-gnueabihf-gcc qemu-arm" ;;
    aarch64-unknown-linux-gnu)     tools="aarch64-linux-gnu-gcc qemu-aarch64" ;;
    *) tools="" ;;
  esac
  for tool in $tools; do
    command -v "$tool" >/dev/null || { echo "setup-debian: $tool still missing" >&2; exit 1; }
  done
done
log "ok"

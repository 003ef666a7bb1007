# Shared by cross/build.sh and cross/test.sh (sourced, not executed).
# shellcheck shell=bash
# shellcheck disable=SC2034  # GNU, DEBARCH, QEMU, FEATURES, OPENSSL_RUNTIME_DIR are for the callers

# normalize_target NAME -> prints the Rust triple for an alias.
normalize_target() {
  case "$1" in
    armv7|armhf|arm)     echo armv7-unknown-linux-gnueabihf ;;
    aarch64|arm64)       echo aarch64-unknown-linux-gnu ;;
    x86_64|x86-64|amd64) echo x86_64-unknown-linux-gnu ;;
    *)                   echo "$1" ;;
  esac
}

# target_names TRIPLE -> sets GNU (Debian multiarch triple), DEBARCH, QEMU.
target_names() {
  case "$1" in
    armv7-unknown-linux-gnueabihf) GNU=arm-linux-gnueabihf; DEBARCH=armhf; QEMU=qemu-arm ;;
    aarch64-unknown-linux-gnu)     GNU=aarch64-linux-gnu;   DEBARCH=arm64; QEMU=qemu-aarch64 ;;
    x86_64-unknown-linux-gnu)      GNU=x86_64-linux-gnu;    DEBARCH=amd64; QEMU="" ;;
    *)                             GNU="";                  DEBARCH="";    QEMU="" ;;
  esac
}

# default_features MANIFEST -> the crate's default feature list, space separated
# (single-line `default = [...]` in [features]).
default_features() {
  sed -n '/^\[features\]/,/^\[/{s/^[[:space:]]*default[[:space:]]*=[[:space:]]*\[\(.*\)\].*/\1/p}' "$1" |
    tr -d '" ' | tr ',' ' '
}

# route_features ROUTE MANIFEST -> sets the FEATURES array for a TLS route.
#   vendored: default features + vendored-openssl
#   system:   default features + tls (native-tls -> the system libssl.so.3)
#   none:     default features minus the TLS ones (keeps e.g. `cli`)
route_features() {
  case "$1" in
    vendored) FEATURES=(--features vendored-openssl) ;;
    system)   FEATURES=(--features tls) ;;
    none)
      local keep=() f
      for f in $(default_features "$2"); do
        case "$f" in tls|vendored-openssl|native-tls|rustls*) ;; *) keep+=("$f") ;; esac
      done
      FEATURES=(--no-default-features)
      if [ ${#keep[@]} -gt 0 ]; then
        FEATURES+=(--features "$(IFS=,; echo "${keep[*]}")")
      fi
      ;;
    *) echo "unknown TLS route $1" >&2; return 1 ;;
  esac
}

# system_openssl_env TRIPLE -> checks for the target's libssl-dev and exports
# what openssl-sys needs to find it through pkg-config.  Normally that is the
# Debian multiarch package (libssl-dev:armhf / :arm64) under /.  Where that
# cannot be installed (Ubuntu without a ports source, a mirror mid-sync that
# makes the amd64 and foreign versions differ), CROSS_OPENSSL_SYSROOT may
# point to a directory with the target's libssl-dev and libssl3 .debs
# unpacked into it (dpkg -x), see cross/README.md.
system_openssl_env() {
  local root="${CROSS_OPENSSL_SYSROOT:-/}"
  root="${root%/}"
  local pcdir="$root/usr/lib/$GNU/pkgconfig"
  if [ -z "$GNU" ] || [ "$DEBARCH" = amd64 ]; then
    [ "$DEBARCH" = amd64 ] && return 0   # native: nothing special
    echo "--system-openssl: don't know the Debian multiarch triple for $1" >&2
    return 1
  fi
  if [ ! -f "$pcdir/openssl.pc" ] || [ ! -f "$root/usr/include/$GNU/openssl/configuration.h" ]; then
    cat >&2 <<EOF
--system-openssl needs the $DEBARCH build of libssl-dev (Debian/Ubuntu multiarch):
    sudo dpkg --add-architecture $DEBARCH
    sudo apt-get update
    sudo apt-get install libssl-dev:$DEBARCH pkg-config
  or run: cross/setup-debian.sh --system-openssl
  ($pcdir/openssl.pc not found.  On Ubuntu amd64 hosts the $DEBARCH packages
   come from ports.ubuntu.com: add an [arch=$DEBARCH] apt source first.  The
   amd64 and $DEBARCH libssl-dev versions must match exactly, so a stale or
   half-synced mirror can make the install fail; then unpack the two .debs
   into a directory and set CROSS_OPENSSL_SYSROOT to it, see cross/README.md.)
EOF
    return 1
  fi
  command -v pkg-config >/dev/null || { echo "--system-openssl needs pkg-config: apt-get install pkg-config" >&2; return 1; }
  # pkg-config refuses to answer for a cross target unless told to.
  export PKG_CONFIG_ALLOW_CROSS=1
  export PKG_CONFIG_LIBDIR="$pcdir"
  export PKG_CONFIG_SYSROOT_DIR="${root:-/}"
  if [ -n "$root" ]; then
    # The arch-specific headers (openssl/configuration.h) are in
    # <root>/usr/include/<triple>; the cross gcc only searches the one under /.
    local v="CFLAGS_${1//-/_}"
    export "$v=${!v:-} -I$root/usr/include/$GNU"
  fi
  # Where the target's libssl.so.3 lives (test.sh puts it on qemu's library path).
  OPENSSL_RUNTIME_DIR="$root/usr/lib/$GNU"
}

# find_prebuilt_openssl TRIPLE -> prints the newest OpenSSL install prefix that
# openssl-src (the vendored-openssl feature) left in the target dir for
# TRIPLE, e.g. from `cross/build.sh TRIPLE` (release-small), or nothing.
find_prebuilt_openssl() {
  local tdir="${CARGO_TARGET_DIR:-$ROOT/target}"
  local lib
  # shellcheck disable=SC2012
  lib=$(ls -t "$tdir/$1"/*/build/openssl-sys-*/out/openssl-build/install/lib/libssl.a 2>/dev/null | head -n1 || true)
  [ -n "$lib" ] && dirname "$(dirname "$lib")"
  return 0
}

# use_prebuilt_openssl TRIPLE SPEC -> SPEC is an OpenSSL install prefix (with
# lib/libssl.a) or "auto" (find_prebuilt_openssl).  Exports the openssl-sys
# variables that make it link that static OpenSSL instead of building one
# (vendored feature) or looking for a system one.  Returns 1 if none found.
use_prebuilt_openssl() {
  local ossl="$2" up
  [ "$ossl" = auto ] && ossl=$(find_prebuilt_openssl "$1")
  if [ -z "$ossl" ] || [ ! -f "$ossl/lib/libssl.a" ]; then
    return 1
  fi
  up=$(tr 'a-z-' 'A-Z_' <<<"$1")
  export "${up}_OPENSSL_NO_VENDOR=1" "${up}_OPENSSL_DIR=$ossl" "${up}_OPENSSL_STATIC=1"
  echo "linking the prebuilt static OpenSSL in $ossl" >&2
}

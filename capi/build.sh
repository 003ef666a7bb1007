#!/usr/bin/env bash
# Build and install wsbeat's C library (feature `capi`): static archive, shared object,
# header and pkg-config file, for this machine or an ARM target.
#
# usage: capi/build.sh [TARGET] [TLS-ROUTE] [options]
#        capi/build.sh --header          regenerate include/wsbeat.h (cbindgen)
#        capi/build.sh --check-header    fail if include/wsbeat.h is not what cbindgen makes
#
#   TARGET      a Rust triple or alias (armv7, aarch64); default: this machine
#   TLS-ROUTE   --tls (native default: the system's OpenSSL, linked dynamically)
#               --vendored (cross default: OpenSSL built from source, inside the library)
#               --system-openssl (cross: the target's libssl, see cross/README.md)
#               --no-tls (ws:// only; no TLS functions in the library or the header's view)
#   --prefix DIR    install here (default target/capi/TARGET/PROFILE/dist-ROUTE); the .pc
#                   file names DIR, so install where the library will live, or use
#                   PKG_CONFIG_PATH=DIR/lib/pkgconfig with a staging prefix
#   --profile P     cargo profile (default release-capi: size settings, panics unwind so
#                   the C API returns WSBEAT_PANIC; `release-small` aborts on a panic)
#   --example       also build examples/c/telemetry.c linked statically against
#                   libwsbeat.a (glibc dynamic), stripped, and print its size
#   --sbom          also write a CycloneDX SBOM of the library's dependency tree to
#                   DIR/share/wsbeat/ (cargo cyclonedx, offline)
#
# Prints each artifact's path and size. Environment: CARGO_TARGET_DIR (default
# target/capi, apart from the Rust builds' target/ so neither invalidates the other), CC.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "capi/build.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-2}"; }
. "$ROOT/cross/common.sh"

# The pinned cbindgen: the header is compared byte for byte, so every machine must make it
# with the same version (.ci/run installs this one).
CBINDGEN_VERSION=0.29.4

cbindgen_run() {
  command -v cbindgen >/dev/null || die "cbindgen not found: cargo install cbindgen --locked --version $CBINDGEN_VERSION"
  local v
  v=$(cbindgen --version | awk '{print $2}')
  [ "$v" = "$CBINDGEN_VERSION" ] || die "cbindgen $v found, the header is made with $CBINDGEN_VERSION: cargo install cbindgen --locked --version $CBINDGEN_VERSION"
  # -q: cbindgen warns that `feature = "capi"` has no C define; the whole module is the API.
  (cd "$ROOT" && cbindgen -q --config capi/cbindgen.toml --crate wsbeat --output "$1" .)
}

case "${1:-}" in
  --header)
    cbindgen_run "$ROOT/include/wsbeat.h"
    echo "wrote include/wsbeat.h"
    exit 0 ;;
  --check-header)
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    cbindgen_run "$tmp"
    if ! diff -u "$ROOT/include/wsbeat.h" "$tmp"; then
      echo "capi/build.sh: include/wsbeat.h is out of date: run capi/build.sh --header and commit it" >&2
      exit 1
    fi
    echo "include/wsbeat.h is up to date (cbindgen $CBINDGEN_VERSION)"
    exit 0 ;;
  -h|--help) usage 0 ;;
esac

HOST=$(rustc -vV | sed -n 's/^host: //p')
TARGET=$HOST
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then TARGET=$(normalize_target "$1"); shift; fi
target_names "$TARGET"
CROSS=0
[ "$TARGET" != "$HOST" ] && CROSS=1
ROUTE=$([ "$CROSS" = 1 ] && echo vendored || echo tls)
PROFILE=release-capi
PREFIX=""
EXAMPLE=0
SBOM=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tls) ROUTE=tls ;;
    --vendored|--vendored-openssl) ROUTE=vendored ;;
    --system-openssl) ROUTE=system ;;
    --no-tls) ROUTE=none ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a DIR"; PREFIX="$2"; shift ;;
    --profile) [ $# -ge 2 ] || die "--profile needs a NAME"; PROFILE="$2"; shift ;;
    --example) EXAMPLE=1 ;;
    --sbom) SBOM=1 ;;
    -h|--help) usage 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done

# Features: the C API and a TLS route, never the CLI's crates.
case "$ROUTE" in
  tls|system) FEATURES=capi,tls ;;
  vendored) FEATURES=capi,vendored-openssl ;;
  none) FEATURES=capi ;;
esac
[ "$ROUTE" = system ] && { system_openssl_env "$TARGET" || exit 1; }
# Vendored: link the static OpenSSL an earlier build made (cross/build.sh's, in target/)
# rather than compiling it again (~1.5 min per target): the same openssl-src, still static.
if [ "$ROUTE" = vendored ] && [ "${CROSS_OPENSSL_PREBUILT:-auto}" != no ]; then
  use_prebuilt_openssl "$TARGET" "${CROSS_OPENSSL_PREBUILT:-auto}" ||
    echo "capi/build.sh: no prebuilt OpenSSL for $TARGET; building it (vendored)" >&2
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/capi}"
PROFILE_DIR=$PROFILE
case "$PROFILE" in dev|test) PROFILE_DIR=debug ;; bench) PROFILE_DIR=release ;; esac
OUT="$CARGO_TARGET_DIR/$TARGET/$PROFILE_DIR"
# One prefix per TLS route, so a no-TLS and a TLS build of one target can sit side by side.
PREFIX="${PREFIX:-$OUT/dist-$ROUTE}"
mkdir -p "$PREFIX"
PREFIX="$(cd "$PREFIX" && pwd)"

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)
MAJOR=${VERSION%%.*}; REST=${VERSION#*.}; MINOR=${REST%%.*}
# The soname carries what must match: before 1.0 every minor release may break the ABI
# (libwsbeat.so.0.1), from 1.0 on only a major one (libwsbeat.so.1), as cargo-c names them.
if [ "$MAJOR" = 0 ]; then SOVER="0.$MINOR"; else SOVER="$MAJOR"; fi

CONFIG_ARGS=()
[ "$CROSS" = 1 ] && CONFIG_ARGS=(--config "$ROOT/cross/config.toml")
echo "==> cargo rustc --lib --target $TARGET --profile $PROFILE --no-default-features --features $FEATURES --crate-type staticlib --crate-type cdylib" >&2
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
set +e
# --print native-static-libs: what a static link against libwsbeat.a needs besides it
# (-lgcc_s -lpthread ..., and -lssl -lcrypto with the system OpenSSL), for Libs.private.
(cd "$ROOT" && cargo rustc --lib \
  ${CONFIG_ARGS[@]+"${CONFIG_ARGS[@]}"} \
  --target "$TARGET" --profile "$PROFILE" \
  --no-default-features --features "$FEATURES" \
  --crate-type staticlib --crate-type cdylib \
  -- --print native-static-libs -C "link-arg=-Wl,-soname,libwsbeat.so.$SOVER") 2> >(tee "$LOG" >&2)
rc=$?
set -e
[ $rc -eq 0 ] || die "cargo rustc failed (exit $rc)"
# Cargo replays the note from its cache when nothing was rebuilt; the fallback is glibc's set.
NATIVE=$(sed -n 's/.*native-static-libs: //p' "$LOG" | tail -n1)
[ -n "$NATIVE" ] || NATIVE="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

[ -f "$OUT/libwsbeat.a" ] && [ -f "$OUT/libwsbeat.so" ] || die "no libwsbeat.a/.so in $OUT"
mkdir -p "$PREFIX/include" "$PREFIX/lib/pkgconfig"
install -m 644 "$ROOT/include/wsbeat.h" "$PREFIX/include/wsbeat.h"
install -m 644 "$OUT/libwsbeat.a" "$PREFIX/lib/libwsbeat.a"
install -m 755 "$OUT/libwsbeat.so" "$PREFIX/lib/libwsbeat.so.$VERSION"
ln -sf "libwsbeat.so.$VERSION" "$PREFIX/lib/libwsbeat.so.$SOVER"
ln -sf "libwsbeat.so.$SOVER" "$PREFIX/lib/libwsbeat.so"

CFLAGS_PC='-I${includedir}'
[ "$ROUTE" != none ] && CFLAGS_PC="$CFLAGS_PC -DWSBEAT_FEATURE_TLS"
cat >"$PREFIX/lib/pkgconfig/wsbeat.pc" <<EOF
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: wsbeat
Description: WebSocket client for embedded Linux devices: heartbeat, reconnection, outbox
Version: $VERSION
URL: https://crates.io/crates/wsbeat
Cflags: $CFLAGS_PC
Libs: -L\${libdir} -lwsbeat
Libs.private: $NATIVE
EOF

size_of() { stat -c %s "$1"; }
echo "target:   $TARGET"
echo "route:    $ROUTE"
echo "profile:  $PROFILE"
echo "prefix:   $PREFIX"
echo "static:   $PREFIX/lib/libwsbeat.a ($(size_of "$PREFIX/lib/libwsbeat.a") bytes)"
echo "shared:   $PREFIX/lib/libwsbeat.so.$VERSION ($(size_of "$PREFIX/lib/libwsbeat.so.$VERSION") bytes, soname libwsbeat.so.$SOVER)"
echo "header:   $PREFIX/include/wsbeat.h"
echo "pc:       $PREFIX/lib/pkgconfig/wsbeat.pc (Libs.private: $NATIVE)"

if [ "$EXAMPLE" = 1 ]; then
  if [ "$CROSS" = 1 ]; then CC_=${CC:-$GNU-gcc}; STRIP_=$GNU-strip; else CC_=${CC:-cc}; STRIP_=strip; fi
  DEFS=()
  [ "$ROUTE" != none ] && DEFS=(-DWSBEAT_FEATURE_TLS)
  EXE="$PREFIX/bin/telemetry-static"
  mkdir -p "$PREFIX/bin"
  # Static against libwsbeat.a (named as a file: -lwsbeat would pick the .so), glibc shared.
  # shellcheck disable=SC2086
  "$CC_" -std=c99 -Os -Wall -Wextra -Werror ${DEFS[@]+"${DEFS[@]}"} -I"$PREFIX/include" \
    -ffunction-sections -fdata-sections -Wl,--gc-sections \
    "$ROOT/examples/c/telemetry.c" -o "$EXE" "$PREFIX/lib/libwsbeat.a" $NATIVE
  "$STRIP_" "$EXE"
  echo "example:  $EXE ($(size_of "$EXE") bytes stripped, libwsbeat.a linked in)"
fi

if [ "$SBOM" = 1 ]; then
  command -v cargo-cyclonedx >/dev/null || die "cargo-cyclonedx not found: cargo install cargo-cyclonedx --locked"
  mkdir -p "$PREFIX/share/wsbeat"
  # The library's tree only: the same features as the build, no dev-dependencies (cyclonedx
  # lists normal dependencies), offline (it reads `cargo metadata`).
  (cd "$ROOT" && CARGO_NET_OFFLINE=true cargo cyclonedx --format json --spec-version 1.5 --no-default-features \
    --features "$FEATURES" --target "$TARGET" --override-filename wsbeat.cdx >/dev/null)
  mv "$ROOT/wsbeat.cdx.json" "$PREFIX/share/wsbeat/wsbeat.cdx.json"
  echo "sbom:     $PREFIX/share/wsbeat/wsbeat.cdx.json ($(grep -c '"bom-ref"' "$PREFIX/share/wsbeat/wsbeat.cdx.json") bom-refs)"
fi

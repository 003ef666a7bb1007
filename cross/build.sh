#!/usr/bin/env bash
# Cross-build a size-optimised wsbeat artifact for an ARM Linux (glibc) device.
#
# usage: cross/build.sh TARGET [TLS-ROUTE] [ARTIFACT] [-- EXTRA-CARGO-ARGS...]
#
#   TARGET      armv7-unknown-linux-gnueabihf | aarch64-unknown-linux-gnu
#               (aliases: armv7, armhf, aarch64, arm64); any other triple is
#               passed through (e.g. x86_64-unknown-linux-gnu for comparison).
#   TLS-ROUTE   (default) --vendored   OpenSSL built from source, linked
#                                      statically: --features vendored-openssl
#               --system-openssl       link the device's libssl.so.3
#                                      dynamically (Debian multiarch
#                                      libssl-dev:<arch> needed on this host)
#               --no-tls               ws:// only: --no-default-features,
#                                      keeping the other default features (cli)
#   --static-libc   with --no-tls: link glibc statically (-C target-feature=
#                   +crt-static). Needs no shared library on the device, and
#                   idles in less RSS (no libc.so/ld.so pages mapped); glibc's
#                   built-in `files` and `dns` resolvers serve getaddrinfo.
#   --build-std     rebuild std for the target without its backtrace
#                   symbolizer (gimli, addr2line, miniz: about 100 KB of
#                   code a panic=abort device build never uses), with
#                   `cargo +nightly -Zbuild-std=std,panic_abort
#                   -Zbuild-std-features=`. Needs the nightly toolchain and
#                   its rust-src component. Panic messages stay. The armv7
#                   no-TLS CLI: 670,872 B stable, 440,060 B this way.
#   ARTIFACT    (default) --bin wsbeat
#               --bin NAME | --example NAME
#               --floor                the bare tungstenite client in cross/floor
#               --capi                 the C library (libwsbeat.a, libwsbeat.so, header,
#                                      pkg-config file), the C example linked statically
#                                      against it, and an SBOM: capi/build.sh does it
#   --profile P cargo profile (default release-small; release-capi for --capi, whose
#               panics unwind so that the C API can return WSBEAT_PANIC)
#
# Prints the artifact path, its size in bytes and KiB, the glibc version it
# needs on the device and its NEEDED shared libraries.
#
# Environment: CROSS_OPENSSL_SYSROOT=DIR  for --system-openssl without the
# multiarch package: DIR holds the target's libssl-dev + libssl3 .debs
# unpacked with dpkg -x (see cross/README.md).  CARGO_TARGET_DIR is honoured.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG="$ROOT/cross/config.toml"

die() { echo "build.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-2}"; }

[ $# -ge 1 ] || usage
case "$1" in -h|--help) usage 0 ;; esac

. "$ROOT/cross/common.sh"
TARGET="$(normalize_target "$1")"; shift

ROUTE=vendored
KIND=bin
NAME=wsbeat
FLOOR=0
PROFILE=release-small
STATIC_LIBC=0
BUILD_STD=0
PROFILE_SET=0
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --vendored|--vendored-openssl) ROUTE=vendored ;;
    --system-openssl)              ROUTE=system ;;
    --no-tls)                      ROUTE=none ;;
    --static-libc)                 STATIC_LIBC=1 ;;
    --build-std)                   BUILD_STD=1 ;;
    --bin)     [ $# -ge 2 ] || die "--bin needs a NAME";     KIND=bin;     NAME="$2"; shift ;;
    --example) [ $# -ge 2 ] || die "--example needs a NAME"; KIND=example; NAME="$2"; shift ;;
    --floor)   FLOOR=1 ;;
    --capi)    KIND=capi ;;
    --profile) [ $# -ge 2 ] || die "--profile needs a NAME"; PROFILE="$2"; PROFILE_SET=1; shift ;;
    -h|--help) usage 0 ;;
    --)        shift; EXTRA=("$@"); break ;;
    *)         die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done

target_names "$TARGET"

if [ "$KIND" = capi ]; then
  # The C library has its own build (cargo rustc --crate-type staticlib --crate-type cdylib);
  # same targets, same TLS routes.
  case "$ROUTE" in vendored) R=--vendored ;; system) R=--system-openssl ;; none) R=--no-tls ;; esac
  [ "$PROFILE_SET" = 1 ] || PROFILE=release-capi
  exec bash "$ROOT/capi/build.sh" "$TARGET" "$R" --profile "$PROFILE" --example --sbom
fi

if [ "$FLOOR" = 1 ]; then
  MANIFEST="$ROOT/cross/floor/Cargo.toml"
  [ "$KIND/$NAME" = "bin/wsbeat" ] && NAME=wsfloor
else
  MANIFEST="$ROOT/Cargo.toml"
fi

# ------------------------------------------------------------ preflight checks
command -v cargo >/dev/null || die "cargo not found (install rustup: https://rustup.rs)"
if command -v rustup >/dev/null && ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  die "Rust std for $TARGET is not installed: run  rustup target add $TARGET  (or cross/setup-debian.sh)"
fi
if [ -n "$GNU" ] && [ "$DEBARCH" != amd64 ] && ! command -v "$GNU-gcc" >/dev/null; then
  die "$GNU-gcc not found: run  cross/setup-debian.sh  (or apt-get install gcc-$GNU libc6-dev-$DEBARCH-cross)"
fi

route_features "$ROUTE" "$MANIFEST"
case "$ROUTE" in
  vendored)
    command -v perl >/dev/null || die "the vendored OpenSSL build needs perl: apt-get install perl"
    command -v make >/dev/null || die "the vendored OpenSSL build needs make: apt-get install make"
    ;;
  system)
    system_openssl_env "$TARGET" || exit 1
    ;;
  none)
    # Examples and tests also build the dev-dependencies, which link OpenSSL
    # (test servers); reuse a static OpenSSL from an earlier vendored build.
    if [ "$KIND" = example ] || [ -n "${CROSS_OPENSSL_PREBUILT:-}" ]; then
      use_prebuilt_openssl "$TARGET" "${CROSS_OPENSSL_PREBUILT:-auto}" ||
        echo "build.sh: note: no prebuilt OpenSSL for $TARGET; if openssl-sys fails, run cross/build.sh $TARGET (vendored) first" >&2
    fi
    ;;
esac

# Static glibc: only without OpenSSL, which would still want its shared libraries.
if [ "$STATIC_LIBC" = 1 ]; then
  [ "$ROUTE" = none ] || die "--static-libc goes with --no-tls (OpenSSL is linked dynamically or vendored)"
  FEATURES+=(--config "target.$TARGET.rustflags=[\"-Ctarget-feature=+crt-static\"]")
  # Its own target directory: other rustflags would make the next dynamic build start over.
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/static-libc}"
fi

ART=(--bin "$NAME")
[ "$KIND" = example ] && ART=(--example "$NAME")

TOOLCHAIN=()
if [ "$BUILD_STD" = 1 ]; then
  rustup run nightly rustc --version >/dev/null 2>&1 ||
    die "--build-std needs the nightly toolchain: rustup toolchain install nightly --component rust-src"
  [ -d "$(rustup run nightly rustc --print sysroot)/lib/rustlib/src/rust/library" ] ||
    die "--build-std needs rust-src: rustup component add rust-src --toolchain nightly"
  TOOLCHAIN=(+nightly)
  FEATURES+=(-Zbuild-std=std,panic_abort -Zbuild-std-features=)
  # Its own target directory: a std built from source invalidates every other build.
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/build-std}"
fi

# ---------------------------------------------------------------------- build
echo "==> cargo build --target $TARGET --profile $PROFILE ${FEATURES[*]} ${ART[*]} ${EXTRA[*]:-}" >&2
JSON="$(mktemp)"
trap 'rm -f "$JSON"' EXIT
set +e
cargo ${TOOLCHAIN[@]+"${TOOLCHAIN[@]}"} build \
  --manifest-path "$MANIFEST" \
  --config "$CONFIG" \
  --target "$TARGET" \
  --profile "$PROFILE" \
  "${FEATURES[@]}" "${ART[@]}" \
  --message-format=json-render-diagnostics \
  ${EXTRA[@]+"${EXTRA[@]}"} >"$JSON"
rc=$?
set -e
[ $rc -eq 0 ] || die "cargo build failed (exit $rc)"

# The artifact path as cargo reports it (honours CARGO_TARGET_DIR etc.).
OUT="$(grep -o '"executable":"[^"]*"' "$JSON" | tail -n1 | sed 's/^"executable":"//; s/"$//')"
if [ -z "$OUT" ] || [ ! -f "$OUT" ]; then die "could not find the built executable in cargo's output"; fi

# ---------------------------------------------------------------------- report
BYTES=$(stat -c %s "$OUT")
KIB=$(awk -v b="$BYTES" 'BEGIN { printf "%.1f", b / 1024 }')
if readelf -S -W "$OUT" 2>/dev/null | grep -q '\.symtab'; then STRIPPED="NOT stripped"; else STRIPPED="stripped"; fi
# A statically linked binary references no versioned glibc symbol and needs no library.
GLIBC=$(readelf -V -W "$OUT" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -k3,3n | tail -n1) || GLIBC=""
NEEDED=$(readelf -d -W "$OUT" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ') || NEEDED=""

echo "target:   $TARGET"
echo "route:    $ROUTE"
echo "artifact: $OUT"
echo "size:     $BYTES bytes ($KIB KiB, $STRIPPED)"
if [ "$STATIC_LIBC" = 1 ]; then
  echo "glibc:    linked in (static; the device needs no glibc)"
  echo "needs:    nothing"
else
  echo "glibc:    >= ${GLIBC:-?}   (max GLIBC_ symbol version referenced)"
  echo "needs:    ${NEEDED:-?}"
fi

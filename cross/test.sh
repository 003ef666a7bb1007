#!/usr/bin/env bash
# Run wsbeat's tests for an ARM target under qemu-user.
#
# usage: cross/test.sh TARGET [TLS-ROUTE] [CARGO-TEST-ARGS...] [-- TEST-BINARY-ARGS...]
#
#   TARGET      armv7-unknown-linux-gnueabihf | aarch64-unknown-linux-gnu
#               (aliases: armv7, armhf, aarch64, arm64)
#   TLS-ROUTE   (default) --vendored | --system-openssl | --no-tls  (as build.sh)
#   everything else goes to `cargo test` unchanged, e.g.
#       cross/test.sh armv7 --lib
#       cross/test.sh aarch64 --test heartbeat -- --nocapture
#
# Environment:
#   CROSS_TEST_PROFILE   cargo profile for the test build (default: cargo's own
#                        `test` profile, i.e. dev; measured fastest end to end,
#                        see cross/README.md)
#   CROSS_TEST_TIMEOUT   seconds before the whole run is killed (default 900);
#                        a hung qemu process must not eat the CI budget
#   CROSS_OPENSSL_PREBUILT  auto (default) | DIR | no: link the static OpenSSL
#                        an earlier build already made instead of building it
#                        again for the test profile (see below)
#   CROSS_TEST_RUNNER    exported to the tests: the qemu command line that runs
#                        a target binary.  Tests that spawn a target binary
#                        (CARGO_BIN_EXE_*) must prefix it with this, because
#                        without binfmt_misc the kernel cannot exec ARM ELF.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG="$ROOT/cross/config.toml"

die() { echo "test.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-2}"; }

[ $# -ge 1 ] || usage
case "$1" in -h|--help) usage 0 ;; esac
. "$ROOT/cross/common.sh"
TARGET="$(normalize_target "$1")"; shift
target_names "$TARGET"
[ -n "$QEMU" ] || die "unsupported target '$TARGET' (armv7-unknown-linux-gnueabihf or aarch64-unknown-linux-gnu)"

ROUTE=vendored
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --vendored|--vendored-openssl) ROUTE=vendored ;;
    --system-openssl)              ROUTE=system ;;
    --no-tls)                      ROUTE=none ;;
    --) ARGS+=("$@"); break ;;      # test-binary args, passed through as is
    *)  ARGS+=("$1") ;;
  esac
  shift
done

command -v "$QEMU" >/dev/null || die "$QEMU not found: run cross/setup-debian.sh (apt-get install qemu-user)"
command -v "$GNU-gcc" >/dev/null || die "$GNU-gcc not found: run cross/setup-debian.sh"
if command -v rustup >/dev/null && ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  die "rustup target $TARGET not installed: rustup target add $TARGET"
fi

route_features "$ROUTE" "$ROOT/Cargo.toml"
[ "$ROUTE" = system ] && { system_openssl_env "$TARGET" || exit 1; }

# Building OpenSSL from source for the test (dev) profile costs ~1.5 min per
# target on 2 cores.  So by default (CROSS_OPENSSL_PREBUILT=auto) the tests
# link the static OpenSSL that an earlier build already produced, the newest
# one openssl-src left in the target dir (e.g. by cross/build.sh): same
# openssl-src, so the same OpenSSL, still static.  CROSS_OPENSSL_PREBUILT=DIR
# names an install prefix with lib/libssl.a; =no builds it again (vendored).
# --no-tls still needs an OpenSSL for the target: the tests' dev-dependency
# `openssl` (test servers) links it; there auto is the default.
case "$ROUTE" in
  vendored)
    if [ "${CROSS_OPENSSL_PREBUILT:-auto}" != no ]; then
      use_prebuilt_openssl "$TARGET" "${CROSS_OPENSSL_PREBUILT:-auto}" ||
        echo "test.sh: no prebuilt OpenSSL found for $TARGET; building it (vendored)" >&2
    fi
    ;;
  none)
    use_prebuilt_openssl "$TARGET" "${CROSS_OPENSSL_PREBUILT:-auto}" ||
      die "--no-tls: the tests' dev-dependency openssl still needs a target OpenSSL; run
  cross/build.sh $TARGET first (its vendored OpenSSL is then reused), or set
  CROSS_OPENSSL_PREBUILT=DIR, or use --system-openssl"
    ;;
esac

PROFILE_ARGS=()
[ -n "${CROSS_TEST_PROFILE:-}" ] && PROFILE_ARGS=(--profile "$CROSS_TEST_PROFILE")
TIMEOUT="${CROSS_TEST_TIMEOUT:-900}"
SYSROOT="/usr/$GNU"
LDPATH="$SYSROOT/lib"
[ "$ROUTE" = system ] && LDPATH="$LDPATH:${OPENSSL_RUNTIME_DIR:-/usr/lib/$GNU}"
export CROSS_TEST_RUNNER="$QEMU -L $SYSROOT -E LD_LIBRARY_PATH=$LDPATH"

# For the system-openssl route: same runner as cross/config.toml but with the
# multiarch library dir on the path (a later --config KEY=VALUE replaces it).
RUNNER_CFG=()
[ "$ROUTE" = system ] && RUNNER_CFG=(--config "target.$TARGET.runner=[\"$QEMU\", \"-L\", \"$SYSROOT\", \"-E\", \"LD_LIBRARY_PATH=$LDPATH\"]")

echo "==> [$TARGET] cargo test ${PROFILE_ARGS[*]:-} ${FEATURES[*]} ${ARGS[*]:-}" >&2
cd "$ROOT"
start=$(date +%s)
# Without --foreground, timeout runs cargo in its own process group and kills
# the whole group (qemu included) when time is up: right for CI.  From an
# interactive terminal that would also hide Ctrl-C from cargo, so there use
# --foreground.
TO_ARGS=(-k 15)
[ -t 0 ] && TO_ARGS+=(--foreground)
set +e
timeout "${TO_ARGS[@]}" "$TIMEOUT" cargo test \
  --config "$CONFIG" \
  ${RUNNER_CFG[@]+"${RUNNER_CFG[@]}"} \
  --target "$TARGET" \
  ${PROFILE_ARGS[@]+"${PROFILE_ARGS[@]}"} \
  "${FEATURES[@]}" \
  ${ARGS[@]+"${ARGS[@]}"}
rc=$?
set -e
secs=$(( $(date +%s) - start ))
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
  echo "test.sh: [$TARGET] timed out after ${TIMEOUT}s (CROSS_TEST_TIMEOUT)" >&2
fi
echo "==> [$TARGET] cargo test exit $rc in ${secs}s" >&2
exit $rc

#!/usr/bin/env bash
# The ARM part of CI (called from .ci/run):
#   1. cross/setup-debian.sh   (no-op when everything is installed)
#   2. cross/build.sh for armv7 and aarch64, default vendored-OpenSSL route,
#      printing each binary's size and glibc floor, then `wsbeat --version`
#      under qemu as a smoke test of the release binary
#   3. cross/build.sh --no-tls --static-libc for both, started under qemu (it must
#      resolve localhost with glibc's built-in resolver)
#   4. cross/build.sh --capi for both (the C library, static and shared, vendored
#      OpenSSL; with an SBOM), and --capi --no-tls for armv7: the stripped C example
#      daemon linked statically against libwsbeat.a is measured each time
#   5. cross/test.sh for armv7 and aarch64 (all tests, under qemu-user), then the C API
#      tests (tests/capi) for CROSS_CAPI_TARGETS (default armv7)
#
# Every step runs even if an earlier build/test step failed; the exit status
# is non-zero if any did.  Runs with CI=true and no stdin.
#
# Environment:
#   CROSS_TARGETS     targets to do (default: both)
#   CROSS_CI_ARTIFACT what build.sh builds (default: "--bin wsbeat", falling
#                     back to the library when the crate has no wsbeat binary)
#   CROSS_TEST_ARGS   extra args for test.sh (default: --no-fail-fast)
#   CROSS_TEST_TIMEOUT, CROSS_TEST_PROFILE: see cross/test.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
TARGETS=${CROSS_TARGETS:-"armv7-unknown-linux-gnueabihf aarch64-unknown-linux-gnu"}
export CROSS_TARGETS="$TARGETS"

t0=$(date +%s)
stamp() { echo "[cross/ci +$(( $(date +%s) - t0 ))s] $*"; }

stamp "setup"
bash cross/setup-debian.sh </dev/null

# Is there a wsbeat binary target yet?  (The CLI is written after the library.)
has_bin() {
  [ -f src/bin/wsbeat.rs ] || [ -f src/bin/wsbeat/main.rs ] || [ -f src/main.rs ] ||
    grep -qE '^[[:space:]]*\[\[bin\]\]' Cargo.toml
}

. cross/common.sh
failed=()
summary=()

# smoke ARTIFACT TRIPLE: start the built binary under qemu (`--version`), which
# proves the dynamic loader, glibc symbol versions and startup on the target.
smoke() {
  local out="$1" t="$2"
  target_names "$t"
  [ -n "$QEMU" ] || return 0
  local v
  if v=$("$QEMU" -L "/usr/$GNU" -E "LD_LIBRARY_PATH=/usr/$GNU/lib" "$out" --version 2>&1 </dev/null); then
    echo "smoke: $QEMU $(basename "$out") --version -> $v"
  else
    echo "smoke: $QEMU $out --version FAILED: $v" >&2
    return 1
  fi
}

for t in $TARGETS; do
  stamp "build $t"
  if [ -n "${CROSS_CI_ARTIFACT:-}" ] || has_bin; then
    # shellcheck disable=SC2086
    if out=$(bash cross/build.sh "$t" ${CROSS_CI_ARTIFACT:-} </dev/null); then
      echo "$out"
      art=$(sed -n 's/^artifact: *//p' <<<"$out")
      if [ -z "${CROSS_CI_ARTIFACT:-}" ]; then smoke "$art" "$t" || failed+=("smoke $t"); fi
      summary+=("$t: $(grep '^size:' <<<"$out" | sed 's/^size: *//'); glibc $(grep '^glibc:' <<<"$out" | awk '{print $2, $3}')")
    else
      failed+=("build $t")
    fi
  else
    echo "cross/ci: no wsbeat binary target yet; building the library only"
    if cargo build --lib --config cross/config.toml --target "$t" \
         --profile release-small --features vendored-openssl </dev/null; then
      summary+=("$t: library only (no wsbeat binary yet)")
    else
      failed+=("build-lib $t")
    fi
  fi
done

# The smallest-RSS route: no TLS, glibc linked in. Started under qemu against a port where
# nothing listens, it must resolve "localhost" with glibc's built-in resolver and report the
# refused connection (not a resolve error), then exit 1 (gave up).
static_smoke() {
  local out="$1" t="$2" events
  target_names "$t"
  [ -n "$QEMU" ] || return 0
  events=$("$QEMU" "$out" ws://localhost:1/ --max-retries 0 -q --events - 2>&1 </dev/null) && return 1
  if grep -q '"event":"connect_failed".*refused' <<<"$events"; then
    echo "smoke: $QEMU $(basename "$out") (static) resolved localhost, connection refused as expected"
  else
    echo "smoke: static $out: unexpected output: $events" >&2
    return 1
  fi
}
for t in $TARGETS; do
  stamp "build $t, no TLS, static glibc"
  if has_bin && out=$(bash cross/build.sh "$t" --no-tls --static-libc </dev/null); then
    art=$(sed -n 's/^artifact: *//p' <<<"$out")
    static_smoke "$art" "$t" || failed+=("static smoke $t")
    summary+=("$t no TLS, static glibc: $(grep '^size:' <<<"$out" | sed 's/^size: *//')")
  elif has_bin; then
    failed+=("static build $t")
  fi
done

# The C library: static archive, shared object, header, pkg-config file, SBOM, and the size
# of the C example daemon linked statically against the archive (glibc shared).
capi_sizes() { # capi_sizes LABEL OUTPUT
  local st sh ex
  st=$(sed -n 's/^static: .*(\([0-9]*\) bytes).*/\1/p' <<<"$2")
  sh=$(sed -n 's/^shared: .*(\([0-9]*\) bytes.*/\1/p' <<<"$2")
  ex=$(sed -n 's/^example: .*(\([0-9]*\) bytes.*/\1/p' <<<"$2")
  summary+=("$1: libwsbeat.a $st B, libwsbeat.so $sh B, C example (static libwsbeat, stripped) $ex B")
}
for t in $TARGETS; do
  stamp "build $t, C library"
  if out=$(bash cross/build.sh "$t" --capi </dev/null); then
    echo "$out"
    capi_sizes "$t C library (vendored OpenSSL)" "$out"
  else
    failed+=("capi build $t")
  fi
  case "$t" in
    armv7*)
      stamp "build $t, C library, no TLS"
      if out=$(bash cross/build.sh "$t" --capi --no-tls </dev/null); then
        echo "$out"
        capi_sizes "$t C library (no TLS)" "$out"
      else
        failed+=("capi build $t no TLS")
      fi ;;
  esac
done

for t in $TARGETS; do
  stamp "test $t"
  # shellcheck disable=SC2086
  # test.sh reuses the OpenSSL the release build above compiled
  # (CROSS_OPENSSL_PREBUILT=auto, its default; saves ~1.5 min per target).
  bash cross/test.sh "$t" ${CROSS_TEST_ARGS:---no-fail-fast} </dev/null || failed+=("test $t")
done

for t in ${CROSS_CAPI_TARGETS:-armv7-unknown-linux-gnueabihf}; do
  stamp "C API tests $t"
  # tests/capi builds the C library and the C test runner for the target (no TLS) and runs
  # every case through qemu; same build settings as the run above, so only it compiles.
  bash cross/test.sh "$t" --test capi </dev/null || failed+=("C API tests $t")
done

stamp "done"
echo "cross/ci summary:"
for s in ${summary[@]+"${summary[@]}"}; do echo "  $s"; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "cross/ci: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "cross/ci: ok ($(( $(date +%s) - t0 ))s)"

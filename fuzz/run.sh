#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time and prints the executions of each.
#
#   fuzz/run.sh [SECONDS]        default 60 per target; .ci/run uses 20
#
# Needs a nightly toolchain (`cargo +nightly`); installs cargo-fuzz (`cargo install --locked`,
# about a minute, once) when it is missing. Without nightly it says so and exits 0: the
# fuzzers are extra evidence, not a gate that a stable-only machine can run.
# Targets run without a sanitizer (`-s none`: wsbeat is safe Rust, and ASan's quarantine
# would fill the RSS limit by itself) and with debug assertions and overflow checks (`-a`).
# libFuzzer limits: -rss_limit_mb=256 (also the largest single allocation), -timeout=10 s
# per input. Seeds in fuzz/seeds/<target> (committed); the growing corpus in
# fuzz/corpus/<target> and any crash in fuzz/artifacts/<target> (both gitignored).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-60}"
targets="server_bytes config json_writer journal netlink"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain (cargo +nightly): skipped"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install --locked --quiet cargo-fuzz
fi
cargo +nightly fuzz build -s none -a
summary=()
for t in $targets; do
  mkdir -p "fuzz/corpus/$t"
  seeds=()
  [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
  log="fuzz/target/$t.log"
  echo "fuzz: $t for ${secs}s"
  if ! cargo +nightly fuzz run -s none -a "$t" "fuzz/corpus/$t" ${seeds[@]+"${seeds[@]}"} -- \
      -max_total_time="$secs" -rss_limit_mb=256 -timeout=10 -print_final_stats=1 \
      >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $t FAILED (artifact in fuzz/artifacts/$t)" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
  summary+=("$t: $execs executions in ${secs}s ($(( execs / secs ))/s), $cov, peak RSS ${rss} MB")
done
printf 'fuzz: %s\n' "${summary[@]}"

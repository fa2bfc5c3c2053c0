#!/usr/bin/env bash
# Run every cargo-fuzz target for a fixed time (FUZZ_SECONDS, default 600 s
# each, one after another), or the targets named as arguments. Any crash
# stops the script with its input in fuzz/artifacts/TARGET/; make it
# a unit test of the parser it broke, beside the others, so it is replayed
# for good by cargo test.
#
# cargo fuzz builds with AddressSanitizer and coverage instrumentation,
# which rustc accepts only as -Z options. RUSTC_BOOTSTRAP=1 lets the stable
# toolchain take them, so no nightly toolchain is needed (none can be
# fetched here).
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${FUZZ_SECONDS:-600}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(note proof event httpsig http bundle identity meta_image meta_pdf meta_office meta_mp4)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O

mkdir -p logs
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t"
  cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  echo "== $t: $SECONDS_EACH s"
  if ! cargo fuzz run -O "$t" "corpus/$t" -- \
      -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -timeout=30 \
      -print_final_stats=1 > "logs/$t.log" 2>&1; then
    tail -40 "logs/$t.log"
    echo "FUZZ CRASH in $t: see fuzz/artifacts/$t/ and fuzz/logs/$t.log" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo '?')
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "logs/$t.log" | tail -1 || true)
  echo "   $t: $runs runs in $SECONDS_EACH s ($speed/s), $cov, corpus $(ls "corpus/$t" | wc -l) inputs, no crash"
done

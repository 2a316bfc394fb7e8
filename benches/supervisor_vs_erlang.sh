#!/usr/bin/env bash
# Supervision side by side, in one run: Erlang/OTP's supervisor and ergo's,
# on the same workloads (benches/src/supervision.rs and
# benches/erlang/supervisor_bench.erl): restart latency (a child killed →
# its replacement has run init) and starting a simple_one_for_one
# supervisor with 10,000 gen_server children. Prints every figure, then the
# ratios; the target is ergo faster than Erlang on both.
#
#   benches/supervisor_vs_erlang.sh [SECONDS_PER_FIGURE]     (default 2)
#   ALLOC=jemalloc benches/supervisor_vs_erlang.sh ...   (the Rust side on jemalloc,
#                                                  not glibc malloc)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=supervisor DEFAULT_SECS=2
source benches/common.sh

echo "# erlang"
erl -noshell -pa "$WORK" -run supervisor_bench main "$SECS" | tee "$WORK/erlang.txt"
echo "# ergo"
./target/release/supervisor_side "$SECS" | tee "$WORK/rust.txt"

echo
echo "# ratios, measured in this run (Erlang's figure / ergo's: above 1 means ergo is faster)"
awk '
  FNR == NR { if ($1 !~ /^#/ && NF == 3) erl[$1] = $2; next }
  $1 !~ /^#/ && NF == 3 { rs[$1] = $2 }
  function row(label, e, r, target,    ve, vr, ratio) {
    ve = erl[e]; vr = rs[r]
    if (ve == "" || vr == "" || vr + 0 == 0) {
      printf "%-34s %14s %14s %8s  missing figure\n", label, ve, vr, "-"
      return
    }
    ratio = ve / vr
    if (target == "") {
      printf "%-34s %14.1f %14.1f %7.2fx\n", label, ve, vr, ratio
    } else {
      printf "%-34s %14.1f %14.1f %7.2fx  %s\n", label, ve, vr, ratio, (ratio > target) ? "ok" : "MISS"
    }
  }
  END {
    printf "%-34s %14s %14s %8s\n", "figure (lower is better)", "erlang", "ergo", "erl/ergo"
    row("restart latency, ns", "restart_latency", "ergo_restart_latency", 1.0)
    row("10k simple_one_for_one start, us", "sup_10k_start", "ergo_sup_10k_start", 1.0)
    row("10k children stop (context), us", "sup_10k_stop", "ergo_sup_10k_stop", "")
  }
' "$WORK/erlang.txt" "$WORK/rust.txt"

#!/usr/bin/env bash
# ETF throughput side by side, in one run: Erlang/OTP's term_to_binary and
# binary_to_term, ergo-etf, and the eetf crate, on the same four shapes.
# Prints every figure and then the ratios ergo/Erlang and ergo/eetf.
#
#   benches/etf_vs_erlang.sh [SECONDS_PER_FIGURE]     (default 1.0)
#   ALLOC=jemalloc benches/etf_vs_erlang.sh ...   (the Rust side on jemalloc,
#                                                  not glibc malloc)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=etf DEFAULT_SECS=1.0
source benches/common.sh

echo "# erlang"
erl -noshell -pa "$WORK" -run etf_bench main "$SECS" | tee "$WORK/erlang.txt"
echo "# ergo-etf and eetf"
./target/release/etf_side "$SECS" | tee "$WORK/rust.txt"

echo
echo "# ratios (higher is better for ergo-etf), measured in this run"
awk '
  FNR == NR { if ($1 !~ /^#/) erl[$1] = $2; next }
  $1 !~ /^#/ { rs[$1] = $2; order[++n] = $1 }
  END {
    printf "%-34s %14s %14s %14s %9s %9s\n", "figure", "ergo-etf", "erlang", "eetf", "vs erl", "vs eetf"
    for (i = 1; i <= n; i++) {
      k = order[i]
      if (k !~ /^etf_.*_rate$/) continue
      base = k; sub(/^etf_(encode|decode)_(vectored_|shared_|typed_)?/, "", base)
      dir = (k ~ /^etf_encode/) ? "encode" : "decode"
      ek = "etf_" dir "_" base
      tk = "eetf_" dir "_" base
      e = erl[ek]; t = rs[tk]
      printf "%-34s %14.0f %14.0f %14.0f %8.2fx %8.2fx\n", k, rs[k], e, t, (e > 0 ? rs[k] / e : 0), (t > 0 ? rs[k] / t : 0)
    }
    if (rs["term_encode_order_rate"] > 0)
      printf "derive encode vs build Term + encode: %.2fx\n", rs["derive_encode_order_rate"] / rs["term_encode_order_rate"]
    if (rs["term_decode_order_rate"] > 0)
      printf "derive decode vs decode Term + from_term: %.2fx\n", rs["derive_decode_order_rate"] / rs["term_decode_order_rate"]
  }' "$WORK/erlang.txt" "$WORK/rust.txt"

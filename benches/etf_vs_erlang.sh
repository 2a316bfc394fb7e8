#!/usr/bin/env bash
# ETF throughput side by side, in one run: Erlang/OTP's term_to_binary and
# binary_to_term, ergo-etf, and the eetf and erltf crates, on the same four
# shapes. Prints every figure and then the ratios ergo/Erlang, ergo/eetf and
# ergo/erltf. erltf decodes the bytes ergo-etf encoded; ergo-etf's shared
# (zero-copy) decode of the 1 MB binary is set against erltf's borrowed one.
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
echo "# ergo-etf, eetf and erltf"
"$BIN/etf_side" "$SECS" | tee "$WORK/rust.txt"

echo
echo "# ratios (higher is better for ergo-etf), measured in this run"
awk '
  FNR == NR { if ($1 !~ /^#/) erl[$1] = $2; next }
  $1 !~ /^#/ { rs[$1] = $2; order[++n] = $1 }
  END {
    printf "%-34s %14s %14s %14s %14s %9s %9s %9s\n", "figure", "ergo-etf", "erlang", "eetf", "erltf", "vs erl", "vs eetf", "vs erltf"
    for (i = 1; i <= n; i++) {
      k = order[i]
      if (k !~ /^etf_.*_rate$/) continue
      base = k; sub(/^etf_(encode|decode)_(vectored_|shared_|typed_)?/, "", base)
      dir = (k ~ /^etf_encode/) ? "encode" : "decode"
      ek = "etf_" dir "_" base
      tk = "eetf_" dir "_" base
      lk = "erltf_" dir "_" base
      if (k ~ /^etf_decode_shared_/ && ("erltf_decode_borrowed_" base) in rs) lk = "erltf_decode_borrowed_" base
      e = erl[ek]; t = rs[tk]; l = rs[lk]
      printf "%-34s %14.0f %14.0f %14.0f %14.0f %8.2fx %8.2fx %8.2fx\n", k, rs[k], e, t, l, (e > 0 ? rs[k] / e : 0), (t > 0 ? rs[k] / t : 0), (l > 0 ? rs[k] / l : 0)
    }
    if (rs["term_encode_order_rate"] > 0)
      printf "derive encode vs build Term + encode: %.2fx\n", rs["derive_encode_order_rate"] / rs["term_encode_order_rate"]
    if (rs["term_decode_order_rate"] > 0)
      printf "derive decode vs decode Term + from_term: %.2fx\n", rs["derive_decode_order_rate"] / rs["term_decode_order_rate"]
  }' "$WORK/erlang.txt" "$WORK/rust.txt"

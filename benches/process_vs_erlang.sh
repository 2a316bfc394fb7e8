#!/usr/bin/env bash
# The process runtime side by side, in one run: Erlang/OTP (one node, no
# distribution), ergo, raw tokio mpsc + oneshot (the floor), and ractor.
# Sequential call round trips, 120 parallel client/server pairs, one-way
# cast and send rates, and 1M idle processes (spawn rate, memory per
# process). Prints every figure, then the ratios against the targets.
#
#   benches/process_vs_erlang.sh [SECONDS_PER_FIGURE]     (default 2)
#   ALLOC=system benches/process_vs_erlang.sh ...   (the Rust side on glibc malloc,
#                                                  not jemalloc)
#
# Env: NOPREFAULT=1 (both sides skip touching 2 GiB before spawning),
#      RACTOR_SPAWN_N (default 100000), ERGO_SPAWN_N and SPAWN_N (Erlang)
#      (default 1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=process DEFAULT_SECS=2

# jemalloc by default here, as production tokio services commonly run:
# these figures are dominated by small allocations made on one worker and
# freed on the other, where glibc's malloc costs ergo and ractor alike (its
# figures: ALLOC=system). Erlang runs on its own allocators.
ALLOC_DEFAULT=jemalloc
source benches/common.sh

echo "# erlang (erl +P 2000000)"
PREFAULT_CMD="$PWD/target/release/process_side --prefault" \
  erl +P 2000000 -noshell -pa "$WORK" -run process_bench main "$SECS" | tee "$WORK/erlang.txt"
echo "# ergo, tokio and ractor"
./target/release/process_side "$SECS" | tee "$WORK/rust.txt"

echo
echo "# ratios, measured in this run (targets: issue 22's where it sets one, else issue 2's)"
awk "$(cat benches/ratios.awk)"'
  END {
    printf "%-52s %12s %12s %9s %8s\n", "comparison (a / b)", "a", "b", "a/b", "target"
    print "-- sequential call, ns/op (lower a/b is better)"
    row("ergo_local_call / tokio floor", "ergo_local_call", "tokio_rr_unbounded_oneshot", "<=", 1.2)
    row("ergo_local_call / ractor_call", "ergo_local_call", "ractor_call", "", "")
    row("ergo_local_call / erlang local_call_int", "ergo_local_call", "local_call_int", "", "")
    row("ergo_local_call_from_task / tokio floor", "ergo_local_call_from_task", "tokio_rr_unbounded_oneshot", "<=", 1.5)
    row("ergo_local_call / tokio floor with timeout", "ergo_local_call", "tokio_rr_oneshot_timeout", "", "")
    row("ergo_local_call_from_task / tokio floor with timeout", "ergo_local_call_from_task", "tokio_rr_oneshot_timeout", "", "")
    row("ergo_local_call_ct / tokio floor ct", "ergo_local_call_ct", "tokio_rr_unbounded_oneshot_ct", "<=", 1.5)
    row("ergo_local_call_ct / ractor_call_ct", "ergo_local_call_ct", "ractor_call_ct", "", "")
    print "-- 120 parallel pairs, calls/s (higher a/b is better)"
    row("par120_ergo / par120_ractor", "par120_ergo", "par120_ractor", ">=", 1.0)
    row("par120_ergo / erlang parallel120_local", "par120_ergo", "parallel120_local_rate", ">=", 2.0)
    row("par120_ergo / par120_tokio", "par120_ergo", "par120_tokio", "", "")
    row("par120_ergo_ct / par120_ractor_ct", "par120_ergo_ct", "par120_ractor_ct", ">=", 1.0)
    print "-- one-way, msgs/s (higher a/b is better)"
    row("ergo_cast_rate / erlang cast_local_rate", "ergo_cast_rate", "cast_local_rate", ">=", 2.0)
    row("ergo_send_rate / erlang send_local_rate", "ergo_send_rate", "send_local_rate", ">=", 3.0)
    row("ergo_send_rate / tokio floor (mpsc, same loop)", "ergo_send_rate", "tokio_send_rate", "", "")
    row("ergo_cast_rate / ractor_cast_rate", "ergo_cast_rate", "ractor_cast_rate", "", "")
    print "-- spawn (rate: higher is better; memory: lower is better)"
    absolute("ergo_spawn_rate, spawns/s", "ergo_spawn_rate", ">=", 1500000)
    row("ergo_spawn_rate / erlang spawn_1M_rate", "ergo_spawn_rate", "spawn_1M_rate", "", "")
    row("ergo_spawn_rate / ractor_spawn_rate", "ergo_spawn_rate", "ractor_spawn_rate", "", "")
    absolute("ergo_mem_per_process, bytes", "ergo_mem_per_process", "<=", 512)
    row("ergo_mem / erlang spawn_1M_mem_per_process", "ergo_mem_per_process", "spawn_1M_mem_per_process", "", "")
    row("ergo_mem / erlang spawn_1M_rss_per_process", "ergo_mem_per_process", "spawn_1M_rss_per_process", "", "")
    row("ergo_mem / ractor_mem_per_actor", "ergo_mem_per_process", "ractor_mem_per_actor", "", "")
  }' "$WORK/erlang.txt" "$WORK/rust.txt"

#!/usr/bin/env bash
# The distribution layer side by side, in one run, all on 127.0.0.1:
# Erlang <-> Erlang (two erl nodes), ergo <-> ergo (two nodes in one OS
# process, over real TCP), a plain tokio TCP ping-pong (the floor), and an
# Erlang client calling the Rust interop_node's echo (small, 1 MB, and from
# 120 processes at once). Sequential call round
# trips for four payloads, 120 parallel client/server pairs, Erlang client
# to Rust server versus to Erlang server, 1 MB echo throughput, a typed
# client against the untyped Node::call, the time to set up a connection,
# and the work of losing a connection on a node of 100,000 processes. Prints every figure, then the
# ratios against the targets.
#
#   benches/dist_vs_erlang.sh [SECONDS_PER_FIGURE]     (default 2)
#   ALLOC=jemalloc benches/dist_vs_erlang.sh ...   (the Rust side on jemalloc,
#                                                  not glibc malloc)
#
# Starts its own EPMD (this workspace's epmd binary) on a free port, and
# stops everything it started when it exits. The Erlang nodes run with
# erl's defaults; erl's own ERL_FLAGS reaches both of them (e.g.
# ERL_FLAGS="+sbwt none" to keep their schedulers from busy-waiting).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=dist DEFAULT_SECS=2
source benches/common.sh
source benches/nodes.sh
COOKIE="distbench_$$"

# Servers: Erlang node b, and the Rust interop_node r.
erl -name b@127.0.0.1 -setcookie "$COOKIE" -start_epmd false -noshell \
  -pa "$WORK" -run dist_bench server >"$WORK/b.log" 2>&1 &
PIDS+=($!)
./target/release/examples/interop_node --name r@127.0.0.1 --cookie "$COOKIE" \
  >"$WORK/r.log" 2>&1 &
PIDS+=($!)
wait_for "grep -qx ready '$WORK/r.log'" 30

echo "# erlang (a@127.0.0.1 -> b@127.0.0.1, and -> r@127.0.0.1 the Rust interop_node), EPMD port $EPMD_PORT"
timeout $((60 + ${SECS%.*} * 20)) \
  erl -name a@127.0.0.1 -setcookie "$COOKIE" -start_epmd false -noshell \
  -pa "$WORK" -run dist_bench client "$SECS" b@127.0.0.1 r@127.0.0.1 | tee "$WORK/erlang.txt" ||
  echo "# the erlang side FAILED (see above)"

# The Erlang servers and the Rust interop node are done: stop them so that
# they take no CPU from the Rust figures.
for p in "${PIDS[@]:1}"; do kill "$p" 2>/dev/null || true; done

echo "# ergo and the tcp floor"
timeout $((60 + ${SECS%.*} * 20)) \
  ./target/release/dist_side "$SECS" --epmd-port "$EPMD_PORT" | tee "$WORK/rust.txt" ||
  echo "# the rust side FAILED (see above)"

echo
echo "# ratios, measured in this run (targets: issue 22's where it sets one, else issue 2's)"
awk "$(cat benches/ratios.awk)"'
  END {
    printf "%-52s %12s %12s %9s %8s\n", "comparison (a / b)", "a", "b", "a/b", "target"
    print "-- sequential call across two nodes, ns/op: erlang/ergo (higher is better)"
    row("erlang_call_int / ergo_call_int", "erlang_call_int", "ergo_call_int", ">=", 2)
    row("erlang_call_str / ergo_call_str", "erlang_call_str", "ergo_call_str", ">=", 2)
    row("erlang_call_pid / ergo_call_pid", "erlang_call_pid", "ergo_call_pid", ">=", 2)
    row("erlang_call_bin1mb / ergo_call_bin1mb", "erlang_call_bin1mb", "ergo_call_bin1mb", ">=", 3)
    print "-- sequential call against the TCP floor, ns/op: ergo/tcp (lower is better)"
    row("ergo_call_int / tcp_rr_int", "ergo_call_int", "tcp_rr_int", "<=", 1.5)
    row("ergo_call_str / tcp_rr_str", "ergo_call_str", "tcp_rr_str", "<=", 1.5)
    row("ergo_call_pid / tcp_rr_pid", "ergo_call_pid", "tcp_rr_pid", "<=", 1.5)
    row("ergo_call_bin1mb / tcp_rr_bin1mb", "ergo_call_bin1mb", "tcp_rr_bin1mb", "<=", 1.5)
    print "-- 120 parallel pairs across two nodes, calls/s (higher is better)"
    row("ergo_par120_rate / erlang_par120_rate", "ergo_par120_rate", "erlang_par120_rate", ">=", 2)
    print "-- an Erlang client, Rust server vs Erlang server, calls/s (higher is better)"
    row("erlang_client_to_rust / _to_erlang", "erlang_client_to_rust_rate", "erlang_client_to_erlang_rate", ">=", 1.0)
    row("erlang_client_to_rust / _to_erlang, 1 MB", "erlang_client_to_rust_bin1mb_rate", "erlang_client_to_erlang_bin1mb_rate", ">=", 1.0)
    row("erlang_client120_to_rust / _to_erlang", "erlang_client120_to_rust_rate", "erlang_client120_to_erlang_rate", ">=", 1.0)
    print "-- 1 MB echo throughput, payload MB/s (higher is better)"
    row("ergo_bin1mb_mbps / tcp_bin1mb_mbps", "ergo_bin1mb_mbps", "tcp_bin1mb_mbps", ">=", 0.6)
    row("ergo_bin1mb_mbps / erlang_bin1mb_mbps", "ergo_bin1mb_mbps", "erlang_bin1mb_mbps", "", "")
    print "-- a typed client against the untyped Node::call, same server, ns/op (lower is better)"
    row("ergo_typed_call_int / ergo_node_call_int", "ergo_typed_call_int", "ergo_node_call_int", "<=", 1.1)
    print "-- setting up a connection until the first reply, us: erlang/ergo (higher is better)"
    row("erlang_handshake_us / ergo_handshake_us", "erlang_handshake_us", "ergo_handshake_us", "", "")
    print "-- losing a connection: 100,000 processes, 10 linked across it, us (lower is better)"
    absolute("nodedown_100k_us", "nodedown_100k_us", "<=", 1000)
  }' "$WORK/erlang.txt" "$WORK/rust.txt"

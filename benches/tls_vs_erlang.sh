#!/usr/bin/env bash
# TLS distribution side by side, in one run, all on 127.0.0.1: Erlang <->
# Erlang over `-proto_dist inet_tls` (two erl nodes, TLS 1.3 and 1.2
# offered, self-signed certificate, verify_none), ergo <-> ergo over TLS in
# auto mode (two nodes in one OS process), ergo <-> ergo plain (the same
# figures without TLS), and an Erlang client calling the Rust interop_node's
# echo over TLS against calling the Erlang echo over TLS. Sequential call
# round trips (int and 1 MB), 120 parallel pairs, and the time to set up a
# connection (connect, TLS and distribution handshakes, first reply).
# Prints every figure, then the ratios against issue 17's targets.
#
#   benches/tls_vs_erlang.sh [SECONDS_PER_FIGURE]     (default 2)
#
# Starts its own EPMD (this workspace's epmd binary) on a free port, and
# stops everything it started when it exits.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=dist DEFAULT_SECS=2
source benches/common.sh
source benches/nodes.sh
COOKIE="tlsbench_$$"

# The Erlang nodes' TLS: a self-signed certificate, peers not verified
# (what the Rust side's auto mode does), TLS 1.3 offered as well as 1.2
# (Erlang's distribution offers only 1.2 unless told).
./target/release/dist_side --make-cert "$WORK"
cat >"$WORK/ssl_dist.conf" <<CONF
[{server, [{certfile, "$WORK/cert.pem"}, {keyfile, "$WORK/key.pem"},
           {verify, verify_none}, {versions, ['tlsv1.3', 'tlsv1.2']}]},
 {client, [{verify, verify_none}, {versions, ['tlsv1.3', 'tlsv1.2']}]}].
CONF
ERL_TLS=(-proto_dist inet_tls -ssl_dist_optfile "$WORK/ssl_dist.conf")

erl -name b@127.0.0.1 -setcookie "$COOKIE" -start_epmd false -noshell "${ERL_TLS[@]}" \
  -pa "$WORK" -run dist_bench server >"$WORK/b.log" 2>&1 &
PIDS+=($!)
./target/release/examples/interop_node --name r@127.0.0.1 --cookie "$COOKIE" --tls-auto \
  >"$WORK/r.log" 2>&1 &
PIDS+=($!)
wait_for "grep -qx ready '$WORK/r.log'" 30

echo "# erlang over inet_tls (a@127.0.0.1 -> b@127.0.0.1, and -> r@127.0.0.1 the Rust interop_node over TLS), EPMD port $EPMD_PORT"
timeout $((90 + ${SECS%.*} * 20)) \
  erl -name a@127.0.0.1 -setcookie "$COOKIE" -start_epmd false -noshell "${ERL_TLS[@]}" \
  -pa "$WORK" -run dist_bench client "$SECS" b@127.0.0.1 r@127.0.0.1 | tee "$WORK/erlang.txt" ||
  echo "# the erlang side FAILED (see above)"

for p in "${PIDS[@]:1}"; do kill "$p" 2>/dev/null || true; done

FIGURES=ergo_call_int,ergo_call_bin1mb,ergo_handshake_us,ergo_par120_rate
echo "# ergo over TLS (auto mode)"
timeout $((60 + ${SECS%.*} * 10)) \
  ./target/release/dist_side "$SECS" --epmd-port "$EPMD_PORT" --tls --only "$FIGURES" |
  tee "$WORK/rust.txt" || echo "# the rust TLS side FAILED (see above)"
echo "# ergo plain, the same figures"
timeout $((60 + ${SECS%.*} * 10)) \
  ./target/release/dist_side "$SECS" --epmd-port "$EPMD_PORT" --only "$FIGURES" |
  sed 's/^ergo_/plain_ergo_/' | tee "$WORK/plain.txt" || echo "# the rust plain side FAILED (see above)"

echo
echo "# ratios, measured in this run"
awk "$(cat benches/ratios.awk)"'
  END {
    printf "%-52s %12s %12s %9s %8s\n", "comparison (a / b)", "a", "b", "a/b", "target"
    print "-- sequential call over TLS, ns/op: erlang/ergo (higher is better)"
    row("erlang_call_int / ergo_call_int", "erlang_call_int", "ergo_call_int", ">=", 3)
    row("erlang_call_bin1mb / ergo_call_bin1mb", "erlang_call_bin1mb", "ergo_call_bin1mb", ">=", 3)
    print "-- ergo over TLS against ergo plain, ns/op (lower is better)"
    row("ergo_call_int / plain_ergo_call_int", "ergo_call_int", "plain_ergo_call_int", "<=", 1.5)
    row("ergo_call_bin1mb / plain_ergo_call_bin1mb", "ergo_call_bin1mb", "plain_ergo_call_bin1mb", "", "")
    print "-- an Erlang client over TLS, Rust server vs Erlang server, calls/s (higher is better)"
    row("erlang_client_to_rust / _to_erlang", "erlang_client_to_rust_rate", "erlang_client_to_erlang_rate", ">=", 1.0)
    print "-- 120 parallel pairs over TLS, calls/s (higher is better)"
    row("ergo_par120_rate / erlang_par120_rate", "ergo_par120_rate", "erlang_par120_rate", "", "")
    print "-- setting up a connection until the first reply, us: erlang/ergo (higher is better)"
    row("erlang_handshake_us / ergo_handshake_us", "erlang_handshake_us", "ergo_handshake_us", "", "")
    row("ergo_handshake_us / plain_ergo_handshake_us", "ergo_handshake_us", "plain_ergo_handshake_us", "", "")
  }' "$WORK/erlang.txt" "$WORK/rust.txt" "$WORK/plain.txt"

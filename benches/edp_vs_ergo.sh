#!/usr/bin/env bash
# The edp_node crate (0.16, another Rust node of the Erlang distribution)
# against a real Erlang node, next to ergo against the same node, in one
# run, all on 127.0.0.1: sequential gen_server calls of the Erlang `echo`
# server with 42, sequential rpc:call(B, erlang, node, []), the time to set
# up a connection until the first rpc reply, and EPMD look-ups of B. Prints
# every figure, then edp_node's against ergo's; where edp_node could not do
# something, its row says so with the error it got. (edp_node 0.16 cannot
# complete a handshake with OTP 25.0 to 25.2: it sends the old `n`
# send_name, which those releases refuse; src/bin/edp_side.rs says more.)
#
#   benches/edp_vs_ergo.sh [SECONDS_PER_FIGURE]     (default 2)
#   ALLOC=jemalloc benches/edp_vs_ergo.sh ...   (the Rust side on jemalloc,
#                                                not glibc malloc)
#
# edp_node looks nodes up only on EPMD port 4369, so this script uses that
# port (not a free one, as dist_vs_erlang.sh does): it starts OTP's epmd
# there unless an EPMD already answers on it, and stops what it started
# when it exits. Its node names carry the script's process
# id, so that they do not meet other nodes registered with a shared EPMD.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=edp ERL_BENCH=dist DEFAULT_SECS=2
source benches/common.sh
COOKIE="edpbench_$$"
B="edpb_$$@127.0.0.1"
EPMD_PORT=4369
unset ERL_EPMD_PORT

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# OTP's own epmd, in the foreground so that it stops with this script.
if epmd -port "$EPMD_PORT" -names >/dev/null 2>&1; then
  echo "# an EPMD already answers on port $EPMD_PORT: using it"
else
  epmd -port "$EPMD_PORT" >"$WORK/epmd.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    epmd -port "$EPMD_PORT" -names >/dev/null 2>&1 && break
    sleep 0.1
  done
fi

# The Erlang node B: dist_bench's echo servers.
erl -name "$B" -setcookie "$COOKIE" -start_epmd false -noshell \
  -pa "$WORK" -run dist_bench server >"$WORK/b.log" 2>&1 &
PIDS+=($!)
echo "# erlang node $B ($(erl -noshell -eval 'io:put_chars(erlang:system_info(otp_release)), halt().'))"

echo "# ergo and edp_node against $B"
timeout $((60 + ${SECS%.*} * 10)) \
  "$BIN/edp_side" "$SECS" --erl "$B" --cookie "$COOKIE" | tee "$WORK/rust.txt" ||
  echo "# the rust side FAILED (see above)"
if grep -q '^# edp_node: \(could not\|.* failed\)' "$WORK/rust.txt"; then
  echo "# what $B logged:"
  if [ -s "$WORK/b.log" ]; then sed 's/^/#   /' "$WORK/b.log"; else echo "#   (nothing)"; fi
fi

echo
echo "# edp_node against ergo, the same Erlang node, measured in this run"
awk '
  /^# edp_node: could not connect: / { sub(/^# edp_node: could not connect: /, ""); nocon = $0; next }
  /^# edp_node: [a-z_]+ failed: / { f = $3; sub(/^# edp_node: [a-z_]+ failed: /, ""); err[f] = $0; next }
  $1 !~ /^#/ && NF == 3 { v[$1] = $2 }
  function row(label, e, g, what) {
    if (!(g in v)) { printf "%-40s %12s %12s %9s  missing figure\n", label, "-", "", "-"; return }
    if (e in v) { printf "%-40s %12.0f %12.0f %8.2fx\n", label, v[e], v[g], v[e] / v[g]; return }
    if (e in err) why = "could not " what " (" err[e] ")"
    else if (nocon != "") why = "could not connect (" nocon ")"
    else why = "no figure"
    printf "%-40s %12s %12.0f %9s  edp_node: %s\n", label, "-", v[g], "-", why
  }
  END {
    printf "%-40s %12s %12s %9s\n", "figure (edp_node / ergo, lower is better)", "edp_node", "ergo", "edp/ergo"
    row("call {echo, B} with 42, ns/op", "edp_erl_call_int", "ergo_erl_call_int", "call the echo")
    row("rpc:call(B, erlang, node, []), ns/op", "edp_erl_rpc_node", "ergo_erl_rpc_node", "make the rpc call")
    row("connect until the first rpc reply, us", "edp_erl_connect_us", "ergo_erl_connect_us", "connect and call")
    row("EPMD look-up of B, ns/op", "edp_epmd_lookup", "ergo_epmd_lookup", "look B up")
  }' "$WORK/rust.txt"

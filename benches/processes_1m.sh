#!/usr/bin/env bash
# Issue 19's figure: `rpc:call(N, erlang, processes, [])` from an erl node
# against a node holding 1,000,000 processes, the Rust interop_node and an
# erl node (`+P 2000000`) side by side in one run: the call's time (median
# of 3) and the node's resident memory with its million idle processes.
#
#   benches/processes_1m.sh [COUNT]     (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-1000000}"
WORK="$(mktemp -d /tmp/ergo-procs1m.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
cargo build --release -q -p ergo-otp --bin epmd --example interop_node
EPMD_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ERL_EPMD_PORT="$EPMD_PORT"
COOKIE="p1m_$$"
./target/release/epmd -port "$EPMD_PORT" >/dev/null 2>&1 &
PIDS+=($!)
sleep 0.5
./target/release/examples/interop_node --name r@127.0.0.1 --cookie "$COOKIE" >"$WORK/r.log" 2>&1 &
RPID=$!
PIDS+=($RPID)
erl -name b@127.0.0.1 -setcookie "$COOKIE" -noshell -start_epmd false +P 2000000 >/dev/null 2>&1 &
BPID=$!
PIDS+=($BPID)
for _ in $(seq 100); do grep -qx ready "$WORK/r.log" && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
erl -name a@127.0.0.1 -setcookie "$COOKIE" -noshell -start_epmd false -eval "
  Count = $COUNT,
  Wait = fun W(N, 0) -> error({no_answer, N}); W(N, K) -> case net_adm:ping(N) of pong -> ok; pang -> timer:sleep(100), W(N, K - 1) end end,
  ok = Wait('r@127.0.0.1', 100), ok = Wait('b@127.0.0.1', 100),
  ok = rpc:call('r@127.0.0.1', interop, spawn_idle, [Count], infinity),
  ok = rpc:call('b@127.0.0.1', erlang, apply, [fun() -> [spawn(fun() -> receive _ -> ok end end) || _ <- lists:seq(1, Count)], ok end, []], infinity),
  Time = fun(N) ->
    Ts = [begin T0 = erlang:monotonic_time(microsecond),
                L = length(rpc:call(N, erlang, processes, [], infinity)),
                {erlang:monotonic_time(microsecond) - T0, L} end || _ <- [1, 2, 3]],
    {T, L} = lists:nth(2, lists:sort(Ts)), {T div 1000, L} end,
  {TR, LR} = Time('r@127.0.0.1'),
  {TB, LB} = Time('b@127.0.0.1'),
  io:format(\"rust_processes_rpc_ms ~p ms~nrust_process_count ~p processes~n\", [TR, LR]),
  io:format(\"erlang_processes_rpc_ms ~p ms~nerlang_process_count ~p processes~n\", [TB, LB]),
  halt()." | tee "$WORK/out.txt"
echo "rust_node_rss_mib $(( $(rss $RPID) / 1024 )) MiB"
echo "erlang_node_rss_mib $(( $(rss $BPID) / 1024 )) MiB"
awk '{ v[$1] = $2 } END {
  printf "# processes/0 over rpc with %d processes: Erlang %d ms / Rust %d ms = %.2fx (higher: Rust faster)\n", v["rust_process_count"], v["erlang_processes_rpc_ms"], v["rust_processes_rpc_ms"], v["erlang_processes_rpc_ms"] / v["rust_processes_rpc_ms"]
}' "$WORK/out.txt"

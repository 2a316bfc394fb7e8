#!/usr/bin/env bash
# Issue 16's cluster figure: 20 nodes on 127.0.0.1 brought to a full mesh,
# in one run, two ways: 10 Rust interop_node examples and 10 erl nodes
# mixed, and 20 erl nodes. Each node is its own OS process with its own
# EPMD registration (one EPMD for all, this workspace's). Every node is
# started first; then, at once, each erl node pings every other node, and
# erl node i also has Rust node i call every other Rust node (its lab
# worker makes an RPC to each; with `global` the nodes also connect
# transitively as they sync, as Erlang nodes do). The clock stops when
# every erl node lists the
# other 19 and every Rust node has had an answer from each other Rust node
# (the erl nodes have all connected to it).
# Prints the time to full mesh and each kind of node's resident memory
# (VmRSS) afterwards.
#
#   benches/cluster20.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="$(mktemp -d /tmp/ergo-cluster20.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
cargo build --release -q -p ergo-otp --bin epmd --example interop_node
EPMD_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ERL_EPMD_PORT="$EPMD_PORT"
COOKIE="c20_$$"
./target/release/epmd -port "$EPMD_PORT" >/dev/null 2>&1 &
PIDS+=($!); disown
sleep 0.5

rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# run KIND RUST_COUNT: starts 20 - RUST_COUNT erl nodes and RUST_COUNT Rust
# nodes, meshes them, prints figures named KIND_*.
run() {
  local kind=$1 nrust=$2 nerl=$((20 - $2)) names=() erlpids=() rustpids=() i
  for i in $(seq 1 "$nrust"); do
    ./target/release/examples/interop_node --name "${kind}r$i@127.0.0.1" --cookie "$COOKIE" \
      >"$WORK/${kind}r$i.log" 2>&1 &
    rustpids+=($!); PIDS+=($!); disown; names+=("'${kind}r$i@127.0.0.1'")
  done
  for i in $(seq 1 "$nerl"); do
    names+=("'${kind}e$i@127.0.0.1'")
  done
  local all rust
  all=$(IFS=,; echo "${names[*]}")
  rust=$(IFS=,; echo "${names[*]:0:$nrust}")
  for i in $(seq 1 "$nerl"); do
    # Each erl node waits for the go file, pings everyone, waits until it
    # sees all 19, and writes the time it took.
    erl -name "${kind}e$i@127.0.0.1" -setcookie "$COOKIE" -noshell -start_epmd false -eval "
      All = [$all] -- [node()],
      Go = fun W() -> case filelib:is_file(\"$WORK/go_$kind\") of true -> ok; false -> timer:sleep(5), W() end end,
      Go(),
      T0 = erlang:monotonic_time(microsecond),
      [net_adm:ping(N) || N <- All],
      Rust = [$rust],
      case $i =< length(Rust) of
        true ->
          Mine = lists:nth($i, Rust),
          {ok, Lab} = gen_server:call({lab, Mine}, {spawn, self()}),
          [Lab ! {rpc, R, interop, echo, [R]} || R <- Rust -- [Mine]],
          Got = [receive {forward, Lab, {rpc_result, Res}} -> Res after 20000 -> timeout end || _ <- Rust -- [Mine]],
          file:write_file(\"$WORK/rpc_${kind}_$i\", io_lib:format(\"~p~n\", [Got]));
        false -> ok
      end,
      Wait = fun W2() -> case length(nodes()) >= 19 of true -> ok; false -> [net_adm:ping(N) || N <- All -- nodes()], timer:sleep(5), W2() end end,
      Wait(),
      T1 = erlang:monotonic_time(microsecond),
      file:write_file(\"$WORK/done_${kind}_$i\", integer_to_list(T1 - T0)),
      receive after infinity -> ok end." >/dev/null 2>&1 &
    erlpids+=($!); PIDS+=($!); disown
  done
  # Everyone registered with EPMD.
  for _ in $(seq 300); do
    [ "$(./target/release/epmd -port "$EPMD_PORT" -names 2>/dev/null | grep -c "^name ${kind}")" -ge 20 ] && break
    sleep 0.1
  done
  local start end
  start=$(date +%s%N)
  touch "$WORK/go_$kind"
  for _ in $(seq 600); do
    [ "$(ls "$WORK"/done_${kind}_* 2>/dev/null | wc -l)" -ge "$nerl" ] && break
    sleep 0.05
  done
  end=$(date +%s%N)
  echo "${kind}_mesh_ms $(( (end - start) / 1000000 )) ms"
  local slowest=0 f v
  for f in "$WORK"/done_${kind}_*; do v=$(cat "$f"); [ "$v" -gt "$slowest" ] && slowest=$v; done
  echo "${kind}_slowest_erl_node_ms $((slowest / 1000)) ms"
  sleep 1
  local sum=0 p
  if [ "$nrust" -gt 0 ]; then
    for p in "${rustpids[@]}"; do sum=$((sum + $(rss "$p"))); done
    echo "${kind}_rust_node_rss_kib $((sum / nrust)) KiB"
  fi
  sum=0
  for p in "${erlpids[@]}"; do sum=$((sum + $(rss "$p"))); done
  echo "${kind}_erl_node_rss_kib $((sum / nerl)) KiB"
  local failed
  failed=$(cat "$WORK"/rpc_${kind}_* 2>/dev/null | grep -cE "timeout|badrpc" || true)
  [ "$nrust" -gt 0 ] && echo "# $kind: Rust-to-Rust connections that failed: $failed"
  for p in "${rustpids[@]}" "${erlpids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  sleep 1
}

echo "# 20 nodes on 127.0.0.1, EPMD port $EPMD_PORT; $(nproc) cores"
run mixed 10 | tee "$WORK/mixed.txt"
run erl 0 | tee "$WORK/erl.txt"
echo
echo "# ratios, measured in this run"
awk '$1 !~ /^#/ && NF == 3 { v[$1] = $2 }
  END {
    printf "%-52s %10s %10s %8s\n", "comparison (a / b)", "a", "b", "a/b"
    printf "%-52s %10d %10d %7.2fx\n", "time to full mesh, 20 erl / 10 Rust + 10 erl (ms)", v["erl_mesh_ms"], v["mixed_mesh_ms"], v["erl_mesh_ms"] / v["mixed_mesh_ms"]
    printf "%-52s %10d %10d %7.2fx\n", "memory per node, erl / Rust, after the mesh (KiB)", v["erl_erl_node_rss_kib"], v["mixed_rust_node_rss_kib"], v["erl_erl_node_rss_kib"] / v["mixed_rust_node_rss_kib"]
  }' "$WORK/mixed.txt" "$WORK/erl.txt"

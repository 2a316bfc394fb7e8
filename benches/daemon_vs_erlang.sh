#!/usr/bin/env bash
# Supervised daemons side by side, in one run, all on 127.0.0.1: the same
# echo load against an ergo daemon (a process per connection under its
# supervisor), an Erlang gen_tcp echo server ({active, once}, a process per
# connection) and a bare tokio echo server (a task per connection, the
# floor). 64-byte lines over 100 concurrent connections (one in flight per
# connection, and 16), and 10,000
# connections accepted in a burst; and, for the one-in-flight echo, the
# server's own CPU time per line (the load shares the two cores with every
# server, so messages/s alone mixes its cost in). Then the two echoes again
# with the server pinned to one core and the load to the other (`taskset`),
# so that the load takes nothing from the server under test: each server
# starts as many schedulers or workers as the cores it may use, one. Prints
# every figure, then the ratios against issue 21's targets.
#
#   benches/daemon_vs_erlang.sh [SECONDS_PER_FIGURE]     (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-2}"
case "$SECS" in *.*) ;; *) SECS="$SECS.0" ;; esac
WORK="$(mktemp -d /tmp/ergo-daemon-bench.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release -q -p ergo-benches --bin daemon_side
erlc -o "$WORK" benches/erlang/echo_bench.erl
SIDE=./target/release/daemon_side

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {
  local i
  for i in $(seq 100); do grep -qx ready "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "server did not start: $1" >&2; cat "$1" >&2; return 1
}

# User plus system CPU time of a process so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# One server at a time, so that each has the machine to itself.
measure() { # name start-command...
  local name=$1; shift
  local port; port=$(free_port)
  "$@" "$port" >"$WORK/$name.log" 2>&1 &
  local pid=$!
  PIDS+=($pid)
  wait_ready "$WORK/$name.log"
  # The server's CPU time (user and system, from /proc) over the load's
  # life, per line echoed: what a line costs the server itself, apart from
  # the load that shares the two cores with it.
  local t0 t1 lines
  t0=$(cpu_ticks "$pid")
  "$SIDE" load "$port" "$SECS" "${name}_echo_msgs_s" | tee "$WORK/$name.load"
  t1=$(cpu_ticks "$pid")
  lines=$(awk '$1 ~ /_lines$/ { print $2 }' "$WORK/$name.load")
  awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v n="$lines" -v k="${name}_echo_cpu_ns_per_line" \
    'BEGIN { printf "%s %.0f ns\n", k, t * 1e9 / hz / n }'
  "$SIDE" load16 "$port" "$SECS" "${name}_echo16_msgs_s"
  "$SIDE" burst "$port" 10000 "${name}_accept_conns_s"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# The echoes with the server on core 0 and the load on core 1.
measure_pinned() { # name start-command...
  local name=$1; shift
  local port; port=$(free_port)
  taskset -c 0 "$@" "$port" >"$WORK/$name.pinned.log" 2>&1 &
  local pid=$!
  PIDS+=($pid)
  wait_ready "$WORK/$name.pinned.log"
  taskset -c 1 "$SIDE" load "$port" "$SECS" "${name}_pinned_echo_msgs_s" | grep -v _lines
  taskset -c 1 "$SIDE" load16 "$port" "$SECS" "${name}_pinned_echo16_msgs_s" | grep -v _lines
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

PINNED=yes
if ! command -v taskset >/dev/null || [ "$(nproc --all)" -lt 2 ]; then
  PINNED=no
  echo "# no taskset or fewer than 2 cores: the pinned echoes are not measured"
fi

echo "# $(erl -noshell -eval 'io:format("Erlang/OTP ~s", [erlang:system_info(otp_release)]), halt().'); 2 cores, all on 127.0.0.1"
{
  measure ergo "$SIDE" serve-ergo
  measure erlang erl -noshell -pa "$WORK" -run echo_bench server
  measure tokio "$SIDE" serve-tokio
  if [ "$PINNED" = yes ]; then
    measure_pinned ergo "$SIDE" serve-ergo
    measure_pinned erlang erl -noshell -pa "$WORK" -run echo_bench server
    measure_pinned tokio "$SIDE" serve-tokio
  fi
} | tee "$WORK/all.txt"

echo
echo "# ratios, measured in this run"
awk "$(cat benches/ratios.awk)"'
  END {
    printf "%-52s %12s %12s %9s %8s\n", "comparison (a / b)", "a", "b", "a/b", "target"
    print "-- echo of 64-byte lines over 100 connections, msgs/s (higher is better)"
    row("ergo daemon / erlang gen_tcp", "ergo_echo_msgs_s", "erlang_echo_msgs_s", ">=", 2)
    row("ergo daemon / bare tokio", "ergo_echo_msgs_s", "tokio_echo_msgs_s", ">=", 0.667)
    print "-- CPU time of the server per line echoed in that run, ns (lower is better)"
    row("ergo daemon / erlang gen_tcp", "ergo_echo_cpu_ns_per_line", "erlang_echo_cpu_ns_per_line", "", "")
    row("ergo daemon / bare tokio", "ergo_echo_cpu_ns_per_line", "tokio_echo_cpu_ns_per_line", "", "")
    print "-- the same with 16 lines in flight per connection, msgs/s"
    row("ergo daemon / erlang gen_tcp", "ergo_echo16_msgs_s", "erlang_echo16_msgs_s", ">=", 2)
    row("ergo daemon / bare tokio", "ergo_echo16_msgs_s", "tokio_echo16_msgs_s", ">=", 0.667)
    print "-- the server on one core, the load on the other: one line in flight, msgs/s"
    row("ergo daemon / erlang gen_tcp", "ergo_pinned_echo_msgs_s", "erlang_pinned_echo_msgs_s", ">=", 2)
    row("ergo daemon / bare tokio", "ergo_pinned_echo_msgs_s", "tokio_pinned_echo_msgs_s", ">=", 0.667)
    print "-- the same, 16 lines in flight per connection, msgs/s"
    row("ergo daemon / erlang gen_tcp", "ergo_pinned_echo16_msgs_s", "erlang_pinned_echo16_msgs_s", ">=", 2)
    row("ergo daemon / bare tokio", "ergo_pinned_echo16_msgs_s", "tokio_pinned_echo16_msgs_s", ">=", 0.667)
    print "-- 10,000 connections accepted in a burst, conns/s (higher is better)"
    row("ergo daemon / erlang gen_tcp", "ergo_accept_conns_s", "erlang_accept_conns_s", "", "")
    row("ergo daemon / bare tokio", "ergo_accept_conns_s", "tokio_accept_conns_s", "", "")
  }' /dev/null "$WORK/all.txt"

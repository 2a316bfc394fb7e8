# Sourced by the scripts that start nodes of their own (dist_vs_erlang.sh,
# tls_vs_erlang.sh) after common.sh: PIDS (what they started, stopped on
# exit, gently then with SIGKILL, before the scratch directory goes),
# wait_for COMMAND SECONDS, and this workspace's EPMD started on a free
# port (EPMD_PORT, exported as ERL_EPMD_PORT for erl).
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

# Waits up to $2 seconds for $1 (a command) to succeed.
wait_for() {
  local i
  for i in $(seq $(($2 * 10))); do
    if eval "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for: $1" >&2
  return 1
}

cargo build --release -q -p ergo-otp --bin epmd --example interop_node
EPMD_PORT="$(./target/release/dist_side --free-port)"
export ERL_EPMD_PORT="$EPMD_PORT"
./target/release/epmd -port "$EPMD_PORT" >"$WORK/epmd.log" 2>&1 &
PIDS+=($!)
wait_for "./target/release/epmd -port $EPMD_PORT -names" 10

#!/usr/bin/env bash
# GenStage side by side with Elixir's GenStage, in one run: a three-stage
# pipeline on one node (producer -> producer_consumer -> consumer,
# max_demand 1000, integer events), a producer on one node feeding a
# consumer on another (Rust -> Rust against Elixir -> Elixir, and Elixir ->
# Rust), and the memory of events waiting in a producer's buffer. Prints
# every figure, then the ratios against issue 18's targets.
#
#   benches/gen_stage_vs_elixir.sh [SECONDS_PER_FIGURE]     (default 2)
#   GS_ROUNDS=5 benches/gen_stage_vs_elixir.sh ...   (rounds of the cross-node
#                                                     pairs, median taken; 3)
#
# Elixir's GenStage is compiled from its unmodified sources, found at
# $GEN_STAGE_SRC (default ../shared/third_party/gen_stage). Starts its own
# EPMD on a free port and stops everything it started when it exits.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-2}"
case "$SECS" in *.*) ;; *) SECS="$SECS.0" ;; esac
GEN_STAGE_SRC="${GEN_STAGE_SRC:-$PWD/../shared/third_party/gen_stage}"
if [ ! -d "$GEN_STAGE_SRC/lib" ]; then
  echo "Elixir's GenStage sources are not at $GEN_STAGE_SRC (set GEN_STAGE_SRC): no side-by-side run" >&2
  exit 2
fi
WORK="$(mktemp -d /tmp/ergo-gen_stage-bench.XXXXXX)"
COOKIE="gsbench_$$"

cargo build --release -q -p ergo-benches --bin gen_stage_side --bin dist_side
(cd "$GEN_STAGE_SRC" && elixirc -o "$WORK/beams" $(find lib -name '*.ex')) >/dev/null
EXS=benches/elixir/gen_stage_bench.exs
ex() { elixir --erl "-start_epmd false" -pa "$WORK/beams" "$@"; }

source benches/nodes.sh

echo "# $(elixir --version | tail -1), GenStage from $GEN_STAGE_SRC; EPMD port $EPMD_PORT"
{
  ex "$EXS" local "$SECS"
  ex "$EXS" buffer 1000000
} | tee "$WORK/elixir.txt"
{
  ./target/release/gen_stage_side local "$SECS"
  ./target/release/gen_stage_side buffer 1000000
} | tee "$WORK/rust.txt"

# Producers on nodes of their own: the Rust interop_node serves `numbers`,
# and so does an Elixir node.
./target/release/examples/interop_node --name r@127.0.0.1 --cookie "$COOKIE" >"$WORK/r.log" 2>&1 &
PIDS+=($!)
# Through `exec`, so that the pid the clean-up kills is the Elixir node's
# (a backgrounded function is a subshell of its own: killing that left
# the node running).
(exec elixir --erl "-start_epmd false" -pa "$WORK/beams" --name p@127.0.0.1 --cookie "$COOKIE" "$EXS" producer) >"$WORK/p.log" 2>&1 &
PIDS+=($!)
wait_for "grep -qx ready '$WORK/r.log'" 30
wait_for "grep -qx ready '$WORK/p.log'" 30

consumer_rs() { ./target/release/gen_stage_side consumer "$SECS" "$1" "$2" --epmd-port "$EPMD_PORT" --cookie "$COOKIE"; }
consumer_ex() { ex --name "c$$@127.0.0.1" --cookie "$COOKIE" "$EXS" consumer "$SECS" "$1" "$2"; }
# The four pairs in turn, GS_ROUNDS times (3 by default), so that the
# machine's drift falls on all of them alike; each figure is its median.
ROUNDS="${GS_ROUNDS:-3}"
for _ in $(seq "$ROUNDS"); do
  consumer_ex p@127.0.0.1 elixir_to_elixir_events_s
  consumer_ex r@127.0.0.1 ergo_to_elixir_events_s
  consumer_rs r@127.0.0.1 ergo_to_ergo_events_s
  consumer_rs p@127.0.0.1 elixir_to_ergo_events_s
done | tee "$WORK/rounds.txt"
median() {
  grep "^$1 " "$WORK/rounds.txt" | awk '{print $2}' | sort -g |
    awk '{v[NR] = $1} END { if (NR) print v[int((NR + 1) / 2)] }'
}
echo "# across nodes: the median of $ROUNDS rounds"
for k in elixir_to_elixir_events_s ergo_to_elixir_events_s; do
  echo "$k $(median "$k") events/s"
done | tee -a "$WORK/elixir.txt"
for k in ergo_to_ergo_events_s elixir_to_ergo_events_s; do
  echo "$k $(median "$k") events/s"
done | tee -a "$WORK/rust.txt"

echo
echo "# ratios, measured in this run"
awk "$(cat benches/ratios.awk)"'
  END {
    printf "%-52s %12s %12s %9s %8s\n", "comparison (a / b)", "a", "b", "a/b", "target"
    print "-- events per second (higher is better)"
    row("pipeline on one node: ergo / elixir", "ergo_pipeline_events_s", "elixir_pipeline_events_s", ">=", 5)
    row("across nodes: ergo->ergo / elixir->elixir", "ergo_to_ergo_events_s", "elixir_to_elixir_events_s", ">=", 3)
    row("across nodes: elixir->ergo / elixir->elixir", "elixir_to_ergo_events_s", "elixir_to_elixir_events_s", ">=", 1)
    row("across nodes: ergo->elixir / elixir->elixir", "ergo_to_elixir_events_s", "elixir_to_elixir_events_s", "", "")
    print "-- memory per buffered integer event, bytes (lower is better)"
    row("buffer: ergo / elixir", "ergo_buffer_bytes_per_event", "elixir_buffer_bytes_per_event", "<=", 1)
  }' "$WORK/elixir.txt" "$WORK/rust.txt"

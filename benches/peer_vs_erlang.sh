#!/usr/bin/env bash
# Issue 20's figures, side by side in one run: an Erlang origin starts
# `erl` peers and ergo peers (the interop_node example, which boots as a
# peer when `peer` starts it) with OTP's own `peer:start_link/1`, over
# standard I/O and over TCP, alternately; prints the median time from start
# to running for each, and the `peer:call/4` round trip to each.
#
#   benches/peer_vs_erlang.sh [SECONDS_PER_CALL_FIGURE]     (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-2}"
case "$SECS" in *.*) ;; *) SECS="$SECS.0" ;; esac
WORK="$(mktemp -d /tmp/ergo-peer-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cargo build --release -q -p ergo-otp --example interop_node
erlc -o "$WORK" benches/erlang/peer_bench.erl
echo "# $(erl -noshell -eval 'io:format("Erlang/OTP ~s", [erlang:system_info(otp_release)]), halt().'), origin o@127.0.0.1"
RUST_LOG=warn timeout 600 erl -name "o@127.0.0.1" -setcookie "peerbench_$$" -noshell -pa "$WORK" \
  -run peer_bench main "$SECS" "$PWD/target/release/examples/interop_node"

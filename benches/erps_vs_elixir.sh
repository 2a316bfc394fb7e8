#!/usr/bin/env bash
# Erps call round trips side by side, in one run, on 127.0.0.1: a Rust
# client calling the Rust erps_server example, and Elixir's Erps.Client
# calling an Elixir Erps daemon, over TCP and over TLS; and each client
# against the other side's server. Sequential calls, the mean round trip.
#
#   benches/erps_vs_elixir.sh [SECONDS_PER_FIGURE]     (default 2)
#
# Elixir's Erps 0.7 is compiled from its unmodified sources at $ERPS_SRC
# (default ../shared/third_party/erps). Note that Erps.Client reads its
# socket on a 100 ms poll, which sets the Elixir client's figures.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-2}"
case "$SECS" in *.*) ;; *) SECS="$SECS.0" ;; esac
ERPS_SRC="${ERPS_SRC:-$PWD/../shared/third_party/erps}"
if [ ! -x "$ERPS_SRC/build.sh" ] && [ ! -f "$ERPS_SRC/build.sh" ]; then
  echo "Elixir's Erps sources are not at $ERPS_SRC (set ERPS_SRC): no side-by-side run" >&2
  exit 2
fi
WORK="$(mktemp -d /tmp/ergo-erps-bench.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release -q -p ergo-benches --bin erps_side
cargo build --release -q -p ergo-otp --example erps_server
bash "$ERPS_SRC/build.sh" "$WORK/beams" >/dev/null 2>&1
# A CA and a certificate for 127.0.0.1 signed by it.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/ca.key" -out "$WORK/ca.pem" -days 2 \
  -subj "/CN=erps bench CA" -addext "keyUsage=keyCertSign,digitalSignature" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -keyout "$WORK/key.pem" -out "$WORK/req.csr" -subj "/CN=localhost" >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$WORK/ext.cnf"
openssl x509 -req -in "$WORK/req.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
  -out "$WORK/cert.pem" -days 2 -extfile "$WORK/ext.cnf" >/dev/null 2>&1
TLS=("$WORK/ca.pem" "$WORK/cert.pem" "$WORK/key.pem")

start() { # log-name command... ; sets PORT
  "${@:2}" >"$WORK/$1.log" 2>/dev/null &
  PIDS+=($!)
  local i
  for i in $(seq 200); do
    PORT=$(awk '/^port /{print $2}' "$WORK/$1.log")
    [ -n "$PORT" ] && return 0
    sleep 0.1
  done
  echo "$1 did not start" >&2; return 1
}

EXS=ergo/tests/erps/echo_server.exs
start rs_tcp ./target/release/examples/erps_server --port 0; RS_TCP=$PORT
start rs_tls ./target/release/examples/erps_server --port 0 --tls-certfile "$WORK/cert.pem" --tls-keyfile "$WORK/key.pem"; RS_TLS=$PORT
start ex_tcp elixir -pa "$WORK/beams" "$EXS" tcp; EX_TCP=$PORT
start ex_tls elixir -pa "$WORK/beams" "$EXS" tls "${TLS[@]}"; EX_TLS=$PORT

exb() { elixir -pa "$WORK/beams" benches/elixir/erps_bench.exs "$@"; }
echo "# $(elixir --version | tail -1), Erps 0.7.0 from $ERPS_SRC"
{
  ./target/release/erps_side "$RS_TCP" "$SECS" rust_to_rust_tcp
  ./target/release/erps_side "$RS_TLS" "$SECS" rust_to_rust_tls "${TLS[@]}"
  exb "$EX_TCP" "$SECS" elixir_to_elixir_tcp
  exb "$EX_TLS" "$SECS" elixir_to_elixir_tls "${TLS[@]}"
  ./target/release/erps_side "$EX_TCP" "$SECS" rust_to_elixir_tcp
  exb "$RS_TCP" "$SECS" elixir_to_rust_tcp
} | tee "$WORK/all.txt"

echo
echo "# ratios, measured in this run (round trip, lower is better: b / a is how many times faster a is)"
awk "$(cat benches/ratios.awk)"'
  END {
    printf "%-52s %12s %12s %9s %8s\n", "comparison (a / b)", "a", "b", "a/b", "target"
    row("tcp: elixir<->elixir / rust<->rust", "elixir_to_elixir_tcp", "rust_to_rust_tcp", "", "")
    row("tls: elixir<->elixir / rust<->rust", "elixir_to_elixir_tls", "rust_to_rust_tls", "", "")
  }' /dev/null "$WORK/all.txt"

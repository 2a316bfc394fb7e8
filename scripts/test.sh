#!/usr/bin/env bash
# Runs every test of the workspace, installing what the tests need first.
#
# The interoperability tests start real Erlang/OTP and Elixir
# nodes, so this script installs Debian's erlang-nox and elixir when `erl`
# or `elixir` is missing; OTP's observer with a virtual X server and
# ImageMagick for the observer test (erlang-observer, xvfb, xauth,
# imagemagick), iproute2 for the network-namespace test, and Chromium for
# the dashboard's test. Then it
# checks formatting and lints and runs the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need_install=()
command -v erl >/dev/null 2>&1 || need_install+=(erlang-nox)
command -v elixir >/dev/null 2>&1 || need_install+=(elixir)
command -v xvfb-run >/dev/null 2>&1 || need_install+=(xvfb)
command -v xauth >/dev/null 2>&1 || need_install+=(xauth)
command -v import >/dev/null 2>&1 || need_install+=(imagemagick)
command -v ip >/dev/null 2>&1 || need_install+=(iproute2)
command -v chromium >/dev/null 2>&1 || need_install+=(chromium)
ls /usr/lib/erlang/lib/observer-*/ebin/observer.beam >/dev/null 2>&1 || need_install+=(erlang-observer)
if [ ${#need_install[@]} -gt 0 ]; then
  echo "== installing ${need_install[*]} from Debian"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "installing ${need_install[*]} needs root: run as root or install sudo" >&2; exit 1; }
    SUDO="sudo"
  fi
  # `env` inside sudo: sudo drops the caller's environment.
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${need_install[@]}" >/dev/null
fi
for tool in erl epmd elixir xvfb-run import ip chromium; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool is still missing after the install" >&2; exit 1; }
done
echo "== $(erl -noshell -eval 'io:format("Erlang/OTP ~s, ERTS ~s", [erlang:system_info(otp_release), erlang:system_info(version)]), halt().')"

START=$SECONDS
PHASE=0
# Every test runner's output, for the count at the end.
RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT
PHASES=8
# Announces a phase: its number, what it does, and how long the run has
# taken so far.
phase() {
  PHASE=$((PHASE + 1))
  echo
  echo "== [$PHASE/$PHASES] $* (at $((SECONDS - START)) s)"
}

phase "cargo fmt --check"
cargo fmt --all -- --check

phase "cargo clippy -D warnings"
# (Once without features, once with the dashboard's.)
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo clippy --workspace --all-targets --features ergo-otp/dashboard --quiet -- -D warnings

phase "building the examples (the example tests run their binaries)"
# With the dashboard: `interop_node --dashboard` serves it.
cargo build --workspace --examples --features ergo-otp/dashboard --quiet

phase "unit and integration tests, against real erl and elixir nodes"
cargo test --workspace --exclude ui-tests --lib --bins --tests --examples --features ergo-otp/dashboard --quiet 2>&1 | tee -a "$RESULTS"

phase "compile-fail cases: trybuild compiles each case (about a minute, quietly)"
NO_COLOR=1 CARGO_TERM_COLOR=never cargo test -p ui-tests --quiet 2>&1 | tee -a "$RESULTS"

phase "benches in test mode: each benchmark runs once"
# Criterion prints a line per benchmark in test mode: shown only if one
# fails.
bench_log=$(mktemp)
if ! cargo test -p ergo-benches --benches --quiet >"$bench_log" 2>&1; then
  cat "$bench_log"
  rm -f "$bench_log"
  exit 1
fi
echo "$(grep -c '^Success' "$bench_log") benchmarks ran once each"
rm -f "$bench_log"

phase "doc tests"
cargo test --workspace --doc --quiet 2>&1 | tee -a "$RESULTS"

phase "cargo publish --workspace --dry-run: each published crate packages and builds alone"
# Cargo takes a crate from a registry as never changing: what it unpacked
# from an earlier dry run's temporary registry, and built from it, would be
# used instead of this run's crates of the same name and version. So the
# dry run builds in a target directory of its own, and those copies are
# removed first (only the temporary registries', whose directory names
# start with '-').
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/ergo-{etf,macros,otp}-* target/package \
  target/publish-check/debug/.fingerprint/ergo-* target/publish-check/debug/deps/*ergo_*
CARGO_TARGET_DIR=target/publish-check cargo publish --workspace --dry-run --allow-dirty --quiet

echo
echo "== all $PHASES phases passed in $((SECONDS - START)) s"
# The tests counted over every runner, in the plain closing form.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$RESULTS"

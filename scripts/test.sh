#!/usr/bin/env bash
# Runs every test of the workspace, installing what the tests need first.
#
# The interoperability tests start real Erlang/OTP (and, later, Elixir)
# nodes, so this script installs Debian's erlang-nox and elixir when `erl`
# or `elixir` is missing. Then it checks formatting and lints and runs the
# whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need_install=()
command -v erl >/dev/null 2>&1 || need_install+=(erlang-nox)
command -v elixir >/dev/null 2>&1 || need_install+=(elixir)
if [ ${#need_install[@]} -gt 0 ]; then
  echo "== installing ${need_install[*]} from Debian"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_install[@]}" >/dev/null
fi
echo "== $(erl -noshell -eval 'io:format("Erlang/OTP ~s, ERTS ~s", [erlang:system_info(otp_release), erlang:system_info(version)]), halt().')"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test"
# The example tests run the examples' binaries, so build those first.
cargo build --workspace --examples --quiet
cargo test --workspace --all-targets --quiet
cargo test --workspace --doc --quiet

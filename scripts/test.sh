#!/usr/bin/env bash
# Runs every test of the workspace, installing what the tests need first.
#
# The interoperability tests start real Erlang/OTP and Elixir
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
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "installing ${need_install[*]} needs root: run as root or install sudo" >&2; exit 1; }
    SUDO="sudo"
  fi
  # `env` inside sudo: sudo drops the caller's environment.
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${need_install[@]}" >/dev/null
fi
for tool in erl epmd elixir; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool is still missing after the install" >&2; exit 1; }
done
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

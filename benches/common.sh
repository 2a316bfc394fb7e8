# Sourced by the side-by-side scripts once they are at the repository root,
# with BENCH (etf, process, supervisor or dist: the names of the Rust side
# `${BENCH}_side` and the Erlang side `${BENCH}_bench.erl`) and DEFAULT_SECS
# set, and the script's own arguments as "$@". Sets SECS (the seconds per
# figure, as a float) and WORK (a scratch directory, removed on exit),
# builds both sides, and says which allocator the Rust side runs on:
# ALLOC=system (glibc malloc) or ALLOC=jemalloc; a script may set
# ALLOC_DEFAULT first, and says why when it does. A script whose Erlang
# side is another bench's module sets ERL_BENCH to that bench's name. BIN is
# where cargo put the release binaries (CARGO_TARGET_DIR is honoured).
SECS="${1:-$DEFAULT_SECS}"
case "$SECS" in *.*) ;; *) SECS="$SECS.0" ;; esac
WORK="$(mktemp -d "/tmp/ergo-$BENCH-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

ALLOC="${ALLOC:-${ALLOC_DEFAULT:-system}}"
case "$ALLOC" in
  jemalloc) BENCH_FEATURES=(--features jemalloc) ;;
  system) BENCH_FEATURES=() ;;
  *) echo "ALLOC must be jemalloc or system, not $ALLOC" >&2; exit 2 ;;
esac
echo "# rust allocator: $ALLOC (ALLOC=jemalloc|system)"

cargo build --release -q -p ergo-benches "${BENCH_FEATURES[@]}" --bin "${BENCH}_side"
erlc -o "$WORK" benches/erlang/bench_util.erl "benches/erlang/${ERL_BENCH:-$BENCH}_bench.erl"
BIN="${CARGO_TARGET_DIR:-target}/release"

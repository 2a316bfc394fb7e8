# Sourced by the side-by-side scripts: which global allocator the Rust side
# is built with. ALLOC=system (glibc malloc) or ALLOC=jemalloc; a script may
# set ALLOC_DEFAULT before sourcing this, and says why when it does.
ALLOC="${ALLOC:-${ALLOC_DEFAULT:-system}}"
case "$ALLOC" in
  jemalloc) BENCH_FEATURES=(--features jemalloc) ;;
  system) BENCH_FEATURES=() ;;
  *) echo "ALLOC must be jemalloc or system, not $ALLOC" >&2; exit 2 ;;
esac
echo "# rust allocator: $ALLOC (ALLOC=jemalloc|system)"

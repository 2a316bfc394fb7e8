# Sourced by the side-by-side scripts: which global allocator the Rust side
# is built with. ALLOC=jemalloc (the default, as production tokio services
# commonly run) or ALLOC=system (glibc malloc).
ALLOC="${ALLOC:-jemalloc}"
case "$ALLOC" in
  jemalloc) BENCH_FEATURES=() ;;
  system) BENCH_FEATURES=(--no-default-features) ;;
  *) echo "ALLOC must be jemalloc or system, not $ALLOC" >&2; exit 2 ;;
esac
echo "# rust allocator: $ALLOC (ALLOC=jemalloc|system)"

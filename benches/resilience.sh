#!/usr/bin/env bash
# Issue 16's resilience figures, in one run on 127.0.0.1 (needs erl):
# - a process flooding a frozen erl peer (SIGSTOP) with 64 KiB binaries for
#   SECONDS: the node's memory growth with the default dist_buf_busy_limit
#   (the sender is suspended at 1 MiB queued) and with no limit (as before:
#   the queue grows with every message);
# - a well-behaved node's sequential calls, idle and while another OS
#   process makes 1,000 wrong-cookie and 1,000 garbage handshakes.
#
#   benches/resilience.sh [SECONDS]     (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-3}"
WORK="$(mktemp -d /tmp/ergo-resilience.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cargo build --release -q -p ergo-benches --bin resilience_side
./target/release/resilience_side "$SECS" | tee "$WORK/rust.txt"
echo
echo "# ratios, measured in this run"
awk '
  $1 !~ /^#/ && NF == 3 { v[$1] = $2 }
  END {
    printf "%-58s %12s %12s %9s %8s\n", "comparison (a / b)", "a", "b", "a/b", "target"
    g = v["flood_rss_growth_kib_bounded"]; limit = 1024 + 16384
    printf "%-58s %12.0f %12.0f %9s %8s  %s\n", "flood: memory growth, busy limit 1 MiB (KiB) / bound", g, limit, "", "<=1", (g <= limit) ? "met" : "NOT met"
    printf "%-58s %12.0f %12s\n", "flood: memory growth with no limit (KiB)", v["flood_rss_growth_kib_unbounded"], ""
    printf "%-58s %12.1f %12.1f\n", "flood: MiB sent, limit / no limit", v["flood_sent_mib_bounded"], v["flood_sent_mib_unbounded"]
    r = v["call_burst_p99_us"] / v["call_idle_p99_us"]
    printf "%-58s %12.0f %12.0f %8.2fx %8s  %s\n", "call p99 during 2,000 bad handshakes / idle p99 (us)", v["call_burst_p99_us"], v["call_idle_p99_us"], r, "<=2", (r <= 2) ? "met" : "NOT met"
    r = v["call_floor_p99_us"] / v["call_idle_p99_us"]
    printf "%-58s %12.0f %12.0f %8.2fx %8s\n", "call p99, burst at a sink in the attacker / idle p99 (floor)", v["call_floor_p99_us"], v["call_idle_p99_us"], r, ""
    r = v["call_burst_p99_us"] / v["call_floor_p99_us"]
    printf "%-58s %12.0f %12.0f %8.2fx %8s\n", "call p99, burst at the node / burst at the sink", v["call_burst_p99_us"], v["call_floor_p99_us"], r, ""
    r = v["call_burst_p50_us"] / v["call_idle_p50_us"]
    printf "%-58s %12.0f %12.0f %8.2fx %8s  %s\n", "call p50 during the burst / idle p50 (us)", v["call_burst_p50_us"], v["call_idle_p50_us"], r, "<=2", (r <= 2) ? "met" : "NOT met"
  }' "$WORK/rust.txt"

# BENCHMARKS.md's table of process figures, from the output of a run of
# benches/process_vs_erlang.sh (its "name value unit" lines):
#
#   benches/process_vs_erlang.sh 2 | tee run.txt
#   awk -f benches/process_table.awk run.txt
$1 !~ /^#/ && NF == 3 { v[$1] = $2 }
function ns(k) { return (k in v) ? sprintf("%.0f ns", v[k]) : "" }
function m(k, unit) { return (k in v) ? sprintf("%.2f M%s", v[k] / 1e6, unit) : "" }
function commas(n,    s) { s = sprintf("%.0f", n); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); return s }
function bytes(k) { return (k in v) ? commas(v[k]) " bytes" : "" }
END {
  print "| figure | ergo | tokio floor | ractor | Erlang/OTP |"
  print "|---|---:|---:|---:|---:|"
  printf "| sequential local call | %s | %s | %s | %s |\n", ns("ergo_local_call"), ns("tokio_rr_unbounded_oneshot"), ns("ractor_call"), ns("local_call_int")
  printf "| … from a plain tokio task | %s | | | |\n", ns("ergo_local_call_from_task")
  printf "| 120 pairs calling in parallel | %s | %s | %s | %s |\n", m("par120_ergo", " calls/s"), m("par120_tokio", ""), m("par120_ractor", ""), m("parallel120_local_rate", "")
  printf "| one-way cast | %s | | %s | %s |\n", m("ergo_cast_rate", " msgs/s"), m("ractor_cast_rate", ""), m("cast_local_rate", "")
  printf "| one-way send | %s | %s | | %s |\n", m("ergo_send_rate", " msgs/s"), m("tokio_send_rate", ""), m("send_local_rate", "")
  printf "| spawn 1,000,000 idle processes | %s (%s warm) | | %s | %s |\n", m("ergo_spawn_rate", "/s"), m("ergo_spawn_rate_warm", "/s"), m("ractor_spawn_rate", "/s"), m("spawn_1M_rate", "/s")
  printf "| memory per idle process | %s | | %s | %s |\n", bytes("ergo_mem_per_process"), bytes("ractor_mem_per_actor"), bytes("spawn_1M_mem_per_process")
}

# Shared by the side-by-side scripts: reads the Erlang side's figures (the
# first file) and the Rust side's (the second), "name value unit" lines,
# and defines row() and absolute() for the scripts' END blocks.
FNR == NR { if ($1 !~ /^#/ && NF == 3) erl[$1] = $2; next }
$1 !~ /^#/ && NF == 3 { rs[$1] = $2 }
function val(k) { return (k in rs) ? rs[k] : ((k in erl) ? erl[k] : "") }
# row: what is compared, figure a over figure b, and the target on a/b
# (op is "<=" or ">=", or "" for none).
function row(label, a, b, op, target,    va, vb, r, verdict) {
  va = val(a); vb = val(b)
  if (va == "" || vb == "" || vb + 0 == 0) {
    printf "%-52s %12s %12s %9s %8s  missing figure\n", label, va, vb, "-", op target
    return
  }
  r = va / vb
  verdict = ""
  if (op == "<=") verdict = (r <= target) ? "met" : "NOT met"
  if (op == ">=") verdict = (r >= target) ? "met" : "NOT met"
  printf "%-52s %12.0f %12.0f %8.2fx %8s  %s\n", label, va, vb, r, op target, verdict
}
# absolute: one figure against a target of its own.
function absolute(label, a, op, target,    va, verdict) {
  va = val(a)
  if (va == "") { printf "%-52s %12s %12s %9s %8s  missing figure\n", label, "", "", "-", op target; return }
  verdict = (op == "<=") ? ((va + 0 <= target) ? "met" : "NOT met") : ((va + 0 >= target) ? "met" : "NOT met")
  printf "%-52s %12.0f %12s %9s %8s  %s\n", label, va, "", "", op target, verdict
}

#!/usr/bin/env bash
# ptxas's resource use of every CUDA kernel, for each target architecture, as one table; fails
# on any spill, and on registers or static shared memory above the budget the kernel's header
# states in a line
#   // ptxas budget: KERNEL R registers, S bytes shared
# (kernels/<op>.cuh, or the .cu itself when it has no header). Every template instance of a
# kernel must fit its budget; a kernel with no budget line fails too, so that each new kernel
# says what it targets and a change that needs more is a decision, not an accident.
# It also reads the sm_90/sm_90a PTX of every function for the rules of programmatic launch
# (kernels/launch_mode.h; below): a kernel waits for the kernel before first, and no buffer is
# read non-coherently. A function that breaks one fails too.
#   kernels/dev/ptxas-check.sh [NVCC] [ARCHS]   (defaults: nvcc, "80 90"; ctest passes CMake's)
# The flags are the library's (CMakeLists.txt): -O3, and --fmad=false for scheduler.cu and
# group_norm_nhwc.cu.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NVCC=${1:-nvcc}
ARCHS=${2:-80 90}
ARCHS=${ARCHS//;/ }
JOBS=${PTXAS_JOBS:-2}
command -v "$NVCC" > /dev/null || { echo "ptxas-check: $NVCC not found" >&2; exit 2; }
command -v c++filt > /dev/null || { echo "ptxas-check: c++filt (binutils) not found" >&2; exit 2; }
WORK=${PTXAS_WORK:-$(mktemp -d)}
[ -n "${PTXAS_WORK:-}" ] || trap 'rm -rf "$WORK"' EXIT
rm -f "$WORK"/*.ptx  # a reused PTXAS_WORK: only this run's PTX is read below

# One job per (source, arch): ptxas -v's report, prefixed with both.
# Kernels on sm_90a's own instructions (*_wgmma.cu) are built for sm_90a alone, whatever the
# targets, as the library builds them (CMakeLists.txt).
for src in "$ROOT"/kernels/*.cu "$ROOT"/native/src/cuda/*.cu; do
  case "$src" in
    *_wgmma.cu) echo "$src 90a" ;;
    *) for arch in $ARCHS; do echo "$src $arch"; done ;;
  esac
done | xargs -P "$JOBS" -n 2 sh -c '
  src=$1 arch=$2 out='"$WORK"'/$(basename "$src").$arch
  extra=""
  case "$src" in */scheduler.cu | */group_norm_nhwc.cu) extra=--fmad=false ;; esac
  mkdir -p "$out.keep"
  if ! "'"$NVCC"'" -cubin -o /dev/null -arch=sm_$arch -std=c++17 -O3 --expt-relaxed-constexpr \
      $extra -DCM4J_HAVE_CUDA=1 -I"'"$ROOT"'"/kernels -I"'"$ROOT"'"/native/src \
      -I"'"$ROOT"'"/native/include -Xptxas -v -keep -keep-dir "$out.keep" "$src" > "$out.log" 2>&1; then
    echo "ptxas-check: $src does not compile for sm_$arch:" >&2; cat "$out.log" >&2; exit 255
  fi
  sed "s|^|$(basename "$src") sm_$arch |" "$out.log" > "$out.txt"
  case $arch in 90*) cat "$out.keep"/*.ptx > "$out.ptx" ;; esac
  rm -rf "$out.keep"' _ ||
  { echo "ptxas-check: compilation failed" >&2; exit 1; }

# Budgets: "KERNEL REGISTERS SHARED" per line.
cat "$ROOT"/kernels/*.cuh "$ROOT"/kernels/*.cu "$ROOT"/native/src/cuda/*.cu |
  sed -nE 's|^// ptxas budget: ([A-Za-z0-9_]+) ([0-9]+) registers, ([0-9]+) bytes shared.*|\1 \2 \3|p' \
  > "$WORK/budgets"

# Rows "FILE ARCH MANGLED REGISTERS SHARED STACK SPILL_STORES SPILL_LOADS", then the kernel's
# readable name (c++filt) and its base name (no namespaces, template arguments or parameters).
cat "$WORK"/*.txt | awk '
  /Compiling entry function/ { fn = $0; sub(/.*function \047/, "", fn); sub(/\047.*/, "", fn) }
  /bytes stack frame/ { stack = $3; stores = $7; loads = $11 }
  /Used [0-9]+ registers/ {
    shared = 0
    for (i = 3; i < NF; i++) if ($(i + 1) == "bytes" && $(i + 2) ~ /^smem/) shared = $i
    print $1, $2, fn, $7, shared, stack, stores, loads
  }' > "$WORK/rows"
cut -d' ' -f3 "$WORK/rows" | c++filt |
  sed -E 's/cm4j::kernels::|\(anonymous namespace\)::|cm4j:://g; s/^void //; s/\(.*//' > "$WORK/names"
paste -d' ' "$WORK/rows" "$WORK/names" | awk '
  FILENAME == ARGV[1] { regs[$1] = $2; smem[$1] = $3; next }
  {
    name = $9; for (i = 10; i <= NF; i++) name = name " " $i
    base = name; sub(/<.*/, "", base)
    status = "ok"; budget = "-"
    if (!(base in regs)) status = "NO BUDGET"
    else {
      budget = regs[base] " / " smem[base]
      if ($4 > regs[base]) status = "REGISTERS OVER"
      if ($5 > smem[base]) status = "SHARED OVER"
    }
    if ($7 > 0 || $8 > 0) status = "SPILLS"
    if (status != "ok") bad++
    printf "| %-6s | %-44s | %4d | %6d | %5d | %5d / %-5d | %-12s | %s |\n", $2,
           substr(name, 1, 44), $4, $5, $6, $7, $8, budget, status
    n++
  }
  END {
    printf "ptxas-check: %d kernel instance(s), %d over budget or spilling\n", n, bad
    exit bad > 0
  }' "$WORK/budgets" - > "$WORK/table" && rc=0 || rc=$?
echo "| arch   | kernel                                       | regs | shared | stack | spill st / ld | budget       | status |"
echo "|--------|----------------------------------------------|------|--------|-------|---------------|--------------|--------|"
sort -t'|' -k3,3 -k2,2 "$WORK/table" | grep '^|'
grep -v '^|' "$WORK/table"

# Programmatic launch (kernels/launch_mode.h), read from the sm_90/sm_90a PTX of every
# function:
# - a kernel (.entry) may not access memory (only its parameters and constants: ld.param,
#   ld.const), reach a barrier, run an MMA or call a function before griddepcontrol.wait,
#   and must reach griddepcontrol.launch_dependents;
# - no function reads a buffer non-coherently (ld.global.nc, what `const __restrict__`
#   permits), except the CUDA math library's own tables (__cudart_*), at an address followed
#   from the table's symbol through mov, add, sub, mad and cvta.
cat "$WORK"/*.ptx 2> /dev/null | awk '
  function report(why) { bad++; print name, why }
  depth == 0 && /^(\.(visible|weak|extern) )?\.(entry|func) / {
    name = $0; sub(/^.*\.(entry|func) (\([^)]*\) )?/, "", name); sub(/\(.*/, "", name)
    entry = $0 ~ /\.entry /; pending = 1; waited = 0; launched = 0; early = ""; nc = ""
    split("", table)
    next
  }
  pending && depth == 0 && /;[ \t]*$/ { pending = 0; next }  # a declaration, no body
  !pending && depth == 0 { next }
  {
    line = $0; sub(/\/\/.*/, "", line)
    depth += gsub(/\{/, "{", line) - gsub(/\}/, "}", line)
    if (pending) { if (depth > 0) pending = 0; next }  # the header, then the body opens
  }
  /griddepcontrol\.wait/ { waited = 1 }
  /griddepcontrol\.launch_dependents/ { launched = 1 }
  entry && !waited && early == "" && !/ld\.(param|const)/ &&
    /^[ \t]*(@!?%p[0-9]+[ \t]+)?(ld|ldu|st|atom|red|cp|ldmatrix|stmatrix|wgmma|mma|bar|barrier|mbarrier|prefetch|tex|suld|sust|call)[. \t]/ {
    early = $0; gsub(/^[ \t]+|[ \t]+$/, "", early)
  }
  /^[ \t]*mov\.[ub]64[ \t]+%rd[0-9]+, __cudart_/ { r = $2; sub(/,$/, "", r); table[r] = 1 }
  /^[ \t]*(mov|add|sub|mad|cvta)[.a-z0-9]*[ \t]+%rd[0-9]+,/ {
    dst = $2; sub(/,$/, "", dst)
    for (i = 3; i <= NF; i++) { src = $i; gsub(/[,;]/, "", src); if (src in table) table[dst] = 1 }
  }
  /ld\.global\.nc/ && nc == "" {
    base = $0; sub(/^[^[]*\[/, "", base); sub(/[^%a-z0-9].*$/, "", base)
    if (!(base in table)) { nc = $0; gsub(/^[ \t]+|[ \t]+$/, "", nc) }
  }
  depth == 0 {
    if (entry) {
      n++
      if (!waited) report("no griddepcontrol.wait")
      else if (early != "") report("before the wait: " early)
      else if (!launched) report("no griddepcontrol.launch_dependents")
    }
    if (nc != "") report("a non-coherent load of a buffer: " nc)
  }
  END {
    printf "prologue: %d sm_90 kernel instance(s), %d function(s) failing the programmatic launch rules\n", n, bad
    exit bad > 0
  }' > "$WORK/prologue" && prologue_rc=0 || prologue_rc=$?
while read -r mangled why; do
  [ "$mangled" = prologue: ] || echo "  $(echo "$mangled" | c++filt): $why"
done < "$WORK/prologue"
grep '^prologue:' "$WORK/prologue"
[ "$prologue_rc" = 0 ] || rc=1
exit "$rc"

#!/usr/bin/env bash
# Builds cm4j with the CUDA backend on a GPU machine and runs every GPU check, in one call:
#   info -> configure -> build -> test_cuda_indexing -> test_cuda_ops -> test_cuda_golden
#   (with the tiny model's sampling loop on the device) -> test_cuda_graphs (fp32, fp16, and
#   the candidate set's fp16; each also with programmatic dependent launch, CM4J_CUDA_PDL)
#   -> test_cuda_golden with CM4J_CUDA_KERNELS=candidate (the variants no GPU has run yet)
#   -> test_cuda_cudnn (conv vs cuDNN) -> test_cuda_cudnn_attn (attention vs cuDNN's
#   multi-head attention; both skipped without libcudnn.so.9) -> test_cuda_golden
#   (fp16 and bf16 tensor-core conv) -> the candidate kernels (CM4J_CUDA_KERNELS=candidate:
#   with fp16/bf16 the NHWC mode): test_cuda_ops, test_cuda_golden fp16 and bf16
#   -> test_norm_fusion (group norms fused into those convs, against unfused)
#   -> test_cuda_wgmma (the sm_90a wgmma conv against the mma conv; skipped off sm_90)
#   -> test_cuda_tuning (the measured conv choice) and test_cuda_golden fp16 with
#   CM4J_TUNING=full, then cached, and full with CM4J_CUDA_WGMMA=on
#   -> compute-sanitizer memcheck (tiny model) and racecheck (small ops) -> bench_cuda
# Every step runs even when an earlier one failed (a step whose binary was not built is
# reported as such); each has a timeout, and the whole run stays inside a time budget
# (CM4J_CHECK_BUDGET_S, default 450 s) so the summary table, printed last, always comes.
# Logs go to $OUT/device-check/ when $OUT is set (the device tool copies $OUT back), else
# to build/device-logs/. Golden data: ../shared/golden, else ./shared/golden.
# Options (environment): CM4J_CUDA_ARCH (default 90), CM4J_BUILD_DIR (build/device),
# CM4J_CUDA_KERNELS (kernel set, passed through to the tests).
set -u
set -o pipefail

T0=$(date +%s)
BUDGET=${CM4J_CHECK_BUDGET_S:-450}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
BUILD=${CM4J_BUILD_DIR:-build/device}
ARCH=${CM4J_CUDA_ARCH:-90}
if [ -n "${OUT:-}" ]; then LOGS="$OUT/device-check"; else LOGS="$ROOT/build/device-logs"; fi
mkdir -p "$LOGS"
SUMMARY="$LOGS/summary.md"

# CM4J_GOLDEN (set by the caller, e.g. a copy carried to the GPU machine) wins.
GOLDEN=""
[ -n "${CM4J_GOLDEN:-}" ] && [ -d "$CM4J_GOLDEN" ] && GOLDEN=$(cd "$CM4J_GOLDEN" && pwd)
for g in "$ROOT/../shared/golden" "$ROOT/shared/golden"; do
  if [ -z "$GOLDEN" ] && [ -d "$g" ]; then GOLDEN=$(cd "$g" && pwd); fi
done
[ -n "$GOLDEN" ] && export CM4J_GOLDEN="$GOLDEN"

declare -a S_NAME S_RESULT S_SECS S_NOTE

elapsed() { echo $(( $(date +%s) - T0 )); }

# record NAME RESULT SECONDS NOTE
record() {
  S_NAME+=("$1"); S_RESULT+=("$2"); S_SECS+=("$3"); S_NOTE+=("$4")
  printf '== %-22s %-14s %4ss  %s\n' "$1" "$2" "$3" "$4"
}

# step NAME MAX_SECONDS CMD... : runs CMD with its output in $LOGS/NAME.log (and on the
# console, indented), under min(MAX_SECONDS, time left in the budget).
step() {
  local name=$1 max=$2; shift 2
  local left=$(( BUDGET - $(elapsed) - 20 ))
  if [ "$left" -lt 15 ]; then record "$name" "not run" 0 "time budget spent"; return 99; fi
  local limit=$(( max < left ? max : left ))
  local log="$LOGS/$name.log" t=$(date +%s)
  echo "== $name (limit ${limit}s): $*"
  if declare -F "$1" > /dev/null; then
    "$@" > "$log" 2>&1  # a shell function: quick, no timeout
  else
    timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
  fi
  local rc=$?
  tail -n 12 "$log" | sed 's/^/   | /'  # the full log is in $LOGS
  local secs=$(( $(date +%s) - t )) result
  case $rc in
    0) result="ok" ;;
    77) result="skipped(77)" ;;
    124|137) result="TIMEOUT" ;;
    *) result="FAIL(rc=$rc)" ;;
  esac
  LAST_RC=$rc
  local note
  if [ $rc -eq 77 ]; then note=$(tail -n 1 "$log"); else note=$(note_for "$name" "$log"); fi
  record "$name" "$result" "$secs" "$note"
  return $rc
}

# The numbers worth a line in the summary, per step.
note_for() {
  local name=$1 log=$2
  case $name in
    build) grep -cE 'warning' "$log" | sed 's/^/warnings: /' ;;
    test_cuda_indexing) tail -n 1 "$log" ;;
    test_cuda_graphs*) grep -E '^(forward|sampling loops):' "$log" | tr '\n' ';' ;;
    test_norm_fusion) grep -E '^(tiny|lsun_mini) +cuda' "$log" |
      awk '{printf "%s %s %s/%s fused, first diff %s; ", $1, $2, $3, $5, $(NF-2)}' ;;
    test_cuda_tuning*) grep -E '^(cuBLAS|  tiny (with wgmma )?forward|test_cuda_tuning)' "$log" | tr '\n' ';' ;;
    test_cuda_wgmma)
      # Cases passed and failed, the worst rel L2 against the mma conv, the fewest same bits.
      awk '/^(ok|FAIL) *: wgmma / {n++; bad += ($1 ~ /^FAIL/); for (i = 1; i < NF; i++) {
          if ($i == "L2") { v = $(i + 1); if (v ~ /inf|nan/) inf = 1; else if (v + 0 > m) m = v + 0 }
          if ($(i + 1) == "of" && $(i + 2) == "its") { b = $i + 0; if (lo == "" || b < lo) lo = b } } }
        /skipped/ {print; exit}
        END {if (n) printf "%d cases, %d failed; worst rel L2 %s vs mma; same bits >= %s%%", n, bad,
          inf ? "inf" : sprintf("%.1e", m), lo}' "$log" ;;
    test_cuda_cudnn)
      # Worst rel L2 vs cuDNN's implicit GEMMs; summed medians, ours vs cuDNN's faster one.
      awk -F'|' '$9 ~ /^ (ok|FAIL) *$/ && $2 !~ /^ case / {n++; for (i = 3; i <= 4; i++) { v = $i; gsub(/ /, "", v);
          if (v ~ /inf|nan/) bad = 1; else if (v + 0 > m) m = v + 0 }
          o += $5; g = $6 + 0; p = $7 + 0; c += (p > 0 && p < g) ? p : g }
        END {printf "%d cases, worst rel L2 %s; ms ours %.2f vs cuDNN %.2f", n,
          bad ? "inf" : sprintf("%.1e", m), o, c}' "$log" ;;
    test_cuda_cudnn_attn)
      # Its closing line (cases, worst rel L2 vs cuDNN, summed medians), or why it stopped.
      grep -E '^test_cuda_cudnn_attn: ([0-9]+ case|FAIL)' "$log" | head -n 1 |
        sed 's/^test_cuda_cudnn_attn: //' ;;
    test_cuda_ops*)
      # Worst relative L2 error per kernel set (column 4 of the table).
      echo "$(grep -E '^test_cuda_ops: [0-9]+ case' "$log" | sed 's/test_cuda_ops: //');" \
        "worst rel L2: $(awk -F'|' '/^\| [a-z_0-9]+ +\|/ && $6 ~ /e/ {k=$4; gsub(/ /,"",k); v=$5+0; if (!(k in m) || v > m[k]) m[k]=v} END {for (k in m) printf "%s %.1e, ", k, m[k]}' "$log")" ;;
    test_cuda_golden*)
      grep -E '^[a-z_0-9]+ +cuda[^ ]* +sample ' "$log" | awk '{printf "%s %s; ", $1, $5}'
      grep -E ' repeat forward ' "$log" | awk '{printf "repeat %s; ", $5}'
      grep -E ' batch-1 forward ' "$log" | awk '{printf "batch-1 vs batch %s; ", $6}'
      grep -E ' sampling loop +(identical|DIFFERS)' "$log" | awk '{printf "sampling loop %s; ", $5}'
      grep -E ' sampling loop +rel_l2 ' "$log" | awk '{printf "vs cpu %s", $6}' ;;
    memcheck*|racecheck*) grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log" | tail -n 1 | sed 's/^=* *//' ;;
    bench_cuda) grep -E '^RESULT forward' "$log" | sed 's/ms=//; s/batch=/b/' | awk '{printf "%s %s %s ms; ", $3, $4, $5}' ;;
    info) grep -E '^GPU:' "$log" | head -n 1 ;;
    *) echo "" ;;
  esac
}

gather_info() {
  echo "repo: $ROOT"
  echo "golden: ${GOLDEN:-MISSING (looked in ../shared/golden and ./shared/golden)}"
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader |
      sed 's/^/GPU: /'
    nvidia-smi
  else
    echo "GPU: nvidia-smi not found"
  fi
  echo "java: $(command -v java || echo 'not found')"
  echo "mvn: $(command -v mvn || echo 'not found')"
  command -v nvcc > /dev/null && nvcc --version | tail -n 2 || echo "nvcc: not on PATH"
  cmake --version | head -n 1
  echo "ninja: $(ninja --version 2>/dev/null || echo 'not found')"
  echo "compute-sanitizer: ${SANITIZER:-not found}"
  nproc
}

# nvcc may be installed but not on PATH.
if ! command -v nvcc > /dev/null; then
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
    if [ -x "$d/nvcc" ]; then export PATH="$d:$PATH"; break; fi
  done
fi
SANITIZER=$(command -v compute-sanitizer || true)
if [ -z "$SANITIZER" ] && command -v nvcc > /dev/null; then
  for s in "$(dirname "$(command -v nvcc)")/compute-sanitizer" /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
    if [ -x "$s" ]; then SANITIZER=$s; break; fi
  done
fi

LAST_RC=0
step info 30 gather_info

GEN=()
command -v ninja > /dev/null && GEN=(-G Ninja)
CONFIG_ARGS=(-S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DCM4J_CUDA=ON
             -DCMAKE_CUDA_ARCHITECTURES="$ARCH")
[ -n "$GOLDEN" ] && CONFIG_ARGS+=(-DCM4J_GOLDEN_DIR="$GOLDEN")
if command -v nvcc > /dev/null && [ ! -f "$BUILD/CMakeCache.txt" ]; then
  CONFIG_ARGS+=(-DCMAKE_CUDA_COMPILER="$(command -v nvcc)")
fi
step configure 90 cmake "${CONFIG_ARGS[@]}"
if ! grep -q 'CM4J_HAVE_CUDA' "$BUILD/CMakeCache.txt" 2>/dev/null && \
   ! grep -q 'CMAKE_CUDA_COMPILER:' "$BUILD/CMakeCache.txt" 2>/dev/null; then
  echo "warning: the CUDA compiler was not found by CMake; GPU tests will skip" | tee -a "$LOGS/configure.log"
fi
# Only the GPU targets (and the library): a failure in an unrelated file cannot hold them
# back, and the build stays short. CM4J_FULL_BUILD=1 also builds everything else after.
TARGETS="test_cuda_indexing test_cuda_ops test_cuda_golden test_cuda_graphs test_cuda_cudnn test_cuda_cudnn_attn test_cuda_tuning test_norm_fusion test_cuda_wgmma bench_cuda cm4j"
if [ "${CM4J_FULL_BUILD:-0}" = 1 ]; then
  KEEP_GOING="-k"
  [ ${#GEN[@]} -gt 0 ] && KEEP_GOING="-k 0"
  step build 300 bash -c "cmake --build '$BUILD' -j16 --target $TARGETS; rc=\$?; cmake --build '$BUILD' -j16 -- $KEEP_GOING > '$LOGS/build-all.log' 2>&1 || echo 'note: the full build had failures, see build-all.log'; exit \$rc"
else
  step build 300 cmake --build "$BUILD" -j16 --target $TARGETS
fi

run_bin() {  # run_bin STEP MAX BINARY ARGS...
  local name=$1 max=$2 bin=$3; shift 3
  if [ ! -x "$BUILD/$bin" ]; then record "$name" "NOT BUILT" 0 "$BUILD/$bin missing"; return; fi
  step "$name" "$max" "$BUILD/$bin" "$@"
}

sanitize() {  # sanitize STEP MAX TOOL BINARY ARGS...
  local name=$1 max=$2 tool=$3 bin=$4; shift 4
  if [ -z "$SANITIZER" ]; then record "$name" "not run" 0 "compute-sanitizer not found"; return; fi
  if [ ! -x "$BUILD/$bin" ]; then record "$name" "NOT BUILT" 0 "$BUILD/$bin missing"; return; fi
  local extra=()
  [ "$tool" = memcheck ] && extra=(--leak-check full)
  step "$name" "$max" "$SANITIZER" --tool "$tool" "${extra[@]}" --error-exitcode 99 "$BUILD/$bin" "$@"
}

# Most important first: if the time budget runs out, the tail is what is skipped.
run_bin test_cuda_indexing 30 test_cuda_indexing
run_bin test_cuda_ops 150 test_cuda_ops
run_bin test_cuda_golden 150 test_cuda_golden
# CUDA graphs (CM4J_CUDA_GRAPHS): forward passes and sampling loops replayed, against none;
# each also with the graphs' kernels launched programmatically (CM4J_CUDA_PDL, sm_90+).
run_bin test_cuda_graphs 60 test_cuda_graphs
run_bin test_cuda_graphs_fp16 60 test_cuda_graphs --dtype=fp16
CM4J_CUDA_KERNELS=candidate run_bin test_cuda_graphs_fp16_nhwc 60 test_cuda_graphs --dtype=fp16
# The candidate kernel set (kernels/README.md): unverified variants, opt-in until this passes.
CM4J_CUDA_KERNELS=candidate run_bin test_cuda_golden_candidate 150 test_cuda_golden
# cuDNN from PyTorch's environment (pip nvidia-cudnn-cu1x, or torch/lib), else ldconfig; the
# test dlopens it (and skips with 77 when none loads). CM4J_CUDNN_LIB set by the caller wins.
find_cudnn() {
  command -v python3 > /dev/null && python3 - <<'PY' 2>/dev/null
import importlib.util, os
dirs = []
try:
    import nvidia.cudnn as m
    dirs += [os.path.join(p, "lib") for p in getattr(m, "__path__", [])]
except Exception:
    pass
spec = importlib.util.find_spec("torch")  # torch's lib folder, without importing torch
if spec and spec.submodule_search_locations:
    dirs += [os.path.join(p, "lib") for p in spec.submodule_search_locations]
for d in dirs:
    if os.path.exists(os.path.join(d, "libcudnn.so.9")):
        print(os.path.join(d, "libcudnn.so.9"))
        break
PY
  command -v ldconfig > /dev/null && ldconfig -p 2>/dev/null | awk '/libcudnn\.so\.9 /{print $NF}'
}
if [ -z "${CM4J_CUDNN_LIB:-}" ]; then
  CM4J_CUDNN_LIB=$(find_cudnn | head -n 1)
  [ -n "$CM4J_CUDNN_LIB" ] && export CM4J_CUDNN_LIB
fi
echo "cuDNN: ${CM4J_CUDNN_LIB:-not found (test_cuda_cudnn and test_cuda_cudnn_attn will skip)}" | tee -a "$LOGS/info.log"
# A pip wheel's cuDNN may need its sibling wheels' libraries (nvidia/cublas/lib, ...): put
# every nvidia/*/lib on the library path of this one step.
CUDNN_LD=${LD_LIBRARY_PATH:-}
if [ -n "${CM4J_CUDNN_LIB:-}" ]; then
  NV=$(dirname "$(dirname "$(dirname "$CM4J_CUDNN_LIB")")")
  if [ "$(basename "$NV")" = nvidia ]; then
    for d in "$NV"/*/lib; do [ -d "$d" ] && CUDNN_LD="$d${CUDNN_LD:+:$CUDNN_LD}"; done
  fi
fi
for t in test_cuda_cudnn test_cuda_cudnn_attn; do
  if [ -n "$CUDNN_LD" ]; then
    LD_LIBRARY_PATH="$CUDNN_LD" run_bin $t 60 $t
  else
    run_bin $t 60 $t
  fi
done
sanitize memcheck_tiny 120 memcheck test_cuda_golden --models=tiny
# The tensor-core conv (fp16/bf16 operands): opt-in, first verified here.
run_bin test_cuda_golden_fp16 100 test_cuda_golden --dtype=fp16
run_bin test_cuda_golden_bf16 100 test_cuda_golden --dtype=bf16
# The NHWC mode (fp16/bf16 activations channels-last between ops): opt-in, first run here.
CM4J_CUDA_KERNELS=candidate run_bin test_cuda_ops_candidate 120 test_cuda_ops
CM4J_CUDA_KERNELS=candidate run_bin test_cuda_golden_fp16_nhwc 100 test_cuda_golden --dtype=fp16
CM4J_CUDA_KERNELS=candidate run_bin test_cuda_golden_bf16_nhwc 100 test_cuda_golden --dtype=bf16
# Group norms fused into the NHWC mode's tensor-core convs: whole UNets, fused = unfused bits.
run_bin test_norm_fusion 60 test_norm_fusion
# The sm_90a wgmma conv (a tuning candidate behind CM4J_CUDA_WGMMA=on) against the mma conv at
# every conv shape of imagenet64 and lsun_mini.
run_bin test_cuda_wgmma 60 test_cuda_wgmma
# The NHWC conv's kernel chosen by measurement (CM4J_TUNING): first the mechanism with a fixed
# cost per candidate (test_cuda_tuning; cuBLAS from the toolkit or PyTorch's wheels where it
# loads), then real timing: the candidate golden cases measured and written (full), then read
# back (cached), both within the golden bounds; the cache file stays in the logs.
TUNING_LD="$CUDNN_LD"
NVCC_DIR=$(dirname "$(command -v nvcc 2> /dev/null || echo /usr/local/cuda/bin/nvcc)")
[ -d "$NVCC_DIR/../lib64" ] && TUNING_LD="${TUNING_LD:+$TUNING_LD:}$NVCC_DIR/../lib64"
LD_LIBRARY_PATH="$TUNING_LD" run_bin test_cuda_tuning 120 test_cuda_tuning --dtype=fp16 --golden
LD_LIBRARY_PATH="$TUNING_LD" run_bin test_cuda_tuning_bf16 60 test_cuda_tuning --dtype=bf16
CM4J_CUBLAS_LIB=/nonexistent/libcublas.so run_bin test_cuda_tuning_no_cublas 30 test_cuda_tuning --cublas-missing
LD_LIBRARY_PATH="$TUNING_LD" CM4J_CUDA_KERNELS=candidate CM4J_TUNING=full CM4J_TUNING_CACHE="$LOGS/tuning" \
  run_bin test_cuda_golden_fp16_tuned 150 test_cuda_golden --dtype=fp16
LD_LIBRARY_PATH="$TUNING_LD" CM4J_CUDA_KERNELS=candidate CM4J_TUNING=cached CM4J_TUNING_CACHE="$LOGS/tuning" \
  run_bin test_cuda_golden_fp16_cached 100 test_cuda_golden --dtype=fp16
LD_LIBRARY_PATH="$TUNING_LD" CM4J_CUDA_KERNELS=candidate CM4J_TUNING=full CM4J_CUDA_WGMMA=on \
  CM4J_TUNING_CACHE="$LOGS/tuning-wgmma" run_bin test_cuda_golden_fp16_wgmma 150 test_cuda_golden --dtype=fp16
run_bin bench_cuda 150 bench_cuda
# Shared-memory races in the tiled and tensor-core kernels, on the small odd-sized cases.
export CM4J_TEST_FILTER="odd,tiny"
sanitize racecheck_ops 90 racecheck test_cuda_ops
unset CM4J_TEST_FILTER
sanitize memcheck_tiny_fp16 90 memcheck test_cuda_golden --models=tiny --dtype=fp16
CM4J_CUDA_KERNELS=candidate CM4J_TEST_FILTER="odd,tiny" \
  sanitize racecheck_ops_candidate 90 racecheck test_cuda_ops
CM4J_CUDA_KERNELS=candidate \
  sanitize memcheck_tiny_fp16_nhwc 90 memcheck test_cuda_golden --models=tiny --dtype=fp16

# ---- summary, last -----------------------------------------------------------------------
{
  echo
  echo "## device-check summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(elapsed) s total)"
  echo
  echo "GPU: $(command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1 || echo unknown)"
  echo "golden: ${GOLDEN:-MISSING}   logs: $LOGS"
  echo
  echo "| step | result | s | key numbers |"
  echo "|---|---|---:|---|"
  for i in "${!S_NAME[@]}"; do
    echo "| ${S_NAME[$i]} | ${S_RESULT[$i]} | ${S_SECS[$i]} | ${S_NOTE[$i]} |"
  done
  if [ -f "$LOGS/bench_cuda.log" ]; then
    echo
    sed -n -E '/^(imagenet64 forward|conv2d, median)/,/^$/p' "$LOGS/bench_cuda.log"
  fi
} | tee "$SUMMARY"

for r in "${S_RESULT[@]}"; do
  case $r in ok|skipped*) ;; *) exit 1 ;; esac
done
exit 0

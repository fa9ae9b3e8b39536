#!/usr/bin/env bash
# cm4j's CUDA backend against diffusers on the same GPU, in one call on a GPU machine:
#   1. scripts/device-check.sh: builds the CUDA targets and verifies every kernel and the
#      golden cases (its summary table; --no-verify only builds bench_cuda);
#   2. native bench_cuda on imagenet64 (synth-v1 weights): forward and one-/two-step
#      generation (cm4j_unet_sample) at batch 1, 8, 64, 256 in fp16, bf16 and fp32, with
#      CUDA graphs off and on, and the ten slowest ops of a profiled pass (the last batch);
#   3. scripts/gpu_baseline.py: diffusers' UNet2DModel (v0.25.0 source from .baseline/, as
#      the CPU baseline; no network needed) eager in each dtype and under torch.compile in
#      fp16, channels_last;
#   4. one table, last: ms per forward, images/s and the ratios diffusers / cm4j (above 1:
#      cm4j is faster). Without a GPU it says so and exits 2.
# Usage: scripts/gpu-bench.sh [--no-verify] [--quick]
#   --quick: batch 1 and 64 only, compile at batch 1 only (about half the time)
# Environment: GPU_BENCH_DTYPES (cm4j's dtypes, fp16,bf16,fp32; the ops list is the
# first's), CM4J_CUDA_ARCH (90), CM4J_BUILD_DIR (build/device), CM4J_VERIFY_BUDGET_S
# (device-check's budget, 300), CM4J_GOLDEN. Logs and the table go to build/gpu-bench/; with
# $OUT set (the device tool, which brings back at most 8 files) only the table and one
# archive of the logs go there: $OUT/gpu-bench-table.md, $OUT/gpu-bench-logs.tgz.
# .baseline/ comes from scripts/cpu-baseline-setup.sh on a machine with network; carry it.
set -u
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
VERIFY=1 QUICK=0
for a in "$@"; do
  case $a in
    --no-verify) VERIFY=0 ;;
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-bench: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done

if ! command -v nvidia-smi > /dev/null || ! nvidia-smi -L > /dev/null 2>&1; then
  echo "gpu-bench: no NVIDIA GPU on this machine (nvidia-smi $(command -v nvidia-smi > /dev/null &&
    echo 'lists none' || echo 'not found')); it measures the CUDA backend and needs one." >&2
  echo "gpu-bench: on a CPU, scripts/cpu-bench.sh compares the CPU backend." >&2
  exit 2
fi

BUILD=${CM4J_BUILD_DIR:-build/device}
export CM4J_BUILD_DIR=$BUILD
LOGS="$ROOT/build/gpu-bench"
mkdir -p "$LOGS"
if ! command -v nvcc > /dev/null; then
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
    if [ -x "$d/nvcc" ]; then export PATH="$d:$PATH"; break; fi
  done
fi
BATCHES=1,8,64,256 COMPILE_BATCHES=1,8,64,256
[ "$QUICK" = 1 ] && BATCHES=1,64 COMPILE_BATCHES=1

# --- 1. build and verify -----------------------------------------------------------------
if [ "$VERIFY" = 1 ]; then
  CM4J_CHECK_BUDGET_S=${CM4J_VERIFY_BUDGET_S:-300} OUT="$LOGS" bash scripts/device-check.sh
  VERIFIED=$?
else
  GEN=()
  command -v ninja > /dev/null && GEN=(-G Ninja)
  cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DCM4J_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${CM4J_CUDA_ARCH:-90}" > "$LOGS/configure.log" 2>&1 &&
    cmake --build "$BUILD" -j"$(nproc)" --target bench_cuda > "$LOGS/build.log" 2>&1
  VERIFIED=skipped
fi
if [ ! -x "$BUILD/bench_cuda" ]; then
  echo "gpu-bench: $BUILD/bench_cuda was not built (logs in $LOGS)" >&2
  exit 1
fi

# --- 2. cm4j -------------------------------------------------------------------------------
echo "== bench_cuda (imagenet64, batches $BATCHES)"
CM4J_CUDA_GRAPHS=off "$BUILD/bench_cuda" --batch "$BATCHES" --dtype ${GPU_BENCH_DTYPES:-fp16,bf16,fp32} \
  --generate --ops 10 --ops-batch "${BATCHES##*,}" 2>&1 | tee "$LOGS/bench_cuda.log" | grep -v '^RESULT'
echo "== bench_cuda with CUDA graphs (CM4J_CUDA_GRAPHS=on)"
CM4J_CUDA_GRAPHS=on "$BUILD/bench_cuda" --batch "$BATCHES" --dtype ${GPU_BENCH_DTYPES:-fp16,bf16,fp32} \
  --generate 2>&1 | tee "$LOGS/bench_cuda_graphs.log" | grep -v '^RESULT'

# --- 3. diffusers --------------------------------------------------------------------------
: > "$LOGS/baseline.log"
if [ -d .baseline/diffusers ]; then
  echo "== diffusers (eager: fp16, bf16, fp32; torch.compile: fp16 at $COMPILE_BATCHES)"
  PYTHONPATH=.baseline PYTHONUNBUFFERED=1 python3 scripts/gpu_baseline.py --dtype fp16,bf16,fp32 \
    --modes eager --batch "$BATCHES" 2>&1 | tee -a "$LOGS/baseline.log"
  PYTHONPATH=.baseline PYTHONUNBUFFERED=1 python3 scripts/gpu_baseline.py --dtype fp16 \
    --modes compile --batch "$BATCHES" --compile-batch "$COMPILE_BATCHES" 2>&1 | tee -a "$LOGS/baseline.log"
else
  echo "gpu_baseline skipped reason=no_.baseline/diffusers_(run_scripts/cpu-baseline-setup.sh_where_there_is_network,_then_carry_.baseline)" |
    tee "$LOGS/baseline.log"
fi

# --- 4. the table --------------------------------------------------------------------------
{
  echo
  echo "## gpu-bench ($(date -u +%Y-%m-%dT%H:%M:%SZ)), $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1)"
  echo
  echo "imagenet64, synth-v1 weights / PyTorch default init; ms per forward pass (median);"
  echo "cm4j's forward includes the input upload and output download, diffusers' does not;"
  echo "img/s and the ratios take the faster of cm4j without and with CUDA graphs."
  echo "device-check: $([ "$VERIFIED" = 0 ] && echo passed || { [ "$VERIFIED" = skipped ] && echo 'not run (--no-verify)' || echo "FAILED (rc=$VERIFIED, see $LOGS/device-check/summary.md)"; })"
  echo
  awk '
    # RESULT forward DTYPE batch=B ms=M ...; RESULT generate DTYPE steps=S batch=B ms=M ...
    # g: "g" in the run with CUDA graphs
    FNR == 1 { g = FILENAME ~ /graphs/ ? "g" : "" }
    /^RESULT forward / { split($4, b, "="); split($5, m, "="); fwd[g, $3, b[2]] = m[2]; key[$3, b[2]] = 1 }
    /^RESULT generate / { split($4, s, "="); split($5, b, "="); split($6, m, "="); gen[g, $3, b[2], s[2]] = m[2] }
    /^gpu_baseline dtype=/ {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      base[f["dtype"], f["mode"], f["batch"]] = f["ms"]
    }
    function cell(v) { return v == "" ? "" : sprintf("%.2f", v) }
    function ratio(d, c) { return (d == "" || c == "" || c <= 0) ? "" : sprintf("%.2fx", d / c) }
    function best(a, b) { return a == "" ? b : (b == "" || a + 0 <= b + 0) ? a : b }
    END {
      print "| dtype | batch | cm4j ms | graphs ms | img/s | 1-step ms | graphs | 2-step ms | graphs | diffusers eager ms | compile ms | eager / cm4j | compile / cm4j |"
      print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
      n = split("fp16 bf16 fp32", dts, " ")
      for (d = 1; d <= n; d++) for (bb = 1; bb <= 4096; bb++) {
        if (!((dts[d], bb) in key)) continue
        c = best(fwd["", dts[d], bb], fwd["g", dts[d], bb])  # the faster of graphs off and on
        e = base[dts[d], "eager", bb]; k = base[dts[d], "compile", bb]
        printf "| %s | %d | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n", dts[d], bb,
          cell(fwd["", dts[d], bb]), cell(fwd["g", dts[d], bb]), 1e3 * bb / c,
          cell(gen["", dts[d], bb, 1]), cell(gen["g", dts[d], bb, 1]),
          cell(gen["", dts[d], bb, 2]), cell(gen["g", dts[d], bb, 2]), cell(e), cell(k), ratio(e, c), ratio(k, c)
      }
    }' "$LOGS/bench_cuda.log" "$LOGS/bench_cuda_graphs.log" "$LOGS/baseline.log"
  echo
  OPS_DTYPE=${GPU_BENCH_DTYPES:-fp16}
  OPS_DTYPE=${OPS_DTYPE%%,*}
  echo "Ten slowest ops, $OPS_DTYPE, batch ${BATCHES##*,} (each op waited for):"
  grep -E "^RESULT op $OPS_DTYPE " "$LOGS/bench_cuda.log" |
    sed -E 's/^RESULT op [a-z0-9]+ batch=[0-9]+ rank=([0-9]+) ms=([0-9.]+) share=([0-9.]+) name=/  \1. \2 ms (\3%) /'
  grep -E '^gpu_baseline skipped' "$LOGS/baseline.log" | sed 's/^gpu_baseline skipped /  diffusers not run: /'
} | tee "$LOGS/table.md"
if [ -n "${OUT:-}" ]; then
  cp "$LOGS/table.md" "$OUT/gpu-bench-table.md"
  tar czf "$OUT/gpu-bench-logs.tgz" -C "$LOGS" .
fi
[ "$VERIFIED" = 0 ] || [ "$VERIFIED" = skipped ]

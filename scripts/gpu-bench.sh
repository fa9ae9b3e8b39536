#!/usr/bin/env bash
# cm4j's CUDA backend against diffusers on the same GPU, in one call on a GPU machine:
#   1. scripts/device-check.sh: builds the CUDA targets and verifies every kernel and the
#      golden cases (its summary table; --no-verify only builds bench_cuda);
#   2. native bench_cuda on imagenet64 (synth-v1 weights): forward and one-/two-step
#      generation (cm4j_unet_sample) at batch 1, 8, 64, 256 in fp16, bf16 and fp32: the
#      default (verified) kernels with CUDA graphs off and on; the candidate set
#      (CM4J_CUDA_KERNELS=candidate: the NHWC mode, CUDA graphs, convs tuned with
#      CM4J_TUNING=full in the warm-up pass); the candidate set with its group norms unfused
#      (CM4J_CUDA_NORM_FUSION=off, first half dtype, forward only); the candidate set with
#      the sm_90a wgmma conv among the tuner's candidates (CM4J_CUDA_WGMMA=on, first half
#      dtype; on a card of compute capability 9.0 only); the candidate set with its graphs'
#      kernels launched programmatically (CM4J_CUDA_PDL=on, first half dtype, forward only,
#      the candidate run's tuning file; compute capability 9.0+); the ten slowest ops of a
#      profiled pass (the last batch) of the default and the candidate set;
#   3. scripts/gpu_baseline.py: diffusers' UNet2DModel (v0.25.0 source from .baseline/, as
#      the CPU baseline; no network needed) eager in each dtype and under torch.compile in
#      fp16, channels_last;
#   4. one table, last: ms per forward, images/s and the ratios diffusers / cm4j (above 1:
#      cm4j is faster). Without a GPU it says so and exits 2.
# Usage: scripts/gpu-bench.sh [--no-verify] [--quick]
#   --quick: batch 1 and 64 only, no default-kernels run with CUDA graphs, compile at batch 1
#   only (about half the time)
# Environment: GPU_BENCH_DTYPES (cm4j's dtypes, fp16,bf16,fp32; the ops list is the
# first's), CM4J_CUDA_ARCH (90), CM4J_BUILD_DIR (build/device), CM4J_VERIFY_BUDGET_S
# (device-check's budget, 300), CM4J_GOLDEN. Logs and the table go to build/gpu-bench/; with
# $OUT set (the device tool, which brings back at most 8 files) only the table and one
# archive of the logs go there: $OUT/gpu-bench-table.md, $OUT/gpu-bench-logs.tgz (the archive
# is refreshed after each stage, so a call cut short by its time limit still returns the logs
# of the stages it finished).
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
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
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

# The logs so far into $OUT (the device tool returns what is there even after a timeout).
# Written beside it and renamed, so a kill mid-write leaves the previous archive whole.
publish() {
  [ -z "${OUT:-}" ] || { tar czf "$OUT/.gpu-bench-logs.tgz.tmp" -C "$LOGS" . &&
    mv -f "$OUT/.gpu-bench-logs.tgz.tmp" "$OUT/gpu-bench-logs.tgz"; }
}
trap publish EXIT
trap 'exit 143' TERM INT  # a time limit's kill still leaves the logs (EXIT's publish)

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

publish

# --- 2. cm4j -------------------------------------------------------------------------------
DTYPES=${GPU_BENCH_DTYPES:-fp16,bf16,fp32}
OPS_BATCH=${BATCHES##*,}
# bench LOG TITLE [VAR=VALUE ...] -- [bench_cuda arguments]: one bench_cuda run, its log kept
bench() {
  local log=$1 title=$2
  shift 2
  local vars=()
  while [ "$1" != -- ]; do vars+=("$1"); shift; done
  shift
  echo "== bench_cuda, $title"
  env "${vars[@]}" "$BUILD/bench_cuda" --batch "$BATCHES" "$@" 2>&1 | tee "$LOGS/$log" | grep -v '^RESULT'
  publish
}
bench bench_cuda.log "default kernels" CM4J_CUDA_GRAPHS=off -- \
  --dtype "$DTYPES" --generate --ops 10 --ops-batch "$OPS_BATCH"
: > "$LOGS/bench_cuda_graphs.log"
[ "$QUICK" = 1 ] || bench bench_cuda_graphs.log "default kernels with CUDA graphs" CM4J_CUDA_GRAPHS=on -- \
  --dtype "$DTYPES" --generate
# The candidate set (fp16/bf16 in the NHWC mode; CUDA graphs on), its convs chosen by
# measurement in the warm-up pass; then, in the first half-precision dtype, the same with
# every group norm a kernel of its own, to time the norm fused into the conv against it.
TUNING=(CM4J_CUDA_KERNELS=candidate CM4J_TUNING=full CM4J_TUNING_CACHE="$LOGS/tuning")
bench bench_cuda_candidate.log "candidate kernels (CM4J_CUDA_KERNELS=candidate, CM4J_TUNING=full)" \
  "${TUNING[@]}" -- --dtype "$DTYPES" --generate --ops 10 --ops-batch "$OPS_BATCH"
HALF=$(tr , '\n' <<< "$DTYPES" | grep -E '^(fp16|bf16)$' | head -n 1)
: > "$LOGS/bench_cuda_unfused.log"
[ -z "$HALF" ] || bench bench_cuda_unfused.log "candidate kernels, group norms unfused (CM4J_CUDA_NORM_FUSION=off)" \
  "${TUNING[@]}" CM4J_CUDA_NORM_FUSION=off -- --dtype "$HALF"
# The wgmma conv as a further candidate (its choices go to a tuning file of their own), on a
# card of compute capability 9.0 only: elsewhere the switch changes nothing.
: > "$LOGS/bench_cuda_wgmma.log"
CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2> /dev/null | head -n 1 | tr -d ' ')
if [ -n "$HALF" ] && [ "$CAP" = 9.0 ]; then
  bench bench_cuda_wgmma.log "candidate kernels with the wgmma conv (CM4J_CUDA_WGMMA=on)" \
    "${TUNING[@]}" CM4J_CUDA_WGMMA=on -- --dtype "$HALF" --generate
fi
# Programmatic dependent launch in the candidate set's graphs, on the candidate run's kernel
# choices (read back, not measured again): the column shows what the launch gaps cost.
: > "$LOGS/bench_cuda_pdl.log"
if [ -n "$HALF" ] && [ "${CAP%%.*}" -ge 9 ] 2> /dev/null; then
  bench bench_cuda_pdl.log "candidate kernels, programmatic dependent launch (CM4J_CUDA_PDL=on)" \
    CM4J_CUDA_KERNELS=candidate CM4J_TUNING=cached CM4J_TUNING_CACHE="$LOGS/tuning" CM4J_CUDA_PDL=on \
    -- --dtype "$HALF"
fi

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
  echo "default: the verified kernels, graphs: with CUDA graphs, candidate: CM4J_CUDA_KERNELS=candidate"
  echo "(tuned, CUDA graphs), wgmma: the same with CM4J_CUDA_WGMMA=on, pdl: the candidate set with"
  echo "CM4J_CUDA_PDL=on, unfused: the candidate set with CM4J_CUDA_NORM_FUSION=off; best: the"
  echo "fastest of default, graphs, candidate, wgmma and pdl, which img/s, the step times and the"
  echo "ratios take."
  echo "device-check: $([ "$VERIFIED" = 0 ] && echo passed || { [ "$VERIFIED" = skipped ] && echo 'not run (--no-verify)' || echo "FAILED (rc=$VERIFIED, see $LOGS/device-check/summary.md)"; })"
  echo
  awk '
    # RESULT forward DTYPE batch=B ms=M ...; RESULT generate DTYPE steps=S batch=B ms=M ...
    # set: which run of bench_cuda the file holds
    FNR == 1 { set = FILENAME ~ /_graphs/ ? "graphs" : FILENAME ~ /_candidate/ ? "candidate" : FILENAME ~ /_unfused/ ? "unfused" : FILENAME ~ /_wgmma/ ? "wgmma" : FILENAME ~ /_pdl/ ? "pdl" : "default" }
    /^RESULT forward / { split($4, b, "="); split($5, m, "="); fwd[set, $3, b[2]] = m[2]; key[$3, b[2]] = 1 }
    /^RESULT generate / { split($4, s, "="); split($5, b, "="); split($6, m, "="); gen[set, $3, b[2], s[2]] = m[2] }
    /^gpu_baseline dtype=/ {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      base[f["dtype"], f["mode"], f["batch"]] = f["ms"]
    }
    function cell(v) { return v == "" ? "" : sprintf("%.2f", v) }
    function ratio(d, c) { return (d == "" || c == "" || c <= 0) ? "" : sprintf("%.2fx", d / c) }
    END {
      print "| dtype | batch | default ms | graphs ms | candidate ms | wgmma ms | pdl ms | unfused ms | best | img/s | 1-step ms | 2-step ms | diffusers eager ms | compile ms | eager / cm4j | compile / cm4j |"
      print "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
      n = split("fp16 bf16 fp32", dts, " ")
      nsets = split("default graphs candidate wgmma pdl", sets, " ")
      for (d = 1; d <= n; d++) for (bb = 1; bb <= 4096; bb++) {
        if (!((dts[d], bb) in key)) continue
        c = ""; which = ""
        for (i = 1; i <= nsets; i++) {
          v = fwd[sets[i], dts[d], bb]
          if (v != "" && (c == "" || v + 0 < c + 0)) { c = v; which = sets[i] }
        }
        e = base[dts[d], "eager", bb]; k = base[dts[d], "compile", bb]
        if (c == "") { c = 0; which = "-" }  # only the unfused run measured this batch
        printf "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", dts[d], bb,
          cell(fwd["default", dts[d], bb]), cell(fwd["graphs", dts[d], bb]),
          cell(fwd["candidate", dts[d], bb]), cell(fwd["wgmma", dts[d], bb]),
          cell(fwd["pdl", dts[d], bb]), cell(fwd["unfused", dts[d], bb]), which, (c > 0 ? sprintf("%.0f", 1e3 * bb / c) : ""),
          cell(gen[which, dts[d], bb, 1]), cell(gen[which, dts[d], bb, 2]), cell(e), cell(k), ratio(e, c), ratio(k, c)
      }
    }' "$LOGS/bench_cuda.log" "$LOGS/bench_cuda_graphs.log" "$LOGS/bench_cuda_candidate.log" \
    "$LOGS/bench_cuda_wgmma.log" "$LOGS/bench_cuda_pdl.log" "$LOGS/bench_cuda_unfused.log" \
    "$LOGS/baseline.log"
  OPS_DTYPE=${DTYPES%%,*}
  for set in default candidate; do
    log=bench_cuda.log
    [ "$set" = default ] || log=bench_cuda_$set.log
    echo
    echo "Ten slowest ops, $set kernels, $OPS_DTYPE, batch $OPS_BATCH (each op waited for):"
    grep -E "^RESULT op $OPS_DTYPE " "$LOGS/$log" |
      sed -E 's/^RESULT op [a-z0-9]+ batch=[0-9]+ rank=([0-9]+) ms=([0-9.]+) share=([0-9.]+) name=/  \1. \2 ms (\3%) /'
  done
  grep -E '^gpu_baseline skipped' "$LOGS/baseline.log" | sed 's/^gpu_baseline skipped /  diffusers not run: /'
} | tee "$LOGS/table.md"
if [ -n "${OUT:-}" ]; then
  cp "$LOGS/table.md" "$OUT/gpu-bench-table.md"
  publish
fi
[ "$VERIFIED" = 0 ] || [ "$VERIFIED" = skipped ]

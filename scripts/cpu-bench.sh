#!/usr/bin/env bash
# cm4j's CPU UNet against the PyTorch baseline (diffusers' UNet2DModel on Debian's PyTorch,
# set up by scripts/cpu-baseline-setup.sh), side by side in one run on one machine:
# for each (dtype, threads, batch) it runs native/bench/bench_unet and then
# scripts/cpu_baseline.py, both on the real imagenet64 architecture with random weights and
# the same inputs, each a warm-up pass and the best of --iters passes, and ends with one
# table: s/image of both, the speed-up (PyTorch s/image / cm4j s/image), images/s of both,
# and the issue's targets (fp32 batch 4 >= 1.25x, fp32 batch 1 >= 1.5x, bf16 batch 4 >= 2x).
# --rounds N alternates the two N times per configuration (fresh processes each time) and
# keeps each side's best: on a shared host whose cores slow down now and then, one round
# can catch either side in a slow spell; the table also shows the range of the per-round
# speed-ups.
#   scripts/cpu-bench.sh [--quick] [--iters N] [--rounds N] [--dtype fp32,bf16]
#                        [--threads 1,2] [--batch 1,4] [--config FILE] [--no-build]
# Defaults: every combination of fp32,bf16 x 1,2 threads x batch 1,4, 3 iterations
# (about 7 minutes on the 2-core development machine); --quick: 2 threads only, 1 iteration
# (about 2 minutes). Run it on an otherwise idle machine: other work inflates both sides
# unevenly. Logs and the table (table.md) go to build/cpu-bench/<UTC time>/.
# Environment: CM4J_BUILD_DIR (build/native), CM4J_BASELINE_PYTHON (/usr/bin/python3).
set -u
set -o pipefail

T0=$(date +%s)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
BUILD=${CM4J_BUILD_DIR:-build/native}
PY=${CM4J_BASELINE_PYTHON:-/usr/bin/python3}
CONFIG="$ROOT/../shared/golden/imagenet64/config.json"
ITERS=3 ROUNDS=1 DTYPES=fp32,bf16 THREADS=1,2 BATCHES=1,4 BUILD_IT=1

die() { echo "cpu-bench: $*" >&2; exit 2; }
need() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case $1 in
    --quick) ITERS=1 THREADS=2 ;;
    --iters) need "$@"; ITERS=$2; shift ;;
    --rounds) need "$@"; ROUNDS=$2; shift ;;
    --dtype) need "$@"; DTYPES=$2; shift ;;
    --threads) need "$@"; THREADS=$2; shift ;;
    --batch) need "$@"; BATCHES=$2; shift ;;
    --config) need "$@"; CONFIG=$2; shift ;;
    --no-build) BUILD_IT=0 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
[[ $ITERS =~ ^[1-9][0-9]*$ ]] || die "--iters must be a positive integer, found '$ITERS'"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, found '$ROUNDS'"
for list in "$THREADS" "$BATCHES"; do
  [[ $list =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "expected a list like 1,4, found '$list'"
done
[[ $DTYPES =~ ^(fp32|bf16)(,(fp32|bf16))*$ ]] || die "--dtype takes fp32, bf16 or fp32,bf16, found '$DTYPES'"
[ -f "$CONFIG" ] || die "no config at $CONFIG (give --config FILE)"
CONFIG=$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")

# The baseline must import before anything is built or timed.
export PYTHONPATH="$ROOT/.baseline${PYTHONPATH:+:$PYTHONPATH}"
TORCH=$("$PY" -c 'import sys; sys.path.insert(0, "scripts")
import torch, diffusers, cpu_baseline
print("PyTorch", torch.__version__, "+ diffusers", diffusers.__version__, "+", cpu_baseline.blas_library())' 2> /dev/null) ||
  die "the PyTorch baseline does not import with $PY: run scripts/cpu-baseline-setup.sh first"
[[ $TORCH == *"reference BLAS"* ]] &&
  echo "cpu-bench: warning: PyTorch runs on Debian's reference BLAS; scripts/cpu-baseline-setup.sh installs OpenBLAS" >&2

BENCH="$BUILD/bench_unet"
if [ "$BUILD_IT" = 1 ]; then
  if [ ! -f "$BUILD/build.ninja" ] && [ ! -f "$BUILD/Makefile" ]; then
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null || die "cmake configure failed"
  fi
  cmake --build "$BUILD" --target bench_unet -j2 > /dev/null || die "building bench_unet failed"
fi
[ -x "$BENCH" ] || die "no $BENCH (drop --no-build, or set CM4J_BUILD_DIR)"

LOGS="$ROOT/build/cpu-bench/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$LOGS" || die "cannot create $LOGS"
CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
NCPU=$(nproc)
ISA=$(grep -m 1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|avx512f|avx512_bf16|amx_tile' | paste -sd, -)
echo "cpu-bench: $CPU ($ISA), $NCPU CPUs; cm4j $(git rev-parse --short HEAD 2> /dev/null) vs $TORCH"
echo "cpu-bench: $ROUNDS round(s) of $ITERS iteration(s) after one warm-up; logs in ${LOGS#"$ROOT"/}"
LOAD=$(cut -d' ' -f1 /proc/loadavg)
awk -v l="$LOAD" 'BEGIN { exit !(l > 0.5) }' &&
  echo "cpu-bench: warning: load average $LOAD before starting: other work inflates the times" \
       "(PyTorch's OpenMP threads most)" >&2

# target DTYPE BATCH: the issue's minimum speed-up for this row, empty where it sets none.
target() {
  case "$1/$2" in
    fp32/1) echo 1.5 ;;
    fp32/4) echo 1.25 ;;
    bf16/4) echo 2 ;;
  esac
}

ROWS=()
FAILED=0
IFS=, read -r -a DT <<< "$DTYPES"
IFS=, read -r -a TH <<< "$THREADS"
IFS=, read -r -a BA <<< "$BATCHES"
for d in "${DT[@]}"; do for t in "${TH[@]}"; do for b in "${BA[@]}"; do
  # Ours, then the baseline, for this one configuration; ROUNDS times. Each side's best.
  ours="" torch="" ratios=""
  for r in $(seq "$ROUNDS"); do
    tag="$d-t$t-b$b-r$r"
    o="" p=""
    if "$BENCH" --config "$CONFIG" --dtype "$d" --threads "$t" --batch "$b" --iters "$ITERS" \
         > "$LOGS/ours-$tag.log" 2>&1; then
      o=$(awk -v d="$d" -v b="$b" '$1 == d && $3 == b { print $5, $6 }' "$LOGS/ours-$tag.log")
    fi
    if "$PY" scripts/cpu_baseline.py --config "$CONFIG" --dtype "$d" --threads "$t" --batch "$b" \
         --iters "$ITERS" > "$LOGS/pytorch-$tag.log" 2>&1; then
      p=$(awk '$1 == "cpu_baseline" { for (i = 2; i <= NF; ++i) { split($i, kv, "="); v[kv[1]] = kv[2] }
                                      print v["s_image"], v["images_s"] }' "$LOGS/pytorch-$tag.log")
    fi
    [ -n "$o" ] || { FAILED=1; echo "cpu-bench: cm4j failed at $tag:"; tail -n 3 "$LOGS/ours-$tag.log"; }
    [ -n "$p" ] || { FAILED=1; echo "cpu-bench: PyTorch failed at $tag:"; tail -n 3 "$LOGS/pytorch-$tag.log"; }
    [ -n "$o" ] && { [ -z "$ours" ] || awk -v a="${o%% *}" -v b="${ours%% *}" 'BEGIN { exit !(a < b) }'; } && ours=$o
    [ -n "$p" ] && { [ -z "$torch" ] || awk -v a="${p%% *}" -v b="${torch%% *}" 'BEGIN { exit !(a < b) }'; } && torch=$p
    [ -n "$o" ] && [ -n "$p" ] && ratios="$ratios $(awk -v a="${o%% *}" -v b="${p%% *}" 'BEGIN { print b / a }')"
  done
  range=$(echo "$ratios" | awk 'NF { lo = hi = $1; for (i = 2; i <= NF; ++i) { if ($i < lo) lo = $i; if ($i > hi) hi = $i }
                                     printf "%.2f-%.2fx", lo, hi }')
  # Fields: dtype threads batch ours_s_image ours_images_s torch_s_image torch_images_s range [target]
  row=$(echo "$d $t $b ${ours:-- -} ${torch:-- -} ${range:--} $(target "$d" "$b")" | awk '
    function num(x) { return x == "-" ? "-" : sprintf("%.3f", x) }
    {
      ok = $4 != "-" && $6 != "-"
      ratio = ok ? sprintf("%.2fx", $6 / $4) : "-"
      goal = NF > 8 ? $9 "x" (ok ? ($6 / $4 >= $9 ? ": met" : ": missed") : "") : ""
      printf "| %s | %s | %s | %s | %s | %s | %s | %s / %s | %s |\n", $1, $2, $3, num($4), num($6),
             ratio, $8, num($5), num($7), goal
    }')
  ROWS+=("$row")
  echo "$(( $(date +%s) - T0 ))s $row"
done; done; done

{
  echo
  echo "$CPU ($ISA; $NCPU CPUs), $(date -u '+%Y-%m-%d %H:%M UTC'); cm4j $(git rev-parse --short HEAD 2> /dev/null)" \
       "(bench_unet) vs $TORCH (scripts/cpu_baseline.py); $ROUNDS alternating round(s) of" \
       "$ITERS iteration(s) after one warm-up, each side's best pass; $(( $(date +%s) - T0 )) s in all;" \
       "load average $LOAD at the start"
  echo
  echo "| dtype | threads | batch | cm4j s/image | PyTorch s/image | speed-up | per round | images/s cm4j / PyTorch | target |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
  printf '%s\n' "${ROWS[@]}"
} | tee "$LOGS/table.md"
exit $FAILED

#!/usr/bin/env bash
# cm4j's CPU UNet against the PyTorch baseline (diffusers' UNet2DModel on Debian's PyTorch,
# set up by scripts/cpu-baseline-setup.sh) and ONNX Runtime Java, side by side in one run on
# one machine: for each (dtype, threads, batch) it runs native/bench/bench_unet, then
# scripts/cpu_baseline.py, then (fp32 only) io.cm4j.bench.OrtBench of java-bench: ONNX
# Runtime's Java API (--threads intra-op threads, all graph optimizations) on the same
# diffusers model exported by scripts/onnx_export.py (into build/onnx/, again whenever the
# config changes). All run the real imagenet64 architecture with random weights and the same
# inputs, each a warm-up pass and the best of --iters passes, and it ends with one table:
# s/image of each, the speed-ups (other s/image / cm4j s/image), ONNX Runtime's load time,
# images/s, and the issues' targets (against PyTorch: fp32 batch 4 >= 1.25x, fp32 batch 1 >=
# 1.5x, bf16 batch 4 >= 2x; against ONNX Runtime: fp32 batch 1 and 4 >= 1.3x).
# --rounds N alternates the three N times per configuration (fresh processes each time) and
# keeps each side's best: on a shared host whose cores slow down now and then, one round
# can catch any side in a slow spell; the table also shows the range of the per-round
# speed-ups.
#   scripts/cpu-bench.sh [--quick] [--iters N] [--rounds N] [--dtype fp32,bf16]
#                        [--threads 1,2] [--batch 1,4] [--config FILE] [--no-ort] [--no-build]
# Defaults: every combination of fp32,bf16 x 1,2 threads x batch 1,4, 3 iterations
# (about 7 minutes on the 2-core development machine, plus ONNX Runtime's 20 s load per fp32
# run and a 4-minute export the first time); --quick: 2 threads only, 1 iteration. Run it on
# an otherwise idle machine: other work inflates the sides unevenly. Logs and the table
# (table.md) go to build/cpu-bench/<UTC time>/.
# Environment: CM4J_BUILD_DIR (build/native), CM4J_BASELINE_PYTHON (/usr/bin/python3).
set -u
set -o pipefail

T0=$(date +%s)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
BUILD=${CM4J_BUILD_DIR:-build/native}
PY=${CM4J_BASELINE_PYTHON:-/usr/bin/python3}
CONFIG="$ROOT/../shared/golden/imagenet64/config.json"
ITERS=3 ROUNDS=1 DTYPES=fp32,bf16 THREADS=1,2 BATCHES=1,4 BUILD_IT=1 ORT=1

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
    --no-ort) ORT=0 ;;
    --no-build) BUILD_IT=0 ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

# ONNX Runtime runs the fp32 rows only: the model is exported in fp32, and ONNX Runtime's CPU
# provider has no bf16 convolutions.
[[ ,$DTYPES, == *,fp32,* ]] || ORT=0
ORT_JAR=java-bench/target/benchmarks.jar
if [ "$ORT" = 1 ] && [ "$BUILD_IT" = 1 ]; then
  mvn -B -ntp -q -pl java-bench -am package -DskipTests > /dev/null 2>&1 ||
    die "building $ORT_JAR failed (mvn -B -ntp -pl java-bench -am package -DskipTests says why)"
fi
[ "$ORT" = 0 ] || [ -f "$ORT_JAR" ] || die "no $ORT_JAR (drop --no-build, or give --no-ort)"

LOGS="$ROOT/build/cpu-bench/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$LOGS" || die "cannot create $LOGS"
CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
NCPU=$(nproc)
ISA=$(grep -m 1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|avx512f|avx512_bf16|amx_tile' | paste -sd, -)
echo "cpu-bench: $CPU ($ISA), $NCPU CPUs; cm4j $(git rev-parse --short HEAD 2> /dev/null) vs $TORCH"
echo "cpu-bench: $ROUNDS round(s) of $ITERS iteration(s) after one warm-up; logs in ${LOGS#"$ROOT"/}"
# The exported model, named after the config's folder; exported again when the config differs
# from the copy beside it.
ONNX="$ROOT/build/onnx/$(basename "$(dirname "$CONFIG")").onnx"
if [ "$ORT" = 1 ] && ! cmp -s "$CONFIG" "${ONNX%.onnx}.config.json"; then
  echo "cpu-bench: exporting the model to ${ONNX#"$ROOT"/} (torch.onnx.export, a few minutes)"
  "$PY" scripts/onnx_export.py --config "$CONFIG" --out "$ONNX" > "$LOGS/onnx-export.log" 2>&1 ||
    { tail -n 5 "$LOGS/onnx-export.log" >&2; die "exporting to ONNX failed (log: $LOGS/onnx-export.log)"; }
fi
LOAD=$(cut -d' ' -f1 /proc/loadavg)
awk -v l="$LOAD" 'BEGIN { exit !(l > 0.5) }' &&
  echo "cpu-bench: warning: load average $LOAD before starting: other work inflates the times" \
       "(PyTorch's OpenMP threads most)" >&2

# target DTYPE BATCH: the issues' minimum speed-ups for this row against PyTorch and against
# ONNX Runtime, "-" where they set none.
target() {
  case "$1/$2" in
    fp32/1) echo 1.5 1.3 ;;
    fp32/4) echo 1.25 1.3 ;;
    bf16/4) echo 2 - ;;
    *) echo - - ;;
  esac
}

# fields FILE TAG KEY...: the values of KEY=... on FILE's line starting with TAG, space-separated.
fields() {
  local file=$1 tag=$2
  shift 2
  awk -v tag="$tag" -v keys="$*" '$1 == tag {
      for (i = 2; i <= NF; ++i) { split($i, kv, "="); v[kv[1]] = kv[2] }
      n = split(keys, k, " "); line = v[k[1]]; for (i = 2; i <= n; ++i) line = line " " v[k[i]]
      print line }' "$file"
}

# keep BEST NEW: NEW when BEST is empty or NEW's first field (s/image) is smaller, else BEST.
keep() {
  if [ -n "$2" ] && { [ -z "$1" ] || awk -v a="${2%% *}" -v b="${1%% *}" 'BEGIN { exit !(a < b) }'; }; then
    echo "$2"
  else
    echo "$1"
  fi
}

# range RATIOS: "lo-hix" of a list of per-round speed-ups, "-" when empty.
range() {
  echo "$1" | awk 'NF { lo = hi = $1; for (i = 2; i <= NF; ++i) { if ($i < lo) lo = $i; if ($i > hi) hi = $i }
                        printf "%.2f-%.2fx", lo, hi; exit } { print "-" }'
}

ROWS=()
FAILED=0
ORT_VERSION=""
IFS=, read -r -a DT <<< "$DTYPES"
IFS=, read -r -a TH <<< "$THREADS"
IFS=, read -r -a BA <<< "$BATCHES"
for d in "${DT[@]}"; do for t in "${TH[@]}"; do for b in "${BA[@]}"; do
  # Ours, then PyTorch, then ONNX Runtime, for this one configuration; ROUNDS times. Each side's best.
  ours="" torch="" ort="" ratios="" ort_ratios=""
  for r in $(seq "$ROUNDS"); do
    tag="$d-t$t-b$b-r$r"
    o="" p="" x=""
    if "$BENCH" --config "$CONFIG" --dtype "$d" --threads "$t" --batch "$b" --iters "$ITERS" \
         > "$LOGS/ours-$tag.log" 2>&1; then
      o=$(awk -v d="$d" -v b="$b" '$1 == d && $3 == b { print $5, $6 }' "$LOGS/ours-$tag.log")
    fi
    if "$PY" scripts/cpu_baseline.py --config "$CONFIG" --dtype "$d" --threads "$t" --batch "$b" \
         --iters "$ITERS" > "$LOGS/pytorch-$tag.log" 2>&1; then
      p=$(fields "$LOGS/pytorch-$tag.log" cpu_baseline s_image images_s)
    fi
    [ -n "$o" ] || { FAILED=1; echo "cpu-bench: cm4j failed at $tag:"; tail -n 3 "$LOGS/ours-$tag.log"; }
    [ -n "$p" ] || { FAILED=1; echo "cpu-bench: PyTorch failed at $tag:"; tail -n 3 "$LOGS/pytorch-$tag.log"; }
    if [ "$ORT" = 1 ] && [ "$d" = fp32 ]; then
      if java -cp "$ORT_JAR" io.cm4j.bench.OrtBench --model "$ONNX" --threads "$t" --batch "$b" \
           --iters "$ITERS" > "$LOGS/ort-$tag.log" 2>&1; then
        x=$(fields "$LOGS/ort-$tag.log" ort_bench s_image images_s load_s)
        ORT_VERSION=$(fields "$LOGS/ort-$tag.log" ort_bench version)
      fi
      [ -n "$x" ] || { FAILED=1; echo "cpu-bench: ONNX Runtime failed at $tag:"; tail -n 3 "$LOGS/ort-$tag.log"; }
    fi
    ours=$(keep "$ours" "$o") torch=$(keep "$torch" "$p") ort=$(keep "$ort" "$x")
    [ -n "$o" ] && [ -n "$p" ] && ratios="$ratios $(awk -v a="${o%% *}" -v b="${p%% *}" 'BEGIN { print b / a }')"
    [ -n "$o" ] && [ -n "$x" ] && ort_ratios="$ort_ratios $(awk -v a="${o%% *}" -v b="${x%% *}" 'BEGIN { print b / a }')"
  done
  # Fields: dtype threads batch ours_s ours_ips torch_s torch_ips range ort_s ort_ips ort_load
  #         ort_range torch_target ort_target
  row=$(echo "$d $t $b ${ours:-- -} ${torch:-- -} $(range "$ratios") ${ort:-- - -} $(range "$ort_ratios")" \
             "$(target "$d" "$b")" | awk '
    function num(x) { return x == "-" ? "-" : sprintf("%.3f", x) }
    function ratio(other) { return $4 != "-" && other != "-" ? other / $4 : "-" }
    function speedup(other) { r = ratio(other); return r == "-" ? "-" : sprintf("%.2fx", r) }
    function goal(name, other, want) {
      if (want == "-") return ""
      r = ratio(other)
      return name " " want "x" (r == "-" ? "" : r >= want ? ": met" : ": missed")
    }
    {
      g = goal("PyTorch", $6, $13); h = goal("ORT", $9, $14)
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s |\n",
             $1, $2, $3, num($4), num($6), speedup($6), $8, num($9), speedup($9), $12,
             $11 == "-" ? "-" : sprintf("%.1f", $11), num($5), num($7), num($10),
             g (g != "" && h != "" ? "; " : "") h
    }')
  ROWS+=("$row")
  echo "$(( $(date +%s) - T0 ))s $row"
done; done; done

{
  echo
  echo "$CPU ($ISA; $NCPU CPUs), $(date -u '+%Y-%m-%d %H:%M UTC'); cm4j $(git rev-parse --short HEAD 2> /dev/null)" \
       "(bench_unet) vs $TORCH (scripts/cpu_baseline.py)${ORT_VERSION:+ vs ONNX Runtime $ORT_VERSION Java}" \
       "(io.cm4j.bench.OrtBench, opset 17 export); $ROUNDS alternating round(s) of" \
       "$ITERS iteration(s) after one warm-up, each side's best pass; $(( $(date +%s) - T0 )) s in all;" \
       "load average $LOAD at the start"
  echo
  echo "| dtype | threads | batch | cm4j s/image | PyTorch s/image | vs PyTorch | per round" \
       "| ORT s/image | vs ORT | per round | ORT load s | images/s cm4j / PyTorch / ORT | target |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  printf '%s\n' "${ROWS[@]}"
} | tee "$LOGS/table.md"
exit $FAILED

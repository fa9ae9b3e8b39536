#!/usr/bin/env bash
# Builds the CUDA backend (kernels/*.cu, native/src/cuda/) and its GPU tests with g++ for the
# CPU emulator in this folder, links them with a CPU-only cm4j, and runs them: every op
# against the CPU backend (small and odd shapes; the real sizes take minutes emulated) and
# the tiny model's golden case through the engine on device "cuda".
#   kernels/dev/emu/run.sh [BUILD_DIR]      (default /tmp/cm4j-emu)
# Then the same with CM4J_CUDA_KERNELS=candidate (fp16/bf16: the NHWC mode).
# CM4J_TEST_FILTER overrides the op cases (see test_cuda_ops.cpp), EMU_GOLDEN_DTYPES the
# golden runs ("fp32 fp16 bf16"; empty: none), EMU_CANDIDATE_DTYPES the candidate golden
# runs ("fp16 bf16"), EMU_GRAPHS_DTYPES the CUDA graphs runs ("fp32 fp16"; test_cuda_graphs),
# EMU_TUNING_DTYPES the measured conv choice's runs ("fp16 bf16"; test_cuda_tuning, and its
# tiny-model and missing-cuBLAS runs in fp16 unless empty),
# EMU_DEFAULT_OPS=0 / EMU_CANDIDATE_OPS=0 skip the default / candidate set's op cases,
# EMU_FUSION=0 the group norms fused into the NHWC mode's convs (test_norm_fusion: tiny and
# lsun_mini, fused against unfused, fp16 and bf16), EMU_WGMMA_FILTER the wgmma conv's cases
# (test_cuda_wgmma --filter; default "lsun,tails", the small ones; empty: none),
# EMU_JOBS the parallelism. About 35 minutes on 2 cores, most of it the six tiny-model
# golden runs. The candidate set's tensor-core conv (conv2d_nhwc_mma.cu) at imagenet64's
# layer shapes, about 25 minutes on a loaded 2-core machine:
#   EMU_DEFAULT_OPS=0 EMU_GOLDEN_DTYPES= EMU_CANDIDATE_DTYPES= CM4J_TEST_FILTER="res0 conv,\
#   down1 conv1,down1 short,down2 conv1,mid conv,up0 cat conv,up0 cat short,up cat+upsample,\
#   up3 cat conv,upsample conv,stride2,lsun conv1,tiny up" kernels/dev/emu/run.sh
# Its flash attention (attention_nhwc_mma.cu) at every attention shape of imagenet64 and
# lsun_mini, a few minutes once built:
#   EMU_DEFAULT_OPS=0 EMU_GOLDEN_DTYPES= EMU_GRAPHS_DTYPES= EMU_CANDIDATE_DTYPES= \
#   CM4J_TEST_FILTER=attention kernels/dev/emu/run.sh
set -eu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
B=${1:-/tmp/cm4j-emu}
JOBS=${EMU_JOBS:-2}
mkdir -p "$B/obj"

cmake -S "$ROOT" -B "$B/cpu" -G Ninja -DCM4J_CUDA=OFF -DCMAKE_BUILD_TYPE=Release > "$B/cpu-configure.log"
cmake --build "$B/cpu" -j"$JOBS" --target cm4j_static > "$B/cpu-build.log"

FLAGS=(-std=c++17 -O2 -g -Wall -Wextra -Wno-unknown-pragmas -ffp-contract=off -DCM4J_CUDA_EMULATION -DCM4J_HAVE_CUDA=1
       -DCM4J_GOLDEN_DIR="\"$ROOT/../shared/golden\""
       -I"$ROOT/kernels/dev/emu" -I"$ROOT/kernels" -I"$ROOT/native/src" -I"$ROOT/native/include")
# The backend's host code, native/src/cuda/*.cpp as CMake takes it, but the stub; the CPU
# build's library brings the tuning cache's file code (native/src/cuda/tuning_cache.cpp).
HOST=()
for src in "$ROOT"/native/src/cuda/*.cpp; do
  case "$src" in */cuda_stub.cpp | */tuning_cache.cpp) ;; *) HOST+=("$src") ;; esac
done
TESTS=(test_cuda_ops test_cuda_golden test_cuda_graphs test_cuda_tuning test_norm_fusion test_cuda_wgmma)
SOURCES=("$ROOT"/kernels/*.cu "$ROOT"/native/src/cuda/*.cu "${HOST[@]}" "$ROOT/native/tests/test_util.cpp")
for t in "${TESTS[@]}"; do SOURCES+=("$ROOT/native/tests/$t.cpp"); done
pids=()
for src in "${SOURCES[@]}"; do
  obj="$B/obj/$(basename "$src").o"
  g++ -x c++ "${FLAGS[@]}" -c "$src" -o "$obj" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$JOBS" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done

BACKEND=()
for src in "$ROOT"/kernels/*.cu "$ROOT"/native/src/cuda/*.cu "${HOST[@]}"; do
  BACKEND+=("$B/obj/$(basename "$src").o")
done
for t in "${TESTS[@]}"; do
  g++ -o "$B/$t" "$B/obj/$t.cpp.o" "$B/obj/test_util.cpp.o" "${BACKEND[@]}" "$B/cpu/libcm4j_static.a" -lpthread -ldl
done
# cuBLAS's stand-in (cublas.cpp), which test_cuda_tuning loads as the conv tuner's vendor candidate.
g++ "${FLAGS[@]}" -shared -fPIC "$ROOT/kernels/dev/emu/cublas.cpp" -o "$B/libcublas_emu.so"

rc=0
FILTER=${CM4J_TEST_FILTER:-odd,tiny,errors,timestep,embedding_lookup,linear,b3 c5,scheduler_step,scale_model_input,edit_step,time_embedding}
if [ "${EMU_DEFAULT_OPS:-1}" != 0 ]; then
  CM4J_TEST_FILTER=$FILTER "$B/test_cuda_ops" || rc=1
fi
if [ "${EMU_CANDIDATE_OPS:-1}" != 0 ]; then
  CM4J_CUDA_KERNELS=candidate CM4J_TEST_FILTER=$FILTER "$B/test_cuda_ops" || rc=1
fi
for dtype in ${EMU_GOLDEN_DTYPES-fp32 fp16 bf16}; do
  "$B/test_cuda_golden" --models=tiny --dtype=$dtype || rc=1
done
for dtype in ${EMU_GRAPHS_DTYPES-fp32 fp16}; do
  "$B/test_cuda_graphs" --dtype=$dtype || rc=1
done
for dtype in ${EMU_CANDIDATE_DTYPES-fp16 bf16}; do
  CM4J_CUDA_KERNELS=candidate "$B/test_cuda_golden" --models=tiny --dtype=$dtype || rc=1
done
if [ "${EMU_FUSION:-1}" != 0 ]; then
  "$B/test_norm_fusion" || rc=1
fi
if [ -n "${EMU_WGMMA_FILTER-lsun,tails}" ]; then
  "$B/test_cuda_wgmma" --filter="${EMU_WGMMA_FILTER-lsun,tails}" || rc=1
fi
for dtype in ${EMU_TUNING_DTYPES-fp16 bf16}; do
  CM4J_CUBLAS_LIB="$B/libcublas_emu.so" "$B/test_cuda_tuning" --dtype=$dtype || rc=1
done
# A tuning file choosing cuBLAS where it does not load: the rule's bits.
if [ -n "${EMU_TUNING_DTYPES-fp16}" ]; then
  CM4J_CUBLAS_LIB="$B/no-such-libcublas.so" "$B/test_cuda_tuning" --cublas-missing || rc=1
fi
# The tiny model through the engine, with CUDA graphs: without the cuBLAS stand-in, which runs
# at call time where a device's stream capture would record it.
if [ -n "${EMU_TUNING_DTYPES-fp16}" ]; then "$B/test_cuda_tuning" --dtype=fp16 --golden || rc=1; fi
exit $rc

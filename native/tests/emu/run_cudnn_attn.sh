#!/usr/bin/env bash
# Runs test_cuda_cudnn_attn without a GPU: the CUDA backend under the CPU emulator
# (kernels/dev/emu) and mock_cudnn.cpp as libcudnn.so.9, so the test's cuDNN plumbing
# (descriptors, lengths, windows, buffers, layouts, the fallback and failure paths) runs
# against cuDNN's documented semantics. Not a substitute for the real cuDNN on a GPU.
#   native/tests/emu/run_cudnn_attn.sh [BUILD_DIR]      (default /tmp/cm4j-emu-cudnn)
# CM4J_TEST_FILTER picks the cases (default: the small ones; the big shapes take minutes
# emulated); EMU_JOBS the parallelism. About 5 minutes on 2 cores, most of it the build.
set -eu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
B=${1:-/tmp/cm4j-emu-cudnn}
JOBS=${EMU_JOBS:-2}
mkdir -p "$B/obj" "$B/lib" "$B/lib-core"

cmake -S "$ROOT" -B "$B/cpu" -G Ninja -DCM4J_CUDA=OFF -DCMAKE_BUILD_TYPE=Release \
  > "$B/cpu-configure.log"
cmake --build "$B/cpu" -j"$JOBS" --target cm4j_static > "$B/cpu-build.log"

FLAGS=(-std=c++17 -O2 -g -Wall -Wextra -Wno-unknown-pragmas -DCM4J_CUDA_EMULATION -DCM4J_HAVE_CUDA=1
       -DCM4J_GOLDEN_DIR="\"$ROOT/../shared/golden\""
       -I"$ROOT/kernels/dev/emu" -I"$ROOT/kernels" -I"$ROOT/native/src" -I"$ROOT/native/include")
# The backend's host code as in kernels/dev/emu/run.sh: native/src/cuda/*.cpp but the stub and
# the tuning cache (in the CPU build's library).
SOURCES=("$ROOT"/kernels/*.cu "$ROOT"/native/src/cuda/*.cu
         "$ROOT/native/tests/test_util.cpp" "$ROOT/native/tests/test_cuda_cudnn_attn.cpp")
for src in "$ROOT"/native/src/cuda/*.cpp; do
  case "$src" in */cuda_stub.cpp | */tuning_cache.cpp) ;; *) SOURCES+=("$src") ;; esac
done
pids=()
for src in "${SOURCES[@]}"; do
  g++ -x c++ "${FLAGS[@]}" -c "$src" -o "$B/obj/$(basename "$src").o" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$JOBS" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
OBJS=()
for src in "${SOURCES[@]}"; do OBJS+=("$B/obj/$(basename "$src").o"); done
g++ -o "$B/test_cuda_cudnn_attn" "${OBJS[@]}" "$B/cpu/libcm4j_static.a" -lpthread -ldl
g++ -std=c++17 -O2 -Wall -Wextra -shared -fPIC -o "$B/lib/libcudnn.so.9" \
  "$ROOT/native/tests/emu/mock_cudnn.cpp"
# A cuDNN without the attention functions (no libcudnn_adv): the test must skip.
g++ -std=c++17 -O2 -shared -fPIC -DMOCK_CORE_ONLY -o "$B/lib-core/libcudnn.so.9" \
  "$ROOT/native/tests/emu/mock_cudnn.cpp"

T="$B/test_cuda_cudnn_attn"
export CM4J_TEST_FILTER=${CM4J_TEST_FILTER:-lsun_mini,tiny,imagenet64 8x8+mid b1}
rc=0
expect() {  # expect RC NAME CMD...: runs CMD, which must exit with RC
  local want=$1 name=$2; shift 2
  local got=0
  "$@" > "$B/$name.log" 2>&1 || got=$?
  tail -n 3 "$B/$name.log" | sed 's/^/   | /'
  if [ "$got" -eq "$want" ]; then
    echo "== $name: ok (exit $got)"
  else
    echo "== $name: FAIL (exit $got, want $want)"
    rc=1
  fi
}
expect 0 mock env CM4J_CUDNN_LIB="$B/lib/libcudnn.so.9" "$T"
LIB="$B/lib/libcudnn.so.9"
expect 0 fma-refused env CM4J_CUDNN_LIB="$LIB" MOCK_REJECT_FMA=1 CM4J_TEST_FILTER=2x2 "$T"
expect 1 forward-fails env CM4J_CUDNN_LIB="$LIB" MOCK_FAIL_FORWARD=1 CM4J_TEST_FILTER=2x2 "$T"
expect 77 no-attention env CM4J_CUDNN_LIB="$B/lib-core/libcudnn.so.9" "$T"
expect 77 no-cudnn env CM4J_CUDNN_LIB=/nonexistent/libcudnn.so.9 LD_LIBRARY_PATH=/nonexistent "$T"
exit $rc

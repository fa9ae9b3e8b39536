// A block-wide sum for the group-norm kernels' statistics (group_norm.cu, group_norm_nhwc.cu),
// and which block of several finishes last, for the reductions across blocks done in the
// same launch (group_norm_nhwc.cu's maps, split-K in conv2d_nhwc_mma_block.cuh).
#pragma once

#include <cuda_runtime.h>

namespace cm4j {
namespace kernels {

// Sum over a block of THREADS threads (a multiple of 32, at most 1024); every thread gets the
// result, in the same order whatever the data. `scratch`: THREADS / 32 floats of shared
// memory, free for the call.
template <int THREADS>
__device__ inline float block_sum(float v, float* scratch) {
  static_assert(THREADS % 32 == 0 && THREADS <= 1024, "whole warps, at most 32 of them");
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < THREADS / 32 ? scratch[lane] : 0.0f;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Whether this block is the last of `arrivals` blocks to count themselves on the counter
// that counter() points to (the CUDA programming guide's threadfence reduction), with every
// write the other blocks made before they counted visible to this block's loads through L2
// (__ldcg: another SM's writes may be stale in this one's L1). Every thread of the block
// calls it (two barriers) and gets the same answer; counters stay zero at rest (atomicInc
// wraps at the last arrival). A fence orders its own thread's writes only, so the block's
// threads first meet at a barrier, and thread 0, which counts, fences after it: its fence
// then covers what every thread wrote before the barrier. (Each thread fencing for itself
// before thread 0 counts, with no barrier between, lets the count overtake a slower warp's
// stores.) counter() runs in thread 0 after the barrier: its address is not held across it
// (4 registers in the mma conv).
template <class Counter>
__device__ __forceinline__ bool last_to_arrive(Counter counter, unsigned arrivals) {
  __syncthreads();  // every thread's writes, before thread 0's fence
  bool last = false;
  if (threadIdx.x == 0) {
    __threadfence();  // the block's writes visible on the whole card before the count
    last = atomicInc(counter(), arrivals - 1) == arrivals - 1;
  }
  if (!__syncthreads_or(last)) return false;
  __threadfence();  // the others' writes, fenced before their counts, seen after ours
  return true;
}

}  // namespace kernels
}  // namespace cm4j

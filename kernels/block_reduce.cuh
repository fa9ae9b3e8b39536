// A block-wide sum for the group-norm kernels' statistics (group_norm.cu, group_norm_nhwc.cu).
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

}  // namespace kernels
}  // namespace cm4j

// Group normalisation over NCHW fp32 with fp32 two-pass statistics, fused with the
// time-embedding scale/shift and SiLU:
//   y = (x - mean) / sqrt(var + eps) * gamma + beta;  y = y * (1 + scale) + shift;  silu(y)
#pragma once

#include <cuda_runtime.h>

// Resource ceilings, per thread and per block, for every template instance on sm_80 and
// sm_90 (kernels/dev/ptxas-check.sh holds ptxas to them, and to no spills):
// ptxas budget: group_norm_kernel 32 registers, 64 bytes shared

namespace cm4j {
namespace kernels {

struct GroupNormParams {
  int batch = 1, channels = 0, hw = 0, groups = 32;
  float eps = 1e-5f;
  bool silu = false;
  // The input is cat(x, x2) along channels when x2 is set (the up path's cat(h, skip),
  // never copied): channels 0..c1 from x, c1..C from x2. A group may straddle the seam.
  const float* x = nullptr;      // [B, C, HW], or [B, c1, HW] with x2
  const float* x2 = nullptr;     // [B, C - c1, HW] or null
  int c1 = 0;                    // channels of x when x2 is set
  const float* gamma = nullptr;  // [C] or null (1)
  const float* beta = nullptr;   // [C] or null (0)
  const float* scale = nullptr;  // [B, C] with row stride scale_stride, or null
  const float* shift = nullptr;  // same, or null
  int scale_stride = 0;
  float* y = nullptr;            // [B, C, HW]; may alias x when x2 is null
};

cudaError_t group_norm_forward(const GroupNormParams& p, cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

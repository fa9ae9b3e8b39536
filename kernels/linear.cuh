// Fully connected layer for the small time-embedding path (M = batch rows):
//   y[m, n] = act_out(sum_k act_in(x[m, k]) * w[n, k] + bias[n]) + add[m, n]
// with act_* = SiLU when enabled. w in torch nn.Linear layout [N, K].
#pragma once

#include <cuda_runtime.h>

// Resource ceilings, per thread and per block, for every template instance on sm_80 and
// sm_90 (kernels/dev/ptxas-check.sh holds ptxas to them, and to no spills):
// ptxas budget: linear_kernel 32 registers, 0 bytes shared

namespace cm4j {
namespace kernels {

struct LinearParams {
  int m = 0, n = 0, k = 0;
  bool silu_input = false;
  bool silu_output = false;
  const float* x = nullptr;     // [M, K]
  const float* w = nullptr;     // [N, K]
  const float* bias = nullptr;  // [N] or null
  const float* add = nullptr;   // [M, N] or null; may alias y
  float* y = nullptr;           // [M, N], not aliasing x
};

cudaError_t linear_forward(const LinearParams& p, cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

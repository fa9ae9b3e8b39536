// Fully connected layer for the small time-embedding path (M = batch rows):
//   y[m, n] = act_out(sum_k act_in(x[m, k]) * w[n, k] + bias[n]) + add[m, n]
// with act_* = SiLU when enabled. w in torch nn.Linear layout [N, K].
#pragma once

#include <cuda_runtime.h>

// Resource ceilings, per thread and per block, for every template instance on sm_80 and
// sm_90 (kernels/dev/ptxas-check.sh holds ptxas to them, and to no spills):
// ptxas budget: linear_kernel 48 registers, 0 bytes shared

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

// kOneRow: one warp per output, the form verified on a GPU. kRowTiles (the candidate set):
// one warp per output column over up to kLinearTileRows rows of x, so a weight row is read
// once per tile of rows instead of once per row (imagenet64's stacked time_emb_proj is 23M
// weights, 92 MB: at batch 256 the one-row form reads them 256 times). Each output's sum runs
// in the same order in both, so both give the same bits.
enum class LinearVariant { kOneRow, kRowTiles };
constexpr int kLinearTileRows = 8;

cudaError_t linear_forward(const LinearParams& p, cudaStream_t stream,
                           LinearVariant variant = LinearVariant::kOneRow);

}  // namespace kernels
}  // namespace cm4j

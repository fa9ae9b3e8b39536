// Multi-head softmax attention over spatial positions, channels-first:
//   qkv [B, 3C, HW] (q, k, v stacked along channels) -> out [B, C, HW]
//   out[b, h*dh + c, i] = sum_j softmax_j(scale * q_i . k_j) v[c, j]
// Softmax in fp32 with running-max subtraction (online softmax, one pass over the keys).
#pragma once

#include <cuda_runtime.h>

// Resource ceilings, per thread and per block, for every template instance on sm_80 and
// sm_90 (kernels/dev/ptxas-check.sh holds ptxas to them, and to no spills):
// ptxas budget: attention_kernel 168 registers, 32768 bytes shared

namespace cm4j {
namespace kernels {

struct AttentionParams {
  int batch = 1, channels = 0, hw = 0, heads = 1, dim_head = 0;
  float scale = 1.0f;
  const float* qkv = nullptr;  // [B, 3C, HW]
  float* out = nullptr;        // [B, C, HW], not aliasing qkv
};

// Largest dim_head the kernels support (q and the accumulator live in registers).
constexpr int kAttentionMaxDimHead = 64;

cudaError_t attention_forward(const AttentionParams& p, cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

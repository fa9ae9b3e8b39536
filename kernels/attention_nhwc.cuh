// Multi-head softmax attention over channels-last fp16/bf16 activations (the NHWC mode,
// nhwc.cuh): qkv [B, HW, 3C] as the to_qkv conv stores it (q, k, v side by side per
// position) -> out [B, HW, C]. Products, softmax and accumulation in fp32 (online softmax,
// one pass over the keys), as attention.cuh; the output is rounded once.
#pragma once

#include <cuda_runtime.h>

#include "nhwc.cuh"

// Resource ceilings, per thread and per block, for every template instance on sm_80 and
// sm_90 (kernels/dev/ptxas-check.sh holds ptxas to them, and to no spills):
// ptxas budget: attention_nhwc_kernel 168 registers, 32768 bytes shared

namespace cm4j {
namespace kernels {

struct AttentionNhwcParams {
  int batch = 1, channels = 0, hw = 0, heads = 1, dim_head = 0;
  float scale = 1.0f;
  HalfType type = HalfType::kF16;
  const void* qkv = nullptr;  // [B, HW, 3C]
  void* out = nullptr;        // [B, HW, C], not aliasing qkv
};

// Largest dim_head the kernel supports (q and the accumulator live in registers).
constexpr int kAttentionNhwcMaxDimHead = 64;

cudaError_t attention_nhwc_forward(const AttentionNhwcParams& p, cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

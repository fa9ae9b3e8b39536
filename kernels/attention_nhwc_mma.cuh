// The NHWC mode's attention (attention_nhwc.cuh: same parameters and semantics) as a
// flash-attention kernel on sm_80 tensor cores, for head dim 64 (the models'
// attention_head_dim): qkv [B, HW, 3C] -> out [B, HW, C], out = softmax(q k^T scale) v per
// head. S = Q K^T and O = P V run as mma.sync m16n8k16 with fp32 accumulation, K and V tiles
// stream through a double-buffered cp.async pipeline, and the softmax is online in fp32;
// P is rounded to the half type for its product, the output once on store. Any HW (the
// last tiles are masked). The other head dims stay on attention_nhwc_forward.
#pragma once

#include <cuda_runtime.h>

#include "attention_nhwc.cuh"

// ptxas budget: attention_nhwc_mma_kernel 168 registers, 40960 bytes shared

namespace cm4j {
namespace kernels {

// The head dim the kernel is built for.
constexpr int kAttentionNhwcMmaDimHead = 64;

// dim_head 64, channels = heads x 64, a valid type and grid, qkv and out 16-byte aligned.
bool attention_nhwc_mma_supports(const AttentionNhwcParams& p);

// Queues the attention on `stream` (sm_80+); cudaErrorInvalidValue for parameters that
// attention_nhwc_mma_supports refuses.
cudaError_t attention_nhwc_mma_forward(const AttentionNhwcParams& p, cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

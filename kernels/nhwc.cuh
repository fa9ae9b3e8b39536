// The channels-last half-precision activation mode (opt-in, CM4J_CUDA_KERNELS=candidate
// with an fp16/bf16 backend): every activation [B, C, H, W] lives in its plan buffer as
// [B, H, W, C] in fp16 or bf16, half the bytes of the fp32 NCHW the buffer is sized for.
// The kernels *_nhwc.cu read and write that storage and compute in fp32 (statistics,
// softmax, accumulation), rounding once on store. The time path (embeddings, linear
// layers, per-image bias / scale / shift) stays fp32.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace cm4j {
namespace kernels {

// The 2-byte type of the stored activations (and of the conv's weights).
enum class HalfType { kF16 = 0, kBF16 = 1 };

}  // namespace kernels
}  // namespace cm4j

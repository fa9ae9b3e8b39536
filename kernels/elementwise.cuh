// Resampling by 2 on NCHW fp32: 2x2 average pooling (the down path of ResnetDownsample
// blocks) and nearest-neighbour 2x upsampling (the up path, when not fused into a conv).
#pragma once

#include <cuda_runtime.h>

// Resource ceilings, per thread and per block, for every template instance on sm_80 and
// sm_90 (kernels/dev/ptxas-check.sh holds ptxas to them, and to no spills):
// ptxas budget: avg_pool2_kernel 40 registers, 0 bytes shared
// ptxas budget: upsample_nearest2_kernel 32 registers, 0 bytes shared

namespace cm4j {
namespace kernels {

// [B, C, H, W] -> [B, C, H/2, W/2], mean of each 2x2 window (odd edges dropped, as torch).
cudaError_t avg_pool2_forward(const float* x, float* y, int batch, int channels, int h, int w,
                              cudaStream_t stream);

// [B, C, H, W] -> [B, C, 2H, 2W].
cudaError_t upsample_nearest2_forward(const float* x, float* y, int batch, int channels, int h,
                                      int w, cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

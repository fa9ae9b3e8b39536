// Resampling by 2 over channels-last fp16/bf16 activations (the NHWC mode, nhwc.cuh), and
// the conversions between that storage and fp32 NCHW with which the backend uploads the
// model's input and downloads its output and taps.
#pragma once

#include <cuda_runtime.h>

#include "nhwc.cuh"

// Resource ceilings, per thread and per block, for every template instance on sm_80 and
// sm_90 (kernels/dev/ptxas-check.sh holds ptxas to them, and to no spills):
// ptxas budget: avg_pool2_nhwc_kernel 32 registers, 0 bytes shared
// ptxas budget: upsample_nearest2_nhwc_kernel 40 registers, 0 bytes shared
// ptxas budget: nchw_to_nhwc_kernel 32 registers, 0 bytes shared
// ptxas budget: nhwc_to_nchw_kernel 32 registers, 0 bytes shared

namespace cm4j {
namespace kernels {

// [B, H, W, C] -> [B, H/2, W/2, C], mean of each 2x2 window in fp32 (odd edges dropped).
cudaError_t avg_pool2_nhwc_forward(const void* x, void* y, HalfType type, int batch,
                                   int channels, int h, int w, cudaStream_t stream);

// [B, H, W, C] -> [B, 2H, 2W, C], nearest neighbour (a copy: no rounding).
cudaError_t upsample_nearest2_nhwc_forward(const void* x, void* y, HalfType type, int batch,
                                           int channels, int h, int w, cudaStream_t stream);

// fp32 [B, C, HW] -> `type` [B, HW, C] (rounded to nearest even), and back (exact).
cudaError_t nchw_to_nhwc(const float* x, void* y, HalfType type, int batch, int channels,
                         int hw, cudaStream_t stream);
cudaError_t nhwc_to_nchw(const void* x, float* y, HalfType type, int batch, int channels,
                         int hw, cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

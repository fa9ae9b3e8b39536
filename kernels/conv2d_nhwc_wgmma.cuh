// The NHWC mode's convolution (conv2d_nhwc.cuh: same parameters, packed weights and
// semantics) on sm_90a's warpgroup MMA: conv2d_nhwc_mma.cu's pipelined implicit GEMM (the
// same gather, cp.async pipeline, fused norm and epilogue) with 128x128 block tiles, each k16
// step one wgmma m64n128k16 per warpgroup reading both operands from shared memory, and the
// same split-K. Its pipeline is deeper: 6 stages in 97 KiB of dynamic shared memory (two
// blocks per SM), four slices in flight as copies and the previous slice's wgmmas still
// running while the next slice is gathered and published. It runs what
// conv2d_nhwc_mma_supports accepts, on a device of compute capability 9.0 only (its code is
// built for sm_90a alone). A wgmma sums in an order of its own, so its bits may differ from
// the mma kernel's; every tile and batch of it gives the same bits. Not yet run on a GPU: a
// tuning candidate only, behind CM4J_CUDA_WGMMA=on.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "conv2d_nhwc.cuh"

// ptxas budget: conv2d_nhwc_wgmma_kernel 128 registers, 0 bytes shared
// (its stages are dynamic shared memory, which ptxas does not count: conv2d_nhwc_wgmma.cu
// holds them to two blocks per SM)

namespace cm4j {
namespace kernels {

// Whether the device runs the kernel (compute capability 9.0, where sm_90a code runs).
bool conv2d_nhwc_wgmma_device_ok(int major, int minor);

// Whether the kernel runs p with `splits` (1..8, none left empty) blocks along k.
bool conv2d_nhwc_wgmma_config_ok(const Conv2dNhwcParams& p, int splits);

// The fp32 workspace `splits` take ([splits, M, c_out]; 0: no split).
size_t conv2d_nhwc_wgmma_workspace_floats(const Conv2dNhwcParams& p, int splits);

// Queues the convolution on `stream`; cudaErrorInvalidValue for parameters
// conv2d_nhwc_mma_supports refuses, a split count conv2d_nhwc_wgmma_config_ok refuses, or a
// workspace missing or not 8-byte aligned.
cudaError_t conv2d_nhwc_wgmma_forward(const Conv2dNhwcParams& p, int splits, float* workspace,
                                      cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

// The NHWC mode's convolution (conv2d_nhwc.cuh: same parameters, packed weights and
// semantics) as a pipelined implicit GEMM on sm_80 tensor cores: mma.sync m16n8k16 with
// fp32 accumulation, operands staged by a 3-stage cp.async pipeline into XOR-swizzled shared
// memory and loaded with ldmatrix (mma_sm80.cuh). Two tile shapes, 128x64 and 64x64 (output
// pixels x output channels), chosen by the launcher from the problem's size.
//   dst = (conv(cat(src1, src2)) + bias + bias_bc + residual) * out_scale
// Its gather copies 16 bytes (8 channels) at a time, so it runs the convolutions whose
// c_in1, c_in2 and c_out are multiples of 8 with 16-byte-aligned sources and weight
// (conv2d_nhwc_mma_supports); the others stay on conv2d_nhwc_forward.
#pragma once

#include <cuda_runtime.h>

#include "conv2d_nhwc.cuh"

// ptxas budget: conv2d_nhwc_mma_kernel 96 registers, 36864 bytes shared

namespace cm4j {
namespace kernels {

bool conv2d_nhwc_mma_supports(const Conv2dNhwcParams& p);

// The output-pixel side of the tile the launcher picks (128 or 64).
int conv2d_nhwc_mma_tile_m(const Conv2dNhwcParams& p);

// Queues the convolution on `stream` (sm_80+); cudaErrorInvalidValue for parameters that
// conv2d_nhwc_mma_supports refuses.
cudaError_t conv2d_nhwc_mma_forward(const Conv2dNhwcParams& p, cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

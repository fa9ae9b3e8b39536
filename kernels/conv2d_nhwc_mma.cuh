// The NHWC mode's convolution (conv2d_nhwc.cuh: same parameters, packed weights and
// semantics) as a pipelined implicit GEMM on sm_80 tensor cores: mma.sync m16n8k16 with
// fp32 accumulation, operands staged by a 3-stage cp.async pipeline into XOR-swizzled shared
// memory and loaded with ldmatrix (mma_sm80.cuh). Two tile shapes, 128x64 and 64x64 (output
// pixels x output channels), chosen by the launcher from the problem's size, and a parallel
// split-K where even 64x64 tiles are too few.
//   dst = (conv(cat(src1, src2)) + bias + bias_bc + residual) * out_scale
// Its gather copies 16 bytes (8 channels) at a time, so it runs the convolutions whose
// c_in1, c_in2 and c_out are multiples of 8 with 16-byte-aligned sources and weight
// (conv2d_nhwc_mma_supports); the others stay on conv2d_nhwc_forward.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "conv2d_nhwc.cuh"

// ptxas budget: conv2d_nhwc_mma_kernel 96 registers, 36864 bytes shared
// ptxas budget: conv2d_nhwc_mma_reduce_kernel 40 registers, 0 bytes shared

namespace cm4j {
namespace kernels {

bool conv2d_nhwc_mma_supports(const Conv2dNhwcParams& p);

// The output-pixel side of the tile the launcher picks (128 or 64).
int conv2d_nhwc_mma_tile_m(const Conv2dNhwcParams& p);

// How many blocks share each output tile's reduction (split-K; 1: none): where one image has
// too few 64x64 tiles to fill 132 SMs, as many as would, up to 8, each at least 256 k long.
// It depends on one image's shape only, so an image gets the same bits batched or alone.
int conv2d_nhwc_mma_splits(const Conv2dNhwcParams& p);

// The fp32 workspace the splits' partial sums take ([splits, M, c_out]; 0: no split).
size_t conv2d_nhwc_mma_workspace_floats(const Conv2dNhwcParams& p);

// Queues the convolution on `stream` (sm_80+), with `workspace` of at least
// conv2d_nhwc_mma_workspace_floats(p) floats (null when that is 0); cudaErrorInvalidValue for
// parameters that conv2d_nhwc_mma_supports refuses or a missing workspace.
cudaError_t conv2d_nhwc_mma_forward(const Conv2dNhwcParams& p, float* workspace,
                                    cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

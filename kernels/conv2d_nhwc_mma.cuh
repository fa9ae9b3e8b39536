// The NHWC mode's convolution (conv2d_nhwc.cuh: same parameters, packed weights and
// semantics) as a pipelined implicit GEMM on sm_80 tensor cores: mma.sync m16n8k16 with
// fp32 accumulation, operands staged by a 3-stage cp.async pipeline into XOR-swizzled shared
// memory and loaded with ldmatrix (mma_sm80.cuh). Three tile shapes (output pixels x output
// channels): 128x64 and 64x64, which the fixed rule chooses from the problem's size, and
// 128x128 with 64x64 warp tiles, for measurement to choose (CM4J_TUNING=full); a parallel
// split-K where even 64x64 tiles are too few.
//   dst = (conv(cat(src1, src2)) + bias + bias_bc + residual) * out_scale
// A group norm (+ SiLU) of cat(src1, src2) may be fused into the gather (Conv2dNhwcParams::
// norm): the conv then reads the un-normalized sources and gives the unfused bits.
// Its gather copies 16 bytes (8 channels) at a time and its epilogue stores output pairs, so
// it runs the convolutions whose c_in1, c_in2 and c_out are multiples of 8 with
// 16-byte-aligned sources and weight and 4-byte-aligned dst and residual
// (conv2d_nhwc_mma_supports); the others stay on conv2d_nhwc_forward.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "conv2d_nhwc.cuh"

// ptxas budget: conv2d_nhwc_mma_kernel 96 registers, 36864 bytes shared
// The wide tile's 64x64 warps hold 128 fp32 accumulators per thread: up to 256 registers
// still fit two blocks (8 warps) on an SM, and its three stages fill the 48 KiB of static
// shared memory a block may have.
// ptxas budget: conv2d_nhwc_mma_wide_kernel 248 registers, 49152 bytes shared
// ptxas budget: conv2d_nhwc_mma_reduce_kernel 40 registers, 0 bytes shared

namespace cm4j {
namespace kernels {

bool conv2d_nhwc_mma_supports(const Conv2dNhwcParams& p);
// The channel counts it takes (multiples of 8), for a plan deciding before any pointer
// exists: where they hold, a fused norm (Conv2dNhwcParams::norm) runs on this kernel.
bool conv2d_nhwc_mma_channels_ok(int c_in1, int c_in2, int c_out);

// A launch configuration: the tile, output pixels x output channels (128x64: 8 warps of
// 32x32, 64x64: 4 warps of 32x32, 128x128: 4 warps of 64x64), and how many blocks share each
// output tile's reduction (split-K; 1: none).
struct Conv2dNhwcMmaConfig {
  int tile_m = 64;
  int tile_n = 64;
  int splits = 1;
};

// The fixed rule (CM4J_TUNING=off, and every shape the tuning cache has no entry for):
// 128x64 tiles while they make 132 blocks (an H100's SMs), else 64x64; split-K where one
// image has too few 64x64 tiles to fill 132 SMs, as many splits as would, up to 8, each at
// least 256 k long. The split depends on one image's shape only, so an image gets the same
// bits batched or alone (the tile never changes the bits: each output's sum runs in the same
// order in both).
Conv2dNhwcMmaConfig conv2d_nhwc_mma_rule(const Conv2dNhwcParams& p);
int conv2d_nhwc_mma_tile_m(const Conv2dNhwcParams& p);  // the rule's tile_m
int conv2d_nhwc_mma_splits(const Conv2dNhwcParams& p);  // the rule's splits

// Whether the kernel runs `c` for p: tile 128x64, 64x64 or 128x128, splits in 1..8 with no
// split left empty (each takes ceil(k slices / splits) slices).
bool conv2d_nhwc_mma_config_ok(const Conv2dNhwcParams& p, const Conv2dNhwcMmaConfig& c);

// The fp32 workspace `splits` take ([splits, M, c_out]; 0: no split); without `splits`, the
// rule's.
size_t conv2d_nhwc_mma_workspace_floats(const Conv2dNhwcParams& p, int splits);
size_t conv2d_nhwc_mma_workspace_floats(const Conv2dNhwcParams& p);

// The arrival counters (Conv2dNhwcParams::split_counters) any tile and split of p needs: one
// per 64x64 output tile, the smallest.
size_t conv2d_nhwc_mma_split_counters(const Conv2dNhwcParams& p);

// Queues the convolution on `stream` (sm_80+) in configuration `c` (without it, the rule's),
// with `workspace` of at least conv2d_nhwc_mma_workspace_floats(p, c.splits) floats (null
// when that is 0); cudaErrorInvalidValue for parameters that conv2d_nhwc_mma_supports
// refuses, a configuration conv2d_nhwc_mma_config_ok refuses, or a workspace missing or not
// 8-byte aligned.
cudaError_t conv2d_nhwc_mma_forward(const Conv2dNhwcParams& p, const Conv2dNhwcMmaConfig& c,
                                    float* workspace, cudaStream_t stream);
cudaError_t conv2d_nhwc_mma_forward(const Conv2dNhwcParams& p, float* workspace,
                                    cudaStream_t stream);

// dst from fp32 sums made elsewhere (a vendor GEMM: [M, c_out]; the wgmma kernel's splits:
// [splits, M, c_out], added in split order): the epilogue above (bias, per-image bias,
// residual, out_scale, one rounding on store), as the split-K reduction applies it.
cudaError_t conv2d_nhwc_epilogue(const Conv2dNhwcParams& p, const float* sums, int splits,
                                 cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

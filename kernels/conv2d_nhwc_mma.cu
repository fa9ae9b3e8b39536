// conv2d over NHWC fp16/bf16 activations, pipelined on sm_80 tensor cores. GEMM rows are
// output pixels, columns output channels, k = (ky * kernel + kx) * c_in + c as in
// conv2d_nhwc.cu. Per stage a block gathers a [BM pixels, 32 k] slice of the activations
// (8 channels of one source pixel per 16-byte cp.async, zero-filled in the padding) and a
// [32 k, BN co] slice of the packed weights (BM x BN: 128x64, 64x64 or 128x128); three
// stages are in flight, so the copies of slice k+2 overlap the MMAs of slice k. Where one
// image's output tiles are too few to fill the card (imagenet64's 32x32 to 8x8 levels), the
// reduction is split over blocks (grid z) that leave fp32 partial sums; the last of a tile's
// splits to finish (or, without arrival counters, a second kernel) adds them in split order
// (deterministic) and applies the epilogue. A group norm fused into the gather
// (Conv2dNhwcParams::norm) is applied to each stage's A slice in shared memory once it has
// landed, before the barrier that publishes it: each thread maps the chunks it copied, so
// the stage's values are those the unfused norm would have written. Not yet run on a GPU:
// reachable only in the NHWC mode (CM4J_CUDA_KERNELS=candidate with fp16/bf16).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <type_traits>

#include "conv2d_nhwc_mma.cuh"
#include "conv2d_nhwc_mma_block.cuh"
#include "indexing.cuh"
#include "launch.cuh"

namespace cm4j {
namespace kernels {

namespace {

using namespace mma_block;  // the tiles, the block, store_output

constexpr int kBN = 64;      // output channels per block of the rule's tiles
// 128x64 tiles when they still make a full wave on an H100's 132 SMs; below, 64x64 tiles
// give twice the blocks. A first rule, until the choice is measured per shape.
constexpr int kLargeTileMinBlocks = 132;
// Split-K where one image has fewer 64x64 tiles than that: enough splits to reach it, at
// most kMaxSplits, each at least kMinSplitTiles slices (256 k) long.
constexpr int kMaxSplits = 8;
constexpr int kMinSplitTiles = 8;
constexpr int kReduceThreads = 256;

// The rule's tiles (NarrowTile<WARPS_M>) and the wide one, as kernels of their own names so
// that each has its own ptxas budget (the wide tile's 64x64 warps hold 128 accumulators).
template <typename T, int WARPS_M, int KS, bool NORM>
__global__ void __launch_bounds__(WARPS_M * 64)
    conv2d_nhwc_mma_kernel(const Conv2dNhwcParams p, float* partial) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  conv2d_nhwc_mma_block<T, NarrowTile<WARPS_M>, KS, NORM>(p, partial);
}

template <typename T, int KS, bool NORM>
__global__ void __launch_bounds__(WideTile::kThreads)
    conv2d_nhwc_mma_wide_kernel(const Conv2dNhwcParams p, float* partial) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  conv2d_nhwc_mma_block<T, WideTile, KS, NORM>(p, partial);
}

// The kernels of tile TILE (launch_blocks' family).
template <typename T, class TILE>
struct MmaKernels {
  using Type = T;
  using Tile = TILE;
  template <int KS, bool NORM>
  static constexpr void (*get())(const Conv2dNhwcParams, float*) {
    if constexpr (std::is_same<Tile, WideTile>::value)
      return conv2d_nhwc_mma_wide_kernel<T, KS, NORM>;
    else
      return conv2d_nhwc_mma_kernel<T, Tile::kThreads / 64, KS, NORM>;
  }
};

// dst from the splits' partial sums, added in split order.
template <typename T>
__global__ void __launch_bounds__(kReduceThreads)
    conv2d_nhwc_mma_reduce_kernel(const Conv2dNhwcParams p, const float* partial, int splits) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  const int64_t total = static_cast<int64_t>(p.batch) * p.h_out * p.w_out * p.c_out;
  const int hw = p.h_out * p.w_out;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = 0.0f;
    for (int z = 0; z < splits; ++z) v += partial[z * total + i];
    const int m = static_cast<int>(i / p.c_out), co = static_cast<int>(i % p.c_out);
    store_output<T>(p, m, co, m / hw, v);
  }
}

template <typename T>
cudaError_t launch_reduce(const Conv2dNhwcParams& p, const float* partial, int splits,
                          cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(p.batch) * p.h_out * p.w_out * p.c_out;
  const int blocks =
      static_cast<int>(std::min<int64_t>((total + kReduceThreads - 1) / kReduceThreads, 4096));
  CM4J_LAUNCH(conv2d_nhwc_mma_reduce_kernel<T>, blocks, kReduceThreads, stream, p, partial, splits);
  return cudaGetLastError();
}


template <typename T>
cudaError_t launch(const Conv2dNhwcParams& p, const Conv2dNhwcMmaConfig& c, float* partial,
                   cudaStream_t stream) {
  if (c.tile_n == 128) return launch_blocks<MmaKernels<T, WideTile>>(p, c.splits, partial, stream);
  return c.tile_m == 128 ? launch_blocks<MmaKernels<T, NarrowTile<4>>>(p, c.splits, partial, stream)
                         : launch_blocks<MmaKernels<T, NarrowTile<2>>>(p, c.splits, partial, stream);
}

int k_tiles(const Conv2dNhwcParams& p) {
  return kidx::ceil_div((p.c_in1 + p.c_in2) * p.kernel * p.kernel, kBK);
}

}  // namespace

bool conv2d_nhwc_mma_channels_ok(int c_in1, int c_in2, int c_out) {
  return c_in1 % kChunk == 0 && c_in2 % kChunk == 0 && c_out % kChunk == 0;
}

bool conv2d_nhwc_mma_supports(const Conv2dNhwcParams& p) {
  return conv2d_nhwc_params_ok(p) && conv2d_nhwc_mma_channels_ok(p.c_in1, p.c_in2, p.c_out) &&
         sm80::aligned16(p.src1) && sm80::aligned16(p.src2) && sm80::aligned16(p.weight) &&
         sm80::aligned(p.dst, 4) && sm80::aligned(p.residual, 4);
}

int conv2d_nhwc_mma_tile_m(const Conv2dNhwcParams& p) {
  const int64_t m = static_cast<int64_t>(p.batch) * p.h_out * p.w_out;
  const int64_t blocks = (m + 127) / 128 * kidx::ceil_div(p.c_out, kBN);
  return blocks >= kLargeTileMinBlocks ? 128 : 64;
}

int conv2d_nhwc_mma_splits(const Conv2dNhwcParams& p) {
  // One image's 64x64 tiles, never the batch's: the split changes the order of the sums, so
  // an image gets the same bits batched or alone.
  const int tiles = kidx::ceil_div(p.h_out * p.w_out, 64) * kidx::ceil_div(p.c_out, kBN);
  const int kt = k_tiles(p);
  if (tiles >= kLargeTileMinBlocks) return 1;
  const int want = kidx::ceil_div(kLargeTileMinBlocks, tiles);
  const int splits = std::min(want, std::min(kMaxSplits, kt / kMinSplitTiles));
  if (splits <= 1) return 1;
  return kidx::ceil_div(kt, kidx::ceil_div(kt, splits));  // no split left empty
}

Conv2dNhwcMmaConfig conv2d_nhwc_mma_rule(const Conv2dNhwcParams& p) {
  Conv2dNhwcMmaConfig c;
  c.tile_m = conv2d_nhwc_mma_tile_m(p);
  c.splits = conv2d_nhwc_mma_splits(p);
  return c;
}

bool conv2d_nhwc_mma_config_ok(const Conv2dNhwcParams& p, const Conv2dNhwcMmaConfig& c) {
  const int kt = k_tiles(p);
  const bool tile = c.tile_n == 64 ? (c.tile_m == 128 || c.tile_m == 64)
                                    : (c.tile_n == 128 && c.tile_m == 128);
  return tile && c.splits >= 1 && c.splits <= kMaxSplits &&
         (c.splits - 1) * kidx::ceil_div(kt, c.splits) < kt;
}

size_t conv2d_nhwc_mma_workspace_floats(const Conv2dNhwcParams& p, int splits) {
  return splits > 1 ? static_cast<size_t>(splits) * p.batch * p.h_out * p.w_out * p.c_out : 0;
}

size_t conv2d_nhwc_mma_workspace_floats(const Conv2dNhwcParams& p) {
  return conv2d_nhwc_mma_workspace_floats(p, conv2d_nhwc_mma_splits(p));
}

size_t conv2d_nhwc_mma_split_counters(const Conv2dNhwcParams& p) {
  const int64_t m = static_cast<int64_t>(p.batch) * p.h_out * p.w_out;
  return static_cast<size_t>((m + 63) / 64 * kidx::ceil_div(p.c_out, 64));
}

cudaError_t conv2d_nhwc_mma_forward(const Conv2dNhwcParams& p, const Conv2dNhwcMmaConfig& c,
                                    float* workspace, cudaStream_t stream) {
  if (!conv2d_nhwc_mma_supports(p) || !conv2d_nhwc_mma_config_ok(p, c))
    return cudaErrorInvalidValue;
  if (c.splits > 1 && (!workspace || !sm80::aligned(workspace, 8))) return cudaErrorInvalidValue;
  switch (p.type) {
    case HalfType::kF16: return launch<__half>(p, c, workspace, stream);
    case HalfType::kBF16: return launch<__nv_bfloat16>(p, c, workspace, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t conv2d_nhwc_epilogue(const Conv2dNhwcParams& p, const float* sums, int splits,
                                 cudaStream_t stream) {
  if (!conv2d_nhwc_params_ok(p) || !sums || splits < 1) return cudaErrorInvalidValue;
  switch (p.type) {
    case HalfType::kF16: return launch_reduce<__half>(p, sums, splits, stream);
    case HalfType::kBF16: return launch_reduce<__nv_bfloat16>(p, sums, splits, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t conv2d_nhwc_mma_forward(const Conv2dNhwcParams& p, float* workspace,
                                    cudaStream_t stream) {
  return conv2d_nhwc_mma_forward(p, conv2d_nhwc_mma_rule(p), workspace, stream);
}

}  // namespace kernels
}  // namespace cm4j

// conv2d over NHWC fp16/bf16 activations, pipelined on sm_80 tensor cores. GEMM rows are
// output pixels, columns output channels, k = (ky * kernel + kx) * c_in + c as in
// conv2d_nhwc.cu. Per stage a block gathers a [BM pixels, 32 k] slice of the activations
// (8 channels of one source pixel per 16-byte cp.async, zero-filled in the padding) and a
// [32 k, BN co] slice of the packed weights (BM x BN: 128x64, 64x64 or 128x128); three
// stages are in flight, so the copies of slice k+2 overlap the MMAs of slice k. Where one
// image's output tiles are too few to fill the card (imagenet64's 32x32 to 8x8 levels), the
// reduction is split over blocks (grid z) that leave fp32 partial sums for a second kernel,
// which adds them in split order (deterministic) and applies the epilogue. A group norm fused into the gather
// (Conv2dNhwcParams::norm) is applied to each stage's A slice in shared memory once it has
// landed, before the barrier that publishes it: each thread maps the chunks it copied, so
// the stage's values are those the unfused norm would have written. Not yet run on a GPU:
// reachable only in the NHWC mode (CM4J_CUDA_KERNELS=candidate with fp16/bf16).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <type_traits>

#include "conv2d_nhwc_mma.cuh"
#include "indexing.cuh"
#include "launch.cuh"
#include "mma_sm80.cuh"
#include "nhwc_device.cuh"

namespace cm4j {
namespace kernels {

namespace {

using nhwc_detail::from_f32;
using nhwc_detail::to_f32;
using sm80::swizzled_offset;

constexpr int kBN = 64;      // output channels per block of the rule's tiles
constexpr int kBK = 32;      // reduction per stage: two k16 MMA steps
constexpr int kStages = 3;   // cp.async pipeline depth
constexpr int kChunk = 8;    // 2-byte elements per 16-byte copy
constexpr int kAChunks = kBK / kChunk;  // per A row (pixel): 64 bytes, swizzled_offset<4>

// A block tile: WARPS_M x WARPS_N warps, each owning MI x NI m16n8 accumulator tiles (16 MI
// pixels x 8 NI channels). Each output's sum runs over the same k slices in the same order
// in every tile, so the tile never changes the bits.
template <int WARPS_M, int WARPS_N, int MI, int NI>
struct MmaTile {
  static constexpr int kWarpsN = WARPS_N, kMI = MI, kNI = NI;
  static constexpr int kThreads = WARPS_M * WARPS_N * 32;
  static constexpr int kBM = WARPS_M * MI * 16, kBN = WARPS_N * NI * 8;
  static constexpr int kBChunks = kBN / kChunk;  // per B row (k): swizzled_offset<kBChunks>
};
// The rule's tiles, warps of 32x32: 128x64 (8 warps) and 64x64 (4 warps).
template <int WARPS_M>
using NarrowTile = MmaTile<WARPS_M, 2, 2, 4>;
// 128x128 (4 warps of 64x64, CUTLASS's sm80 design point): half the shared-memory loads per
// MMA of a 32x32 warp and 2/3 of a 128x64 block's global loads per output, for the large
// batches; chosen only by measurement (CM4J_TUNING=full), never by the rule.
using WideTile = MmaTile<2, 2, 4, 8>;
// 128x64 tiles when they still make a full wave on an H100's 132 SMs; below, 64x64 tiles
// give twice the blocks. A first rule, until the choice is measured per shape.
constexpr int kLargeTileMinBlocks = 132;
// Split-K where one image has fewer 64x64 tiles than that: enough splits to reach it, at
// most kMaxSplits, each at least kMinSplitTiles slices (256 k) long.
constexpr int kMaxSplits = 8;
constexpr int kMinSplitTiles = 8;
constexpr int kReduceThreads = 256;

// Output (m, co) of image b from its fp32 sum: bias, per-image bias, residual, out_scale,
// one rounding on store.
template <typename T>
__device__ __forceinline__ void store_output(const Conv2dNhwcParams& p, int m, int co, int b,
                                             float v) {
  const int64_t off = kidx::nhwc_pixel(m, co, p.c_out);
  if (p.bias) v += p.bias[co];
  if (p.bias_bc) v += p.bias_bc[kidx::bias_bc_offset(b, co, p.c_out, p.bias_bc_stride)];
  if (p.residual) v += to_f32(static_cast<const T*>(p.residual)[off]);
  static_cast<T*>(p.dst)[off] = from_f32<T>(v * p.out_scale);
}

// One block of the conv in tile Tile. With gridDim.z > 1, block z reduces its share of the
// slices and stores its raw sums in partial [gridDim.z, M, c_out]. NORM: p.norm's map
// applied to the gathered values.
template <typename T, class Tile, int KS, bool NORM>
__device__ __forceinline__ void conv2d_nhwc_mma_block(const Conv2dNhwcParams& p, float* partial) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  constexpr int kThreads = Tile::kThreads, kBM = Tile::kBM, kBN = Tile::kBN;
  constexpr int kBChunks = Tile::kBChunks, kMI = Tile::kMI, kNI = Tile::kNI;
  constexpr int kARows = kBM * kAChunks / kThreads;  // A chunks per thread (one column)
  constexpr int kBLoads = kBK * kBChunks / kThreads;
  static_assert(kThreads % kAChunks == 0 && (kBK * kBChunks) % kThreads == 0, "tile loads");
  __shared__ __align__(128) T a_s[kStages][kBM * kBK];  // [pixel][k], swizzled
  __shared__ __align__(128) T b_s[kStages][kBK * kBN];  // [k][co], swizzled

  const int ks = KS > 0 ? KS : p.kernel;
  const int c_in = p.c_in1 + p.c_in2;
  const int M = p.batch * p.h_out * p.w_out;
  const int N = p.c_out;
  const int K = c_in * ks * ks;
  // This block's slices [kt0, kt0 + k_tiles) of the reduction (the launcher leaves no split
  // empty).
  const int k_all = kidx::ceil_div(K, kBK);
  const int per_split = kidx::ceil_div(k_all, gridDim.z);
  const int kt0 = blockIdx.z * per_split;
  const int k_tiles = min(k_all - kt0, per_split);
  const int m0 = blockIdx.x * kBM, n0 = blockIdx.y * kBN;
  const int t = threadIdx.x, lane = t % 32, warp = t / 32;
  const int wm = warp / Tile::kWarpsN, wn = warp % Tile::kWarpsN;
  const kidx::ConvGeometry g{p.c_in1, p.c_in2, p.h_in, p.w_in, ks, p.stride, p.pad,
                             p.upsample, p.h_out, p.w_out};
  const T* src1 = static_cast<const T*>(p.src1);
  const T* src2 = static_cast<const T*>(p.src2);
  const T* w = static_cast<const T*>(p.weight);

  // This thread copies chunk a_chunk (channels 8 a_chunk.. of the slice's tap) of the rows
  // t / kAChunks + i * kThreads / kAChunks; their pixels are decoded once (b = -1: past M).
  const int a_chunk = t % kAChunks;
  kidx::Pixel a_px[kARows];
#pragma unroll
  for (int i = 0; i < kARows; ++i) {
    const int m = m0 + t / kAChunks + i * (kThreads / kAChunks);
    a_px[i] = kidx::pixel_of(m < M ? m : 0, p.h_out, p.w_out);
    if (m >= M) a_px[i].b = -1;
  }

  // Row i's chunk of slice kt: its offset in src1 (which 0) or src2, -1 in the padding, past
  // K or past M (zero-filled). c_in1 and c_in2 are multiples of 8, so a chunk never straddles
  // a tap or the seam between the sources.
  auto a_offset = [&](int kt, int i, kidx::Tap* tap, int* which) -> int64_t {
    const int k = kt * kBK + a_chunk * kChunk;
    *tap = kidx::tap_of_nhwc(k < K ? k : 0, ks, c_in);
    *which = 0;
    if (k >= K || a_px[i].b < 0) return -1;
    return kidx::conv_gather_offset_nhwc(g, a_px[i], *tap, which);
  };
  auto a_row = [&](int i) { return t / kAChunks + i * (kThreads / kAChunks); };

  // Queues slice kt into `stage`.
  auto load_stage = [&](int stage, int kt) {
#pragma unroll
    for (int i = 0; i < kARows; ++i) {
      kidx::Tap tap;
      int which;
      const int64_t off = a_offset(kt, i, &tap, &which);
      const T* src = off < 0 ? src1 : (which == 0 ? src1 : src2) + off;
      sm80::cp_async<16>(&a_s[stage][swizzled_offset<kAChunks>(a_row(i), a_chunk)], src, off >= 0);
    }
#pragma unroll
    for (int i = 0; i < kBLoads; ++i) {
      const kidx::TileCoord c = kidx::tile_coord(t, i, kThreads, kBChunks);
      const int kw = kt * kBK + c.row, co = n0 + c.col * kChunk;
      const bool valid = kw < K && co < N;
      const T* src = valid ? w + kidx::conv_packed_index(kw, co, N) : w;
      sm80::cp_async<16>(&b_s[stage][swizzled_offset<kBChunks>(c.row, c.col)], src, valid);
    }
  };

  // The fused norm on this thread's chunks of slice kt, landed in `stage`: 8 channels
  // c.. of image b each through (v - center) * mul + add (and SiLU), rounded back to T.
  // The zero padding is left as it is (the unfused conv pads the normalized tensor).
  auto normalize_stage = [&](int stage, int kt) {
#pragma unroll
    for (int i = 0; i < kARows; ++i) {
      kidx::Tap tap;
      int which;
      if (a_offset(kt, i, &tap, &which) < 0) continue;
      const float* center = p.norm + static_cast<int64_t>(a_px[i].b) * 3 * c_in + tap.c;
      T* v = &a_s[stage][swizzled_offset<kAChunks>(a_row(i), a_chunk)];
#pragma unroll
      for (int j = 0; j < kChunk; ++j)
        v[j] = from_f32<T>(nhwc_detail::norm_act(to_f32(v[j]), center[j], center[c_in + j],
                                                 center[2 * c_in + j], p.norm_silu));
    }
  };

  float acc[kMI][kNI][4];
#pragma unroll
  for (int i = 0; i < kMI; ++i)
#pragma unroll
    for (int j = 0; j < kNI; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

  // Prologue: slices 0 and 1 in flight (a group per slice, empty past the end).
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < k_tiles) load_stage(s, kt0 + s);
    sm80::cp_async_commit();
  }
  for (int kt = 0; kt < k_tiles; ++kt) {
    // Slice kt has landed for this thread; the barrier makes every thread's copies visible
    // and ends the reads of the stage the next copies reuse (slice kt - 1's).
    sm80::cp_async_wait<kStages - 2>();
    if (NORM) normalize_stage(kt % kStages, kt0 + kt);
    __syncthreads();
    if (kt + kStages - 1 < k_tiles)
      load_stage((kt + kStages - 1) % kStages, kt0 + kt + kStages - 1);
    sm80::cp_async_commit();
    const T* as = a_s[kt % kStages];
    const T* bs = b_s[kt % kStages];
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      // A: lanes 0..15 give rows 0..15 at the step's first 8 k, lanes 16..31 the next 8.
      // B (.trans from [k][co]): lanes 0..15 give k rows 0..15 of 8 channels, lanes 16..31
      // the next 8 channels: two n8 tiles per load.
      uint32_t af[kMI][4], bf[kNI][2];
#pragma unroll
      for (int i = 0; i < kMI; ++i)
        sm80::ldmatrix_x4<false>(af[i], &as[swizzled_offset<kAChunks>(
                                            (wm * kMI + i) * 16 + lane % 16, kk * 2 + lane / 16)]);
#pragma unroll
      for (int j = 0; j < kNI / 2; ++j) {
        uint32_t r[4];
        sm80::ldmatrix_x4<true>(
            r, &bs[swizzled_offset<kBChunks>(kk * 16 + lane % 16, wn * kNI + j * 2 + lane / 16)]);
        bf[2 * j][0] = r[0];
        bf[2 * j][1] = r[1];
        bf[2 * j + 1][0] = r[2];
        bf[2 * j + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < kMI; ++i)
#pragma unroll
        for (int j = 0; j < kNI; ++j) sm80::mma_m16n8k16<T>(acc[i][j], af[i], bf[j], acc[i][j]);
    }
  }

  // Epilogue in fp32 from the accumulators (lane: rows lane / 4 and + 8, channel pair
  // 2 (lane % 4)), or the raw sums of this split.
  const int hw = p.h_out * p.w_out;
#pragma unroll
  for (int i = 0; i < kMI; ++i)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int m = m0 + (wm * kMI + i) * 16 + lane / 4 + 8 * h;
      if (m >= M) continue;
      const int b = m / hw;
#pragma unroll
      for (int j = 0; j < kNI; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int co = n0 + (wn * kNI + j) * 8 + (lane % 4) * 2 + e;
          if (co >= N) continue;
          const float v = acc[i][j][2 * h + e];
          if (partial)
            partial[(static_cast<int64_t>(blockIdx.z) * M + m) * N + co] = v;
          else
            store_output<T>(p, m, co, b, v);
        }
    }
#else
  __trap();  // tensor-core path built for an architecture below sm_80
#endif
}

// The rule's tiles (NarrowTile<WARPS_M>) and the wide one, as kernels of their own names so
// that each has its own ptxas budget (the wide tile's 64x64 warps hold 128 accumulators).
template <typename T, int WARPS_M, int KS, bool NORM>
__global__ void __launch_bounds__(WARPS_M * 64)
    conv2d_nhwc_mma_kernel(const Conv2dNhwcParams p, float* partial) {
  conv2d_nhwc_mma_block<T, NarrowTile<WARPS_M>, KS, NORM>(p, partial);
}

template <typename T, int KS, bool NORM>
__global__ void __launch_bounds__(WideTile::kThreads)
    conv2d_nhwc_mma_wide_kernel(const Conv2dNhwcParams p, float* partial) {
  conv2d_nhwc_mma_block<T, WideTile, KS, NORM>(p, partial);
}

// The kernel of tile Tile for a kernel size (0: any) and a fused norm or none.
template <typename T, class Tile, int KS, bool NORM>
constexpr void (*kernel_of())(const Conv2dNhwcParams, float*) {
  if constexpr (std::is_same<Tile, WideTile>::value)
    return conv2d_nhwc_mma_wide_kernel<T, KS, NORM>;
  else
    return conv2d_nhwc_mma_kernel<T, Tile::kThreads / 64, KS, NORM>;
}

// dst from the splits' partial sums, added in split order.
template <typename T>
__global__ void __launch_bounds__(kReduceThreads)
    conv2d_nhwc_mma_reduce_kernel(const Conv2dNhwcParams p, const float* partial, int splits) {
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

// The conv in tile Tile; splits > 1: over `splits` blocks along k, with `partial`
// [splits, M, c_out] in between.
template <typename T, class Tile>
cudaError_t launch_tile(const Conv2dNhwcParams& p, float* partial, int splits,
                        cudaStream_t stream) {
  const int m = p.batch * p.h_out * p.w_out;
  dim3 grid(kidx::ceil_div(m, Tile::kBM), kidx::ceil_div(p.c_out, Tile::kBN), splits);
  if (grid.y > 65535) return cudaErrorInvalidValue;
  void (*kernel)(const Conv2dNhwcParams, float*) =
      p.norm ? (p.kernel == 1   ? kernel_of<T, Tile, 1, true>()
                : p.kernel == 3 ? kernel_of<T, Tile, 3, true>()
                                : kernel_of<T, Tile, 0, true>())
             : (p.kernel == 1   ? kernel_of<T, Tile, 1, false>()
                : p.kernel == 3 ? kernel_of<T, Tile, 3, false>()
                                : kernel_of<T, Tile, 0, false>());
  CM4J_LAUNCH(kernel, grid, Tile::kThreads, stream, p, splits > 1 ? partial : nullptr);
  if (splits > 1) return launch_reduce<T>(p, partial, splits, stream);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch(const Conv2dNhwcParams& p, const Conv2dNhwcMmaConfig& c, float* partial,
                   cudaStream_t stream) {
  if (c.tile_n == 128) return launch_tile<T, WideTile>(p, partial, c.splits, stream);
  return c.tile_m == 128 ? launch_tile<T, NarrowTile<4>>(p, partial, c.splits, stream)
                         : launch_tile<T, NarrowTile<2>>(p, partial, c.splits, stream);
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
         sm80::aligned16(p.src1) && sm80::aligned16(p.src2) && sm80::aligned16(p.weight);
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

cudaError_t conv2d_nhwc_mma_forward(const Conv2dNhwcParams& p, const Conv2dNhwcMmaConfig& c,
                                    float* workspace, cudaStream_t stream) {
  if (!conv2d_nhwc_mma_supports(p) || !conv2d_nhwc_mma_config_ok(p, c))
    return cudaErrorInvalidValue;
  if (c.splits > 1 && !workspace) return cudaErrorInvalidValue;
  switch (p.type) {
    case HalfType::kF16: return launch<__half>(p, c, workspace, stream);
    case HalfType::kBF16: return launch<__nv_bfloat16>(p, c, workspace, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t conv2d_nhwc_epilogue(const Conv2dNhwcParams& p, const float* sums,
                                 cudaStream_t stream) {
  if (!conv2d_nhwc_params_ok(p) || !sums) return cudaErrorInvalidValue;
  switch (p.type) {
    case HalfType::kF16: return launch_reduce<__half>(p, sums, 1, stream);
    case HalfType::kBF16: return launch_reduce<__nv_bfloat16>(p, sums, 1, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t conv2d_nhwc_mma_forward(const Conv2dNhwcParams& p, float* workspace,
                                    cudaStream_t stream) {
  return conv2d_nhwc_mma_forward(p, conv2d_nhwc_mma_rule(p), workspace, stream);
}

}  // namespace kernels
}  // namespace cm4j

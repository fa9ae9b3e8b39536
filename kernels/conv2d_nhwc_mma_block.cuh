// The block of the pipelined tensor-core convolution (conv2d_nhwc_mma.cu, conv2d_nhwc_wgmma.cu),
// one template over its tile: the gather of [BM pixels, 32 k] activation slices and [32 k, BN
// co] weight slices through a cp.async pipeline into swizzled shared memory (3 stages for
// mma.sync, 6 for wgmma), the fused norm on the landed A slices, the MMAs (mma.sync per warp,
// or wgmma per warpgroup), and the epilogue from the fp32 accumulators. Internal to those
// two files.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "block_reduce.cuh"
#include "conv2d_nhwc.cuh"
#include "conv2d_nhwc_mma.cuh"
#include "indexing.cuh"
#include "launch.cuh"
#include "mma_sm80.cuh"
#include "mma_sm90.cuh"
#include "nhwc_device.cuh"

namespace cm4j {
namespace kernels {
namespace mma_block {

using nhwc_detail::from_f32;
using nhwc_detail::to_f32;
using sm80::swizzled_offset;

constexpr int kBK = 32;      // reduction per stage: two k16 MMA steps
constexpr int kChunk = 8;    // 2-byte elements per 16-byte copy
constexpr int kAChunks = kBK / kChunk;  // per A row (pixel): 64 bytes, swizzled_offset<4>

// A block tile: WARPS_M x WARPS_N warps, each owning MI x NI m16n8 accumulator tiles (16 MI
// pixels x 8 NI channels). Each output's sum runs over the same k slices in the same order
// in every tile, so the tile never changes the bits.
template <int WARPS_M, int WARPS_N, int MI, int NI>
struct MmaTile {
  static constexpr bool kWgmma = false;
  // Pipeline stages in static shared memory (3 x 16 KiB at most: the 48 KiB a block may
  // declare), and MMA slices left running while the next stage is gathered (mma.sync: none).
  static constexpr int kStages = 3, kInFlight = 0;
  static constexpr bool kDynamicShared = false;
  static constexpr int kWarpsN = WARPS_N, kMI = MI, kNI = NI;
  static constexpr int kThreads = WARPS_M * WARPS_N * 32;
  static constexpr int kBM = WARPS_M * MI * 16, kBN = WARPS_N * NI * 8;
  static constexpr int kBChunks = kBN / kChunk;  // per B row (k)
  // Where chunk `chunk` (8 channels) of k row `row` sits in a B stage: rows of kBN channels.
  __host__ __device__ static __forceinline__ int b_offset(int row, int chunk) {
    return swizzled_offset<kBChunks>(row, chunk);
  }
};
// The rule's tiles, warps of 32x32: 128x64 (8 warps) and 64x64 (4 warps).
template <int WARPS_M>
using NarrowTile = MmaTile<WARPS_M, 2, 2, 4>;
// 128x128 (4 warps of 64x64, CUTLASS's sm80 design point): half the shared-memory loads per
// MMA of a 32x32 warp and 2/3 of a 128x64 block's global loads per output, for the large
// batches; chosen only by measurement (CM4J_TUNING=full), never by the rule.
using WideTile = MmaTile<2, 2, 4, 8>;
// 128x128 on sm_90a's warpgroup MMA: 2 warpgroups of 64x128, each a wgmma m64n128k16 per k16
// step with both operands read from shared memory by descriptors. The accumulators are laid
// out as 8 warps of 16x128 (MmaTile<8, 1, 1, 16>), so the epilogue is the mma tiles'. The
// wgmma's descriptors take canonical layouts: A as the mma tiles keep it (64-byte rows of
// [pixel][k], whose XOR swizzle is wgmma's 64-byte one), B as 2 blocks of 64 channels, each
// [32 k][64 co] in 128-byte rows with the 128-byte swizzle. Six stages in dynamic shared
// memory (6 x 16 KiB, two blocks per SM): four slices in flight as copies and one as wgmmas
// (kInFlight), so the tensor cores work through the barrier and the next slice's gather.
struct WgmmaTile : MmaTile<8, 1, 1, 16> {
  static constexpr bool kWgmma = true;
  static constexpr int kStages = 6, kInFlight = 1;
  static constexpr bool kDynamicShared = true;
  static constexpr int kBlockN = 64;  // channels per 128-byte B row
  __host__ __device__ static __forceinline__ int b_offset(int row, int chunk) {
    return chunk / 8 * (kBK * kBlockN) + swizzled_offset<8>(row, chunk % 8);
  }
};

// A tile's pipeline stages in bytes: A [kBM][kBK] and B [kBK][kBN] per stage, and for dynamic
// shared memory the slack to align them to 1 KiB.
template <typename T, class Tile>
constexpr int stage_bytes() {
  return Tile::kStages * (Tile::kBM + Tile::kBN) * kBK * static_cast<int>(sizeof(T)) +
         (Tile::kDynamicShared ? 1024 : 0);
}

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

// Outputs co and co + 1 (co even) of row m: store_output's arithmetic on each, the residual
// read and the result written as one 4-byte pair (half the accesses of the block's
// epilogue). c_out is a multiple of 8 and dst and residual 4-byte aligned
// (conv2d_nhwc_mma_supports), so a pair never straddles a row or a tail.
template <typename T>
__device__ __forceinline__ void store_output_pair(const Conv2dNhwcParams& p, int m, int co, int b,
                                                  float v0, float v1) {
  struct alignas(2 * sizeof(T)) Pair {
    T lo, hi;
  };
  const int64_t off = kidx::nhwc_pixel(m, co, p.c_out);
  if (p.bias) {
    v0 += p.bias[co];
    v1 += p.bias[co + 1];
  }
  if (p.bias_bc) {
    const float* row = p.bias_bc + kidx::bias_bc_offset(b, co, p.c_out, p.bias_bc_stride);
    v0 += row[0];
    v1 += row[1];
  }
  if (p.residual) {
    const Pair r = *reinterpret_cast<const Pair*>(static_cast<const T*>(p.residual) + off);
    v0 += to_f32(r.lo);
    v1 += to_f32(r.hi);
  }
  *reinterpret_cast<Pair*>(static_cast<T*>(p.dst) + off) =
      Pair{from_f32<T>(v0 * p.out_scale), from_f32<T>(v1 * p.out_scale)};
}

// The MMAs of one landed stage on one warp's accumulators: per k16 step, A fragments by
// ldmatrix (lanes 0..15 give rows 0..15 at the step's first 8 k, lanes 16..31 the next 8),
// B by ldmatrix .trans from [k][co] (lanes 0..15 give k rows 0..15 of 8 channels, lanes
// 16..31 the next 8 channels: two n8 tiles per load), then mma.sync m16n8k16.
template <typename T, class Tile>
__device__ __forceinline__ void warp_mma_slice(float (&acc)[Tile::kMI][Tile::kNI][4], const T* as,
                                               const T* bs, int wm, int wn, int lane) {
  constexpr int kMI = Tile::kMI, kNI = Tile::kNI;
#pragma unroll
  for (int kk = 0; kk < kBK / 16; ++kk) {
    uint32_t af[kMI][4], bf[kNI][2];
#pragma unroll
    for (int i = 0; i < kMI; ++i)
      sm80::ldmatrix_x4<false>(af[i], &as[swizzled_offset<kAChunks>(
                                          (wm * kMI + i) * 16 + lane % 16, kk * 2 + lane / 16)]);
#pragma unroll
    for (int j = 0; j < kNI / 2; ++j) {
      uint32_t r[4];
      sm80::ldmatrix_x4<true>(
          r, &bs[Tile::b_offset(kk * 16 + lane % 16, wn * kNI + j * 2 + lane / 16)]);
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

// The MMAs of one landed stage on warpgroup wg's 64x128 accumulators: per k16 step one
// wgmma m64n128k16. A: the group's 64 rows of 64 bytes, 8-row groups 512 bytes apart (SBO;
// the step's k at +32 bytes inside the row, which the 64-byte swizzle permutes by address
// bits); B: MN-major, 64-channel blocks kBK rows apart (LBO), 8-row k groups 1024 bytes apart
// (SBO). Returns with the wgmmas in flight as one group: warpgroup_mma_wait ends them, before
// the stage is reused and before the accumulators are read.
template <typename T>
__device__ __forceinline__ void warpgroup_mma_slice(float (&acc)[1][16][4], const T* as,
                                                    const T* bs, int wg, const void* a_hint,
                                                    const void* b_hint) {
  float(&d)[64] = reinterpret_cast<float(&)[64]>(acc);
  sm90::fence_accumulators(d);
  sm90::wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < kBK / 16; ++kk) {
    const uint64_t desc_a = sm90::smem_desc(as + wg * 64 * kBK + kk * 16, 16, 8 * kBK * 2, 64);
    const uint64_t desc_b = sm90::smem_desc(bs + kk * 16 * WgmmaTile::kBlockN,
                                            kBK * WgmmaTile::kBlockN * 2, 8 * 128, 128);
    sm90::wgmma_m64n128k16<T>(d, desc_a, desc_b, a_hint, b_hint);
  }
  sm90::wgmma_commit();
  sm90::fence_accumulators(d);
}

// Waits for this thread's wgmma groups but the newest N.
template <int N>
__device__ __forceinline__ void warpgroup_mma_wait(float (&acc)[1][16][4]) {
  sm90::wgmma_wait<N>();
  sm90::fence_accumulators(reinterpret_cast<float(&)[64]>(acc));
}

// Split-K in one launch: called by every split of output tile (blockIdx.x, blockIdx.y) once
// its partial sums are stored; the split that arrives last (p.split_counters, one per tile)
// adds the splits' sums in split order and applies the epilogue, as the reduction kernel
// would (the same bits).
template <typename T, class Tile>
__device__ __forceinline__ void add_splits_if_last(const Conv2dNhwcParams& p, const float* partial,
                                                   int M, int N, int m0, int n0) {
  auto counter = [&] { return p.split_counters + blockIdx.y * gridDim.x + blockIdx.x; };
  if (!last_to_arrive(counter, gridDim.z)) return;
  // The tile's output pairs row by row (coalesced), kRound per thread at a time so that their
  // loads overlap (L2 loads, cg: other SMs wrote them); each pair's sum in split order.
  constexpr int kPairs = Tile::kBM * Tile::kBN / 2, kRound = 4;
  static_assert(kPairs % (kRound * Tile::kThreads) == 0, "whole rounds");
  const int hw = p.h_out * p.w_out, splits = gridDim.z;
  const int64_t split_floats = static_cast<int64_t>(M) * N;
  for (int i0 = threadIdx.x; i0 < kPairs; i0 += kRound * Tile::kThreads) {
    int m[kRound], co[kRound];
    float2 v[kRound];
#pragma unroll
    for (int r = 0; r < kRound; ++r) {
      const int i = i0 + r * Tile::kThreads;
      m[r] = m0 + i / (Tile::kBN / 2);
      co[r] = n0 + i % (Tile::kBN / 2) * 2;
      v[r] = make_float2(0.0f, 0.0f);
    }
#pragma unroll 4
    for (int z = 0; z < splits; ++z)
#pragma unroll
      for (int r = 0; r < kRound; ++r) {
        if (m[r] >= M || co[r] >= N) continue;
        const float2 s = __ldcg(reinterpret_cast<const float2*>(
            &partial[z * split_floats + static_cast<int64_t>(m[r]) * N + co[r]]));
        v[r].x += s.x;
        v[r].y += s.y;
      }
#pragma unroll
    for (int r = 0; r < kRound; ++r)
      if (m[r] < M && co[r] < N) store_output_pair<T>(p, m[r], co[r], m[r] / hw, v[r].x, v[r].y);
  }
}

// One block of the conv in tile Tile. With gridDim.z > 1, block z reduces its share of the
// slices and stores its raw sums in partial [gridDim.z, M, c_out], and with p.split_counters
// the last split of the tile applies the epilogue to their sum. NORM: p.norm's map applied
// to the gathered values.
template <typename T, class Tile, int KS, bool NORM>
__device__ __forceinline__ void conv2d_nhwc_mma_block(const Conv2dNhwcParams& p, float* partial) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  constexpr int kThreads = Tile::kThreads, kBM = Tile::kBM, kBN = Tile::kBN;
  constexpr int kBChunks = Tile::kBChunks, kMI = Tile::kMI, kNI = Tile::kNI;
  constexpr int kStages = Tile::kStages, kInFlight = Tile::kInFlight;
  // Slices gathered ahead: a stage is reloaded once the MMAs of the slice it held are done,
  // kInFlight slices after they were issued.
  constexpr int kPrefetch = kStages - 1 - kInFlight;
  static_assert(kPrefetch >= 1 && (Tile::kWgmma || kInFlight == 0), "pipeline depth");
  constexpr int kARows = kBM * kAChunks / kThreads;  // A chunks per thread (one column)
  constexpr int kBLoads = kBK * kBChunks / kThreads;
  static_assert(kThreads % kAChunks == 0 && (kBK * kBChunks) % kThreads == 0, "tile loads");
  // Stage s: A at a_s + s * kBM * kBK ([pixel][k], swizzled), B at b_s + s * kBK * kBN
  // (Tile::b_offset). Aligned to wgmma's largest swizzle pattern (8 rows of 128 bytes): its
  // descriptors swizzle by address bits.
  T* a_s;
  T* b_s;
  if constexpr (Tile::kDynamicShared) {
    CM4J_DYNAMIC_SHARED(dynamic);
    a_s = reinterpret_cast<T*>(sm90::align_shared<1024>(dynamic));
    b_s = a_s + kStages * kBM * kBK;
  } else {
    __shared__ __align__(1024) T a_static[kStages * kBM * kBK];
    __shared__ __align__(1024) T b_static[kStages * kBK * kBN];
    a_s = a_static;
    b_s = b_static;
  }
  auto a_stage = [&](int stage) { return a_s + stage * (kBM * kBK); };
  auto b_stage = [&](int stage) { return b_s + stage * (kBK * kBN); };

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
      sm80::cp_async<16>(&a_stage(stage)[swizzled_offset<kAChunks>(a_row(i), a_chunk)], src,
                         off >= 0);
    }
#pragma unroll
    for (int i = 0; i < kBLoads; ++i) {
      const kidx::TileCoord c = kidx::tile_coord(t, i, kThreads, kBChunks);
      const int kw = kt * kBK + c.row, co = n0 + c.col * kChunk;
      const bool valid = kw < K && co < N;
      const T* src = valid ? w + kidx::conv_packed_index(kw, co, N) : w;
      sm80::cp_async<16>(&b_stage(stage)[Tile::b_offset(c.row, c.col)], src, valid);
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
      T* v = &a_stage(stage)[swizzled_offset<kAChunks>(a_row(i), a_chunk)];
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

  // Prologue: the first kPrefetch slices in flight (a group per slice, empty past the end).
#pragma unroll
  for (int s = 0; s < kPrefetch; ++s) {
    if (s < k_tiles) load_stage(s, kt0 + s);
    sm80::cp_async_commit();
  }
  for (int kt = 0; kt < k_tiles; ++kt) {
    // Slice kt has landed for this thread; the barrier makes every thread's copies visible
    // and ends the MMAs' reads of the stage the next copies reuse (slice kt - 1 - kInFlight's).
    sm80::cp_async_wait<kPrefetch - 1>();
    if (NORM) normalize_stage(kt % kStages, kt0 + kt);
    if constexpr (Tile::kWgmma) {
      // This thread's writes to the stage made visible to wgmma's reads, and the wgmmas of
      // slice kt - 1 - kInFlight done with the stage the copies below reuse; the newer ones
      // keep the tensor cores busy through the barrier.
      sm90::fence_proxy_async();
      warpgroup_mma_wait<kInFlight>(acc);
    }
    __syncthreads();
    if (kt + kPrefetch < k_tiles) load_stage((kt + kPrefetch) % kStages, kt0 + kt + kPrefetch);
    sm80::cp_async_commit();
    if constexpr (Tile::kWgmma)
      warpgroup_mma_slice<T>(acc, a_stage(kt % kStages), b_stage(kt % kStages), warp / 4, a_s, b_s);
    else
      warp_mma_slice<T, Tile>(acc, a_stage(kt % kStages), b_stage(kt % kStages), wm, wn, lane);
  }
  if constexpr (Tile::kWgmma) warpgroup_mma_wait<0>(acc);

  // Epilogue in fp32 from the accumulators (lane: rows lane / 4 and + 8, channel pair
  // 2 (lane % 4)), or the raw sums of this split; a pair per access. N is a multiple of 8,
  // so a pair is whole or past the end.
  const int hw = p.h_out * p.w_out;
#pragma unroll
  for (int i = 0; i < kMI; ++i)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int m = m0 + (wm * kMI + i) * 16 + lane / 4 + 8 * h;
      if (m >= M) continue;
      const int b = m / hw;
#pragma unroll
      for (int j = 0; j < kNI; ++j) {
        const int co = n0 + (wn * kNI + j) * 8 + (lane % 4) * 2;
        if (co >= N) continue;
        const float v0 = acc[i][j][2 * h], v1 = acc[i][j][2 * h + 1];
        const int64_t at = (static_cast<int64_t>(blockIdx.z) * M + m) * N + co;
        if (partial)
          *reinterpret_cast<float2*>(&partial[at]) = make_float2(v0, v1);
        else
          store_output_pair<T>(p, m, co, b, v0, v1);
      }
    }
  if (partial && p.split_counters) add_splits_if_last<T, Tile>(p, partial, M, N, m0, n0);
#else
  __trap();  // tensor-core path built for an architecture below sm_80
#endif
}

// Queues the conv on a kernel family: Kernels::Type its element type, Kernels::Tile its tile,
// Kernels::get<KS, NORM>() its kernel for a kernel size (1, 3, or 0: any) and a fused norm or
// none. splits > 1: over `splits` blocks along k, with `partial` [splits, M, c_out] in between,
// added by the tile's last split (p.split_counters) or else by the split-K reduction.
template <class Kernels>
cudaError_t launch_blocks(const Conv2dNhwcParams& p, int splits, float* partial,
                          cudaStream_t stream) {
  using Tile = typename Kernels::Tile;
  const int m = p.batch * p.h_out * p.w_out;
  dim3 grid(kidx::ceil_div(m, Tile::kBM), kidx::ceil_div(p.c_out, Tile::kBN), splits);
  if (grid.y > 65535) return cudaErrorInvalidValue;
  void (*kernel)(const Conv2dNhwcParams, float*) =
      p.norm ? (p.kernel == 1   ? Kernels::template get<1, true>()
                : p.kernel == 3 ? Kernels::template get<3, true>()
                                : Kernels::template get<0, true>())
             : (p.kernel == 1   ? Kernels::template get<1, false>()
                : p.kernel == 3 ? Kernels::template get<3, false>()
                                : Kernels::template get<0, false>());
  float* sums = splits > 1 ? partial : nullptr;
  if constexpr (Tile::kDynamicShared) {
    // Above the 48 KiB a launch gets by default; set per launch, since the attribute belongs
    // to the current device's copy of the kernel.
    constexpr int kBytes = stage_bytes<typename Kernels::Type, Tile>();
    const cudaError_t e =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes);
    if (e != cudaSuccess) return e;
    CM4J_LAUNCH_SHARED(kernel, grid, Tile::kThreads, kBytes, stream, p, sums);
  } else {
    CM4J_LAUNCH(kernel, grid, Tile::kThreads, stream, p, sums);
  }
  if (splits > 1 && !p.split_counters) return conv2d_nhwc_epilogue(p, partial, splits, stream);
  return cudaGetLastError();
}

}  // namespace mma_block
}  // namespace kernels
}  // namespace cm4j

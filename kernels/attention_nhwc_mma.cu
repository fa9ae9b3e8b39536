// Flash attention over NHWC fp16/bf16 on sm_80 tensor cores, head dim 64. One block per
// (64-query tile, head, image), four warps of 16 queries each. A warp keeps its queries' A
// fragments in registers (loaded once by ldmatrix) and walks the keys 64 at a time: the
// block's K and V tiles ([key][dim], 128-byte rows, XOR-swizzled) arrive by cp.async into
// one of two stages while the other is being used. Per tile, S = Q K^T (mma.sync, K read
// by ldmatrix as the [n][k] operand), then the online softmax in fp32 in base 2 (the scale
// times log2(e) folded into one fma before exp2f; the row max and sum kept per row, the
// accumulator rescaled when the max grows), then O += P V with P rounded to the half type
// straight from the S accumulators (their m16n8 layout is the m16k16 A layout) and V read
// by ldmatrix .trans. Keys past HW are zero-filled and scored -inf, queries past HW are
// zero and never stored. The output is divided by the row sum and rounded once, staged
// through shared memory for 16-byte stores. Not yet run on a GPU: reachable only in the
// NHWC mode (CM4J_CUDA_KERNELS=candidate with fp16/bf16).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>

#include <cstdint>
#include <cstring>

#include "attention_nhwc_mma.cuh"
#include "indexing.cuh"
#include "launch.cuh"
#include "mma_sm80.cuh"
#include "nhwc_device.cuh"

namespace cm4j {
namespace kernels {

namespace {

using nhwc_detail::from_f32;
using sm80::swizzled_offset;

constexpr int kAttnDim = kAttentionNhwcMmaDimHead;  // 64: one 128-byte row per query/key
constexpr int kAttnRowChunks = kAttnDim / 8;         // 16-byte chunks per row
constexpr int kAttnWarps = 4;
constexpr int kAttnThreads = kAttnWarps * 32;
constexpr int kAttnQueries = kAttnWarps * 16;  // per block: an m16 tile per warp
constexpr int kAttnKeys = 64;                  // per pipeline stage
constexpr int kAttnTileElems = 64 * kAttnDim;  // a Q, K or V tile of 64 rows, 8 KiB
static_assert(kAttnQueries == 64 && kAttnKeys == 64, "Q, K and V tiles of 64 rows");
constexpr float kLog2e = 1.4426950408889634f;

// Two floats rounded to T, packed as an mma operand register (the lower index low).
template <typename T>
__device__ __forceinline__ uint32_t pack_pair(float lo, float hi) {
  const T a = from_f32<T>(lo), b = from_f32<T>(hi);
  uint16_t ua, ub;
  memcpy(&ua, &a, 2);
  memcpy(&ub, &b, 2);
  return ua | (static_cast<uint32_t>(ub) << 16);
}

// Max and sum over the 4 lanes of a quad (the lanes that share an accumulator row).
__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

template <typename T>
__global__ void __launch_bounds__(kAttnThreads)
    attention_nhwc_mma_kernel(const AttentionNhwcParams p) {
  CM4J_WAIT_PREVIOUS_KERNEL();
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  // q_s holds the query tile, then the output tile (read back as 16-byte chunks); [stage]
  // of k_s / v_s one key tile.
  __shared__ __align__(128) uint4 q_chunks[kAttnTileElems / 8];
  T* const q_s = reinterpret_cast<T*>(q_chunks);
  __shared__ __align__(128) T k_s[2][kAttnTileElems];
  __shared__ __align__(128) T v_s[2][kAttnTileElems];
  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * kAttnQueries;
  const int t = threadIdx.x, lane = t % 32, warp = t / 32;
  const T* qkv = static_cast<const T*>(p.qkv);
  const int key_tiles = kidx::ceil_div(p.hw, kAttnKeys);

  // Rows [pos0, pos0 + 64) of qkv part `part` (0 q, 1 k, 2 v) into `dst`, 16 bytes per
  // cp.async; positions past HW are zero-filled.
  auto load_tile = [&](T* dst, int part, int pos0) {
#pragma unroll
    for (int i = 0; i < 64 * kAttnRowChunks / kAttnThreads; ++i) {
      const kidx::TileCoord c = kidx::tile_coord(t, i, kAttnThreads, kAttnRowChunks);
      const int pos = pos0 + c.row;
      const bool valid = pos < p.hw;
      const T* src =
          qkv + kidx::qkv_offset_nhwc(b, part, h, c.col * 8, valid ? pos : 0, p.channels,
                                      kAttnDim, p.hw);
      sm80::cp_async<16>(&dst[swizzled_offset<kAttnRowChunks>(c.row, c.col)], src, valid);
    }
  };
  auto load_keys = [&](int stage, int tile) {
    load_tile(k_s[stage], 1, tile * kAttnKeys);
    load_tile(v_s[stage], 2, tile * kAttnKeys);
  };

  load_tile(q_s, 0, q0);
  load_keys(0, 0);
  sm80::cp_async_commit();

  // Lane: rows g = lane / 4 and g + 8 of its warp's 16 queries, columns 2 (lane % 4) and + 1
  // of each n8 tile. Row statistics in base-2 units of the scaled scores.
  const float scale_log2 = p.scale * kLog2e;
  uint32_t qf[kAttnDim / 16][4];
  float o[kAttnDim / 8][4];
#pragma unroll
  for (int j = 0; j < kAttnDim / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[j][e] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};

  for (int kt = 0; kt < key_tiles; ++kt) {
    // Tile kt has landed for this thread; the barrier makes every thread's copies visible
    // and ends the reads of the stage the next copies reuse (tile kt - 1's).
    sm80::cp_async_wait<0>();
    __syncthreads();
    if (kt + 1 < key_tiles) load_keys((kt + 1) % 2, kt + 1);
    sm80::cp_async_commit();
    if (kt == 0) {
#pragma unroll
      for (int kk = 0; kk < kAttnDim / 16; ++kk)
        sm80::ldmatrix_x4<false>(qf[kk], &q_s[swizzled_offset<kAttnRowChunks>(
                                             warp * 16 + lane % 16, kk * 2 + lane / 16)]);
    }
    const T* ks = k_s[kt % 2];
    const T* vs = v_s[kt % 2];

    // S = Q K^T: 16 queries x 64 keys. K's [key][dim] rows are the [n][k] operand: lanes
    // 0..7 give keys 0..7 at the step's first 8 dims, 8..15 the next 8 dims, 16..31 the
    // same for keys 8..15: two n8 tiles per load.
    float s[kAttnKeys / 8][4];
#pragma unroll
    for (int j = 0; j < kAttnKeys / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[j][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kAttnDim / 16; ++kk)
#pragma unroll
      for (int j = 0; j < kAttnKeys / 16; ++j) {
        uint32_t r[4];
        sm80::ldmatrix_x4<false>(
            r, &ks[swizzled_offset<kAttnRowChunks>(j * 16 + (lane / 16) * 8 + lane % 8,
                                                   kk * 2 + (lane / 8) % 2)]);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        sm80::mma_m16n8k16<T>(s[2 * j], qf[kk], b0, s[2 * j]);
        sm80::mma_m16n8k16<T>(s[2 * j + 1], qf[kk], b1, s[2 * j + 1]);
      }

    // Online softmax. Keys past HW (the last tile only) score -inf; every tile has a valid
    // key, so the new max is finite and exp2f(-inf) gives the masked ones 0.
    const int key0 = kt * kAttnKeys + (lane % 4) * 2;
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < kAttnKeys / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if (key0 + j * 8 + e % 2 >= p.hw) s[j][e] = -INFINITY;
        tile_max[e / 2] = fmaxf(tile_max[e / 2], s[j][e]);
      }
    float corr[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const float new_max = fmaxf(row_max[r], quad_max(tile_max[r]) * scale_log2);
      corr[r] = exp2f(row_max[r] - new_max);  // 0 on the first tile
      row_max[r] = new_max;
      row_sum[r] *= corr[r];  // this lane's share; the quad's shares are added at the end
    }
#pragma unroll
    for (int j = 0; j < kAttnDim / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[j][e] *= corr[e / 2];
#pragma unroll
    for (int j = 0; j < kAttnKeys / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[j][e] = exp2f(fmaf(s[j][e], scale_log2, -row_max[e / 2]));
        row_sum[e / 2] += s[j][e];
      }

    // O += P V: P's k16 step kk is S's n8 tiles 2 kk and 2 kk + 1. V's [key][dim] rows are
    // the [k][n] operand (.trans): lanes 0..15 give keys 0..15 of the step at 8 dims,
    // 16..31 at the next 8: two n8 tiles per load.
#pragma unroll
    for (int kk = 0; kk < kAttnKeys / 16; ++kk) {
      const uint32_t pf[4] = {pack_pair<T>(s[2 * kk][0], s[2 * kk][1]),
                              pack_pair<T>(s[2 * kk][2], s[2 * kk][3]),
                              pack_pair<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              pack_pair<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int j = 0; j < kAttnDim / 16; ++j) {
        uint32_t r[4];
        sm80::ldmatrix_x4<true>(
            r, &vs[swizzled_offset<kAttnRowChunks>(kk * 16 + lane % 16, j * 2 + lane / 16)]);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        sm80::mma_m16n8k16<T>(o[2 * j], pf, b0, o[2 * j]);
        sm80::mma_m16n8k16<T>(o[2 * j + 1], pf, b1, o[2 * j + 1]);
      }
    }
  }

  // out = O / row sum, rounded once into this warp's rows of q_s (its queries' own rows,
  // read into registers at the first tile), then 16-byte stores of the valid rows.
  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) inv[r] = 1.0f / quad_sum(row_sum[r]);
#pragma unroll
  for (int j = 0; j < kAttnDim / 8; ++j)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = warp * 16 + lane / 4 + 8 * r;
      const uint32_t v = pack_pair<T>(o[j][2 * r] * inv[r], o[j][2 * r + 1] * inv[r]);
      memcpy(&q_s[swizzled_offset<kAttnRowChunks>(row, j) + (lane % 4) * 2], &v, 4);
    }
  __syncthreads();
  T* out = static_cast<T*>(p.out);
#pragma unroll
  for (int i = 0; i < 64 * kAttnRowChunks / kAttnThreads; ++i) {
    const kidx::TileCoord c = kidx::tile_coord(t, i, kAttnThreads, kAttnRowChunks);
    const int pos = q0 + c.row;
    if (pos >= p.hw) continue;
    *reinterpret_cast<uint4*>(
        out + kidx::attn_out_offset_nhwc(b, h, c.col * 8, pos, p.channels, kAttnDim, p.hw)) =
        q_chunks[swizzled_offset<kAttnRowChunks>(c.row, c.col) / 8];
  }
#else
  __trap();  // tensor-core path built for an architecture below sm_80
#endif
}

}  // namespace

bool attention_nhwc_mma_supports(const AttentionNhwcParams& p) {
  // A positive scale: the running max is taken over the raw scores, then scaled.
  return p.batch >= 1 && p.batch <= 65535 && p.heads >= 1 && p.heads <= 65535 && p.hw >= 1 &&
         p.dim_head == kAttnDim && p.channels == p.heads * kAttnDim && p.scale > 0.0f &&
         p.qkv && p.out &&
         sm80::aligned16(p.qkv) && sm80::aligned16(p.out) &&
         (p.type == HalfType::kF16 || p.type == HalfType::kBF16);
}

cudaError_t attention_nhwc_mma_forward(const AttentionNhwcParams& p, cudaStream_t stream) {
  if (!attention_nhwc_mma_supports(p)) return cudaErrorInvalidValue;
  const dim3 grid(kidx::ceil_div(p.hw, kAttnQueries), p.heads, p.batch);
  if (p.type == HalfType::kF16)
    CM4J_LAUNCH(attention_nhwc_mma_kernel<__half>, grid, kAttnThreads, stream, p);
  else
    CM4J_LAUNCH(attention_nhwc_mma_kernel<__nv_bfloat16>, grid, kAttnThreads, stream, p);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace cm4j

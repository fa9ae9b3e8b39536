// The x86 kernels of the direct16 conv (conv_direct16.h): the input packing (a fused group
// norm's affine map and SiLU, AVX-512-BF16 rounding), the AMX tile kernel and the epilogue.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "cpu/bf16_x86.h"
#include "cpu/conv_direct16.h"
#include "cpu/exp_avx512.h"
#include "cpu/gemm_epilogue_avx512.h"

namespace cm4j {
namespace cpu {

namespace {

// Row y of a source plane ([h_in, w_in] fp32) at padded-grid columns pad..pad+w_v, as
// 16-lane chunks; lanes past the row are zero. Upsampled rows read each value twice.
__attribute__((target("avx512f,avx512bw"))) inline __m512 load_chunk(const float* row, int x,
                                                                     int n, bool upsample) {
  if (row == nullptr) return _mm512_setzero_ps();
  const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1);
  if (!upsample) return _mm512_maskz_loadu_ps(mask, row + x);
  const int src_n = (n + 1) / 2;
  const __m512 half = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << src_n) - 1), row + x / 2);
  const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  return _mm512_maskz_permutexvar_ps(mask, dup, half);
}

}  // namespace

__attribute__((target("avx512f,avx512bw,avx512bf16"))) void pack_direct16_weight_avx512bf16(
    const float* w, int c_out, int c_in, int kernel, uint16_t* dst) {
  const int taps = kernel * kernel;
  const int blocks = direct16_c_pad(c_in) / kKB16;
  const int panels = (c_out + kMR16 - 1) / kMR16;
  // Lane i of a gather reads channel c0 + i of one tap: stride `taps` floats.
  const __m512i index = _mm512_mullo_epi32(
      _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(taps));
  for (int p = 0; p < panels; ++p)
    for (int cb = 0; cb < blocks; ++cb)
      for (int tap = 0; tap < taps; ++tap) {
        uint16_t* blk = dst + ((static_cast<size_t>(p) * blocks + cb) * taps + tap) * kMR16 * kKB16;
        for (int r = 0; r < kMR16; ++r) {
          const int row = p * kMR16 + r, c0 = cb * kKB16;
          __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
          if (row < c_out) {
            const float* src = w + (static_cast<size_t>(row) * c_in + c0) * taps + tap;
            const int n = c_in - c0;  // channels left in this row
            const __mmask16 m0 = n >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << std::max(n, 0)) - 1);
            const __mmask16 m1 = n >= 32 ? 0xFFFF : n <= 16 ? 0 : static_cast<__mmask16>((1u << (n - 16)) - 1);
            lo = _mm512_mask_i32gather_ps(lo, m0, index, src, 4);
            hi = _mm512_mask_i32gather_ps(hi, m1, index, src + 16 * taps, 4);
          }
          _mm512_store_si512(blk + r * kKB16, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
      }
}

// A channel's fused group norm (ConvArgs::norm): its affine map, applied to the loaded
// values by affine_act16, exactly as group_norm would have written them.
namespace {

struct ChannelNorm {
  __m512 center, mul, add;
};

__attribute__((target("avx512f"))) inline ChannelNorm channel_norm(const float* coeffs, int c_in,
                                                                   int c) {
  return {_mm512_set1_ps(coeffs[c]), _mm512_set1_ps(coeffs[c_in + c]),
          _mm512_set1_ps(coeffs[2 * c_in + c])};
}

// load_chunk, then the channel's norm (when there is one) on the loaded values; lanes past
// the row are dropped by the caller's masked store.
__attribute__((target("avx512f,avx512bw"))) inline __m512 load_chunk_normed(
    const float* row, int x, int n, bool upsample, const ChannelNorm* norm, bool silu) {
  const __m512 v = load_chunk(row, x, n, upsample);
  return norm && row ? affine_act16(v, norm->center, norm->mul, norm->add, silu) : v;
}

}  // namespace

__attribute__((target("avx512f,avx512bw,avx512bf16"))) void pack_direct16_pair(
    const Direct16Geometry& g, const ConvParams& p, const ConvArgs& a, int image_index, int cp,
    uint16_t* image) {
  const int64_t plane_size = static_cast<int64_t>(g.h_in) * g.w_in;
  const auto plane_of = [&](int c) -> const float* {
    if (c >= g.c_in) return nullptr;
    return c < p.c_in1
               ? a.src1 + (static_cast<int64_t>(image_index) * p.c_in1 + c) * plane_size
               : a.src2 + (static_cast<int64_t>(image_index) * p.c_in2 + c - p.c_in1) * plane_size;
  };
  const float* lo = plane_of(2 * cp);  // null: both channels are padding
  const float* hi = plane_of(2 * cp + 1);
  const float* coeffs = a.norm ? a.norm + static_cast<int64_t>(image_index) * 3 * g.c_in : nullptr;
  ChannelNorm lo_norm{}, hi_norm{};
  if (coeffs && lo) lo_norm = channel_norm(coeffs, g.c_in, 2 * cp);
  if (coeffs && hi) hi_norm = channel_norm(coeffs, g.c_in, 2 * cp + 1);
  const ChannelNorm* lo_n = coeffs ? &lo_norm : nullptr;
  const ChannelNorm* hi_n = coeffs ? &hi_norm : nullptr;
  uint32_t* pair = reinterpret_cast<uint32_t*>(image);  // one (lo, hi) bf16 pair per position
  const int h_v = g.hp - 2 * g.pad, w_v = g.wp - 2 * g.pad;
  const int shift = g.upsample ? 1 : 0;
  for (int y = 0; y < g.hp; ++y) {
    uint32_t* row = pair + g.row_offset(cp, y);
    const int iy = y - g.pad;
    if (lo == nullptr || iy < 0 || iy >= h_v) {
      std::memset(row, 0, sizeof(uint32_t) * g.wp);
      continue;
    }
    const int64_t at = static_cast<int64_t>(iy >> shift) * g.w_in;
    const float* lo_row = lo + at;
    const float* hi_row = hi ? hi + at : nullptr;
    std::memset(row, 0, sizeof(uint32_t) * g.pad);
    std::memset(row + g.pad + w_v, 0, sizeof(uint32_t) * (g.wp - g.pad - w_v));
    for (int x = 0; x < w_v; x += 16) {
      const int n = std::min(16, w_v - x);
      const __m512i pairs = pair16(load_chunk_normed(lo_row, x, n, g.upsample, lo_n, p.norm_silu),
                                   load_chunk_normed(hi_row, x, n, g.upsample, hi_n, p.norm_silu));
      _mm512_mask_storeu_epi32(row + g.pad + x, static_cast<__mmask16>((1u << n) - 1), pairs);
    }
  }
  if (!g.row_halves) {  // the planar layout's slack after the plane
    const int64_t used = static_cast<int64_t>(g.hp) * g.wp;
    std::memset(pair + g.row_offset(cp, 0) + used, 0, sizeof(uint32_t) * (g.pair_step - used));
  }
}

// Four 16 x 16 accumulator tiles (rows 0-15 / 16-31 x half 0 / half 1), fed per channel
// block and tap by two A tiles (the panel's packed weights) and two B tiles loaded straight
// from the packed input, one channel pair per tile row.
__attribute__((target("amx-tile,amx-bf16,avx512f"))) void direct16_tile_amx(
    const Direct16Geometry& g, const uint16_t* a, const uint16_t* x, int64_t o0, int64_t o1,
    float* acc) {
  amx_configure_tiles();
  const int64_t stride = g.pair_step * 4;  // bytes between B tile rows
  const int blocks = g.c_pad / kKB16;
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int cb = 0; cb < blocks; ++cb) {
    const uint16_t* xb = x + cb * g.block_step * 2;
    const uint16_t* ab = a + static_cast<size_t>(cb) * g.taps * kMR16 * kKB16;
    for (int tap = 0; tap < g.taps; ++tap, ab += kMR16 * kKB16) {
      const int off = g.tap_offset[tap];
      _tile_loadd(4, ab, 64);
      _tile_loadd(6, xb + 2 * (o0 + off), stride);
      _tile_loadd(7, xb + 2 * (o1 + off), stride);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_loadd(5, ab + 16 * kKB16, 64);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, acc, kNR * 4);
  _tile_stored(1, acc + 16, kNR * 4);
  _tile_stored(2, acc + 16 * kNR, kNR * 4);
  _tile_stored(3, acc + 16 * kNR + 16, kNR * 4);
}

// The same product with VDPBF16PS, for CPUs with AVX-512-BF16 but no AMX: 8-row sub-tiles
// of 2 x 16 fp32 accumulators; per channel pair one 64-byte row of each half (the B tile
// row AMX would load) and one broadcast (row, pair) of the weights per row.
__attribute__((target("avx512f,avx512bf16"))) void direct16_tile_avx512bf16(
    const Direct16Geometry& g, const uint16_t* a, const uint16_t* x, int64_t o0, int64_t o1,
    float* acc) {
  constexpr int kSub = 8;
  const int blocks = g.c_pad / kKB16;
  const int64_t pair = g.pair_step * 2;  // bf16 elements between channel pairs
  for (int r0 = 0; r0 < kMR16; r0 += kSub) {
    __m512 s[kSub][2];
#pragma GCC unroll 8
    for (int r = 0; r < kSub; ++r) s[r][0] = s[r][1] = _mm512_setzero_ps();
    for (int cb = 0; cb < blocks; ++cb) {
      const uint16_t* xb = x + cb * g.block_step * 2;
      const uint16_t* ab = a + static_cast<size_t>(cb) * g.taps * kMR16 * kKB16 + r0 * kKB16;
      for (int tap = 0; tap < g.taps; ++tap, ab += kMR16 * kKB16) {
        dot_8x32(ab, xb + 2 * (o0 + g.tap_offset[tap]), xb + 2 * (o1 + g.tap_offset[tap]), pair, s);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < kSub; ++r) {
      _mm512_store_ps(acc + (r0 + r) * kNR, s[r][0]);
      _mm512_store_ps(acc + (r0 + r) * kNR + 16, s[r][1]);
    }
  }
}

__attribute__((target("avx512f"))) void direct16_store(const Direct16Geometry& g,
                                                      const OutSpec& out, int image, int row0,
                                                      int rows, const float* acc, int col0,
                                                      int count, int start) {
  const __m512 scale = _mm512_set1_ps(out.scale);
  for (int j = 0; j < count;) {
    const int n = start + j;
    const int oy = n / g.wp, ox = n % g.wp;
    if (oy >= g.h_out) break;
    if (ox >= g.w_out) {  // pad columns: skip to the next row
      j += g.wp - ox;
      continue;
    }
    const int len = std::min(count - j, g.w_out - ox);
    const int64_t offset = image * out.image_stride + row0 * out.ldc +
                           static_cast<int64_t>(oy) * g.w_out + ox;
    TileOut t;
    t.c = out.c + offset;
    t.ldc = out.ldc;
    t.rows = rows;
    t.cols = len;
    t.accumulate = false;
    t.finish = true;
    t.bias = out.bias ? out.bias + image * out.bias_image_stride + row0 : nullptr;
    t.residual = out.residual ? out.residual + offset : nullptr;
    t.scale = out.scale;
    const __mmask16 m0 = static_cast<__mmask16>((1u << std::min(len, 16)) - 1);
    const __mmask16 m1 = static_cast<__mmask16>((1u << std::max(len - 16, 0)) - 1);
    for (int r = 0; r < rows; ++r) {
      const float* a = acc + r * kNR + col0 + j;
      avx512_store_row(t, r, _mm512_maskz_loadu_ps(m0, a), _mm512_maskz_loadu_ps(m1, a + 16), m0,
                       m1, scale);
    }
    j += len;
  }
}

}  // namespace cpu
}  // namespace cm4j

#endif  // x86

// The bf16 tile kernels for x86: AMX-BF16 (four 16 x 16 fp32 accumulator tiles cover the
// 32 x 32 tile; per 32-deep k-block two A tiles and two B tiles feed four TDPBF16PS) and
// AVX-512-BF16 (VDPBF16PS on 8-row sub-tiles). Each function carries its own target
// attribute, so the library still loads on any x86-64; isa.cpp decides at run time whether
// these are called (and has asked Linux for the AMX tile state first).
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <cstring>

#include "cpu/bf16_x86.h"
#include "cpu/gemm_bf16.h"
#include "cpu/gemm_epilogue_avx512.h"

namespace cm4j {
namespace cpu {

namespace {

// acc [32][32] fp32 (row stride 32) into C with the epilogue, valid rows/cols only.
__attribute__((target("avx512f"))) void epilogue16(const float* acc, const TileOut& o) {
  __mmask16 m0, m1;
  avx512_col_masks(o.cols, &m0, &m1);
  const __m512 scale = _mm512_set1_ps(o.scale);
  for (int r = 0; r < o.rows; ++r)
    avx512_store_row(o, r, _mm512_load_ps(acc + r * kNR), _mm512_load_ps(acc + r * kNR + 16),
                     m0, m1, scale);
}

struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// The tile configuration is per thread; every tile used here is 16 rows x 64 bytes.
thread_local bool t_tiles_configured = false;

}  // namespace

__attribute__((target("amx-tile"))) void amx_configure_tiles() {
  if (t_tiles_configured) return;
  TileConfig cfg;
  std::memset(&cfg, 0, sizeof(cfg));
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  // GCC's _tile_loadconfig tells the compiler it reads only the first 8 bytes of cfg, so
  // without this barrier the stores above may be dropped as dead (seen with GCC 12 once
  // this function was no longer inlined): the tiles then stay unconfigured and the first
  // tile instruction faults.
  __asm__ __volatile__("" : : "r"(&cfg) : "memory");
  _tile_loadconfig(&cfg);
  t_tiles_configured = true;
}

__attribute__((target("amx-tile,amx-bf16,avx512f"))) void tile16_amx(int kc, const uint16_t* a,
                                                                    const uint16_t* b,
                                                                    const TileOut& o) {
  amx_configure_tiles();
  // A whole tile's partial sums go straight between C and the accumulator tiles; only the
  // last k-block (and partial tiles) runs the epilogue from a stack copy.
  const bool full = o.rows == kMR16 && o.cols == kNR;
  const int64_t ldc_bytes = o.ldc * static_cast<int64_t>(sizeof(float));
  if (full && o.accumulate) {
    _tile_loadd(0, o.c, ldc_bytes);
    _tile_loadd(1, o.c + 16, ldc_bytes);
    _tile_loadd(2, o.c + 16 * o.ldc, ldc_bytes);
    _tile_loadd(3, o.c + 16 * o.ldc + 16, ldc_bytes);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int kb = 0; kb < kc; kb += kKB16) {
    const uint16_t* ab = a + static_cast<size_t>(kb) * kMR16;  // [32 rows][32 k]
    const uint16_t* bb = b + static_cast<size_t>(kb) * kNR;    // [2][16][32]
    _tile_loadd(4, ab, 64);
    _tile_loadd(6, bb, 64);
    _tile_loadd(7, bb + 512, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_loadd(5, ab + 16 * kKB16, 64);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  if (full && !o.finish) {
    _tile_stored(0, o.c, ldc_bytes);
    _tile_stored(1, o.c + 16, ldc_bytes);
    _tile_stored(2, o.c + 16 * o.ldc, ldc_bytes);
    _tile_stored(3, o.c + 16 * o.ldc + 16, ldc_bytes);
    return;
  }
  alignas(64) float acc[kMR16 * kNR];
  _tile_stored(0, acc, kNR * 4);
  _tile_stored(1, acc + 16, kNR * 4);
  _tile_stored(2, acc + 16 * kNR, kNR * 4);
  _tile_stored(3, acc + 16 * kNR + 16, kNR * 4);
  if (full && o.accumulate) {
    TileOut done = o;  // C's partial sum is already in acc
    done.accumulate = false;
    epilogue16(acc, done);
  } else {
    epilogue16(acc, o);
  }
}

__attribute__((target("avx512f,avx512bf16"))) void tile16_avx512bf16(int kc, const uint16_t* a,
                                                                    const uint16_t* b,
                                                                    const TileOut& o) {
  alignas(64) float acc[kMR16 * kNR];
  constexpr int kSub = 8;
  for (int r0 = 0; r0 < o.rows; r0 += kSub) {
    __m512 s[kSub][2];
#pragma GCC unroll 8
    for (int r = 0; r < kSub; ++r) s[r][0] = s[r][1] = _mm512_setzero_ps();
    for (int kb = 0; kb < kc; kb += kKB16) {
      const uint16_t* ab = a + static_cast<size_t>(kb) * kMR16 + r0 * kKB16;
      const uint16_t* bb = b + static_cast<size_t>(kb) * kNR;
      dot_8x32(ab, bb, bb + 512, 32, s);
    }
#pragma GCC unroll 8
    for (int r = 0; r < kSub; ++r) {
      _mm512_store_ps(acc + (r0 + r) * kNR, s[r][0]);
      _mm512_store_ps(acc + (r0 + r) * kNR + 16, s[r][1]);
    }
  }
  epilogue16(acc, o);
}

// Two fp32 rows (k, k+1) of 16 columns -> 16 bf16 pairs, round to nearest even.
__attribute__((target("avx512f"))) static inline __m512i round_pair(__m512i lo, __m512i hi) {
  const __m512i bias = _mm512_set1_epi32(0x7FFF);
  const __m512i one = _mm512_set1_epi32(1);
  lo = _mm512_add_epi32(lo, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_maskz_srli_epi32(0xFFFF, lo, 16), one)));
  hi = _mm512_add_epi32(hi, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_maskz_srli_epi32(0xFFFF, hi, 16), one)));
  return _mm512_or_si512(_mm512_maskz_srli_epi32(0xFFFF, lo, 16),
                         _mm512_and_si512(hi, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

__attribute__((target("avx512f"))) void convert_b16_avx512(const float* src, int rows, int kc,
                                                           uint16_t* dst) {
  const __m512i zero = _mm512_setzero_si512();
  for (int k = 0; k < kc; k += 2) {
    uint16_t* blk = dst + static_cast<size_t>(k / kKB16) * kKB16 * kNR + ((k % kKB16) / 2) * 32;
    for (int half = 0; half < 2; ++half) {
      const __m512i lo = k < rows ? _mm512_load_si512(src + k * kNR + half * 16) : zero;
      const __m512i hi = k + 1 < rows ? _mm512_load_si512(src + (k + 1) * kNR + half * 16) : zero;
      _mm512_store_si512(blk + half * 512, round_pair(lo, hi));
    }
  }
}

}  // namespace cpu
}  // namespace cm4j

#endif  // x86

// The AVX2+FMA tile kernel. Sixteen ymm registers hold only a 6 x 16 block of C (12
// accumulators), so the 12 x 32 tile is done as four sub-tiles that read the packed
// panels with their full strides (kMR for A, kNR for B).
// x86 only: elsewhere isa.cpp never selects this path and nothing here is built.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "cpu/gemm.h"

namespace cm4j {
namespace cpu {

namespace {

constexpr int kSubM = 6;
constexpr int kSubN = 16;

// Lanes [0, n) of a ymm store mask (n clamped to 0..8).
__attribute__((target("avx2,fma"))) __m256i lane_mask(int n) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), iota);
}

// One 6 x 16 sub-tile at (row0, col0) of the tile; rows/cols are its valid extent.
__attribute__((target("avx2,fma"))) void sub_tile(int kc, const float* a, const float* b,
                                                  const TileOut& o, int row0, int col0) {
  __m256 acc[kSubM][2];
#pragma GCC unroll 6
  for (int r = 0; r < kSubM; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  a += row0;
  b += col0;
  for (int k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < kSubM; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
    a += kMR;
    b += kNR;
  }

  const int rows = o.rows - row0 < kSubM ? o.rows - row0 : kSubM;
  const int cols = o.cols - col0;
  const __m256i m0 = lane_mask(cols);
  const __m256i m1 = lane_mask(cols - 8);
  const __m256 scale = _mm256_set1_ps(o.scale);
#pragma GCC unroll 6
  for (int r = 0; r < kSubM; ++r) {
    if (r >= rows) break;
    const int64_t at = (row0 + r) * o.ldc + col0;
    float* c = o.c + at;
    __m256 v0 = acc[r][0];
    __m256 v1 = acc[r][1];
    if (o.accumulate) {
      v0 = _mm256_add_ps(v0, _mm256_maskload_ps(c, m0));
      v1 = _mm256_add_ps(v1, _mm256_maskload_ps(c + 8, m1));
    }
    if (o.finish) {
      if (o.bias) {
        const __m256 bias = _mm256_set1_ps(o.bias[row0 + r]);
        v0 = _mm256_add_ps(v0, bias);
        v1 = _mm256_add_ps(v1, bias);
      }
      if (o.residual) {
        const float* res = o.residual + at;
        v0 = _mm256_add_ps(v0, _mm256_maskload_ps(res, m0));
        v1 = _mm256_add_ps(v1, _mm256_maskload_ps(res + 8, m1));
      }
      v0 = _mm256_mul_ps(v0, scale);
      v1 = _mm256_mul_ps(v1, scale);
    }
    _mm256_maskstore_ps(c, m0, v0);
    _mm256_maskstore_ps(c + 8, m1, v1);
  }
}

}  // namespace

__attribute__((target("avx2,fma"))) void tile_avx2(int kc, const float* a, const float* b,
                                                   const TileOut& o) {
  for (int row0 = 0; row0 < o.rows; row0 += kSubM)
    for (int col0 = 0; col0 < o.cols; col0 += kSubN) sub_tile(kc, a, b, o, row0, col0);
}

}  // namespace cpu
}  // namespace cm4j

#endif  // x86

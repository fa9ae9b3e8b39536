// The AVX-512 epilogue shared by the fp32 tile kernel (gemm_avx512.cpp) and the bf16 tile
// kernels (gemm_bf16_x86.cpp): one row of a kMR x kNR tile, as two 16-float vectors, into
// C with + C (later k-blocks), + bias, + residual, * scale. Partial tiles use masked memory
// access; masked-off lanes are never touched, so nothing past the tile is read.
// x86 only, and only for callers that are themselves compiled for AVX-512 (the helpers
// carry the target attribute and are always inlined into them).
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "cpu/gemm.h"

namespace cm4j {
namespace cpu {

// Lane masks for the two 16-column halves of a tile with `cols` valid columns.
__attribute__((target("avx512f"), always_inline)) inline void avx512_col_masks(
    int cols, __mmask16* m0, __mmask16* m1) {
  *m0 = cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << cols) - 1);
  *m1 = cols >= 32   ? 0xFFFF
        : cols <= 16 ? 0
                     : static_cast<__mmask16>((1u << (cols - 16)) - 1);
}

// Row r of the tile (accumulators v0, v1) into C with the epilogue.
__attribute__((target("avx512f"), always_inline)) inline void avx512_store_row(
    const TileOut& o, int r, __m512 v0, __m512 v1, __mmask16 m0, __mmask16 m1,
    __m512 scale) {
  float* c = o.c + r * o.ldc;
  if (o.accumulate) {
    v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, c));
    v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, c + 16));
  }
  if (o.finish) {
    if (o.bias) {
      const __m512 bias = _mm512_set1_ps(o.bias[r]);
      v0 = _mm512_add_ps(v0, bias);
      v1 = _mm512_add_ps(v1, bias);
    }
    if (o.residual) {
      const float* res = o.residual + r * o.ldc;
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, res));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, res + 16));
    }
    v0 = _mm512_mul_ps(v0, scale);
    v1 = _mm512_mul_ps(v1, scale);
  }
  _mm512_mask_storeu_ps(c, m0, v0);
  _mm512_mask_storeu_ps(c + 16, m1, v1);
}

}  // namespace cpu
}  // namespace cm4j

#endif  // x86

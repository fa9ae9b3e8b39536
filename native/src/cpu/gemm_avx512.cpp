// The AVX-512 tile kernel: 12 x 32 floats of C live in 24 zmm accumulators; per k it loads
// two vectors of B and broadcasts 12 values of A straight from memory into the FMAs.
// Only this function is compiled for AVX-512 (target attribute), so the library still
// loads on any x86-64; isa.cpp decides at run time whether it is called.
// x86 only: elsewhere isa.cpp never selects this path and nothing here is built.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "cpu/gemm.h"
#include "cpu/gemm_epilogue_avx512.h"

namespace cm4j {
namespace cpu {

__attribute__((target("avx512f"))) void tile_avx512(int kc, const float* a, const float* b,
                                                    const TileOut& o) {
  __m512 acc[kMR][2];
#pragma GCC unroll 12
  for (int r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();

  for (int k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b);  // B panels are 64-byte aligned
    const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
    for (int r = 0; r < kMR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
    }
    a += kMR;
    b += kNR;
  }

  // Partial tiles (the last columns of an image, the last rows of C) use masked memory
  // access; masked-off lanes are never touched, so nothing past the tile is read.
  __mmask16 m0, m1;
  avx512_col_masks(o.cols, &m0, &m1);
  const __m512 scale = _mm512_set1_ps(o.scale);
#pragma GCC unroll 12
  for (int r = 0; r < kMR; ++r) {
    if (r >= o.rows) break;
    avx512_store_row(o, r, acc[r][0], acc[r][1], m0, m1, scale);
  }
}

}  // namespace cpu
}  // namespace cm4j

#endif  // x86

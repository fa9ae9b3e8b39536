// x86 helpers shared by the bf16 kernels: fp32 -> bf16 pairs in registers, and the AMX
// tile configuration. Only for callers compiled for the same targets (the helpers carry
// the target attribute and are inlined into them).
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <cstdint>

namespace cm4j {
namespace cpu {

// Rounds 16 fp32 lanes of rows k (lo) and k+1 (hi) to bf16 (VCVTNE2PS2BF16: round to
// nearest even) and interleaves them into 16 (lo, hi) pairs, one per 32-bit lane, with one
// 16-bit permute: the VNNI order of an AMX B tile row and of a VDPBF16PS operand.
__attribute__((target("avx512f,avx512bw,avx512bf16"), always_inline)) inline __m512i pair16(
    __m512 lo_f, __m512 hi_f) {
  // cvtne2ps(a, b): elements 0..15 from b, 16..31 from a; interleave to (lo_i, hi_i) pairs.
  const __m512i packed = (__m512i)_mm512_cvtne2ps_pbh(hi_f, lo_f);
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, packed);
}

// The AVX-512-BF16 kernels' inner product, 8 rows x 32 columns over one 32-deep k block:
// s[r][h] += sum over pairs i of a[r][2i, 2i+1] . B_h[i], where a holds 8 rows of 32 bf16
// (row stride 32) and B_h's pair row i is 16 columns x 2 bf16 at b_h + i * step (the VNNI
// order of an AMX B tile row).
__attribute__((target("avx512f,avx512bf16"), always_inline)) inline void dot_8x32(
    const uint16_t* a, const uint16_t* b0, const uint16_t* b1, int64_t step, __m512 (&s)[8][2]) {
  for (int i = 0; i < 16; ++i) {
    const __m512bh v0 = (__m512bh)_mm512_loadu_si512(b0 + i * step);
    const __m512bh v1 = (__m512bh)_mm512_loadu_si512(b1 + i * step);
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) {
      int32_t pair;
      __builtin_memcpy(&pair, a + r * 32 + 2 * i, 4);
      const __m512bh ar = (__m512bh)_mm512_set1_epi32(pair);
      s[r][0] = _mm512_dpbf16_ps(s[r][0], ar, v0);
      s[r][1] = _mm512_dpbf16_ps(s[r][1], ar, v1);
    }
  }
}

// Loads the calling thread's AMX tile configuration (eight tiles of 16 rows x 64 bytes)
// the first time it is called on that thread; every AMX kernel calls it first.
void amx_configure_tiles();

}  // namespace cpu
}  // namespace cm4j

#endif  // x86

// x86 helpers shared by the bf16 kernels: fp32 -> bf16 pairs in registers, and the AMX
// tile configuration. Only for callers compiled for the same targets (the helpers carry
// the target attribute and are inlined into them).
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

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

// Loads the calling thread's AMX tile configuration (eight tiles of 16 rows x 64 bytes)
// the first time it is called on that thread; every AMX kernel calls it first.
void amx_configure_tiles();

}  // namespace cpu
}  // namespace cm4j

#endif  // x86

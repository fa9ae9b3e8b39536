// exp of 16 floats with AVX-512F: exp(x) = 2^n * e^r with n = round(x / ln 2) and
// |r| <= ln2 / 2, e^r by its degree-7 Taylor polynomial (truncation < 1e-8 relative),
// 2^n applied with scalef, which also flushes very negative inputs to 0 cleanly. For the
// softmax and SiLU loops of callers compiled for AVX-512 (inlined into them).
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

// GCC 12's _mm512_undefined_ps (the pass-through of max/min/scalef) initializes a value
// from itself, which -Wmaybe-uninitialized reports at every use; the warning is spurious.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace cm4j {
namespace cpu {

__attribute__((target("avx512f"), always_inline)) inline __m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.72f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - n ln2, with ln2 split in two so n * ln2_hi is exact.
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// (x - center) * a + b, then SiLU v / (1 + exp(-v)) when silu: group norm's output map, the
// same operations wherever it runs (the norm's own loop, a conv's fused input packing), so
// both give the same bits.
__attribute__((target("avx512f"), always_inline)) inline __m512 affine_act16(
    __m512 x, __m512 center, __m512 a, __m512 b, bool silu) {
  const __m512 v = _mm512_fmadd_ps(_mm512_sub_ps(x, center), a, b);
  if (!silu) return v;
  const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), v));
  return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

}  // namespace cpu
}  // namespace cm4j

#endif  // x86

// AVX-512 versions of the exp loops. exp(x) = 2^n * e^r with n = round(x / ln 2) and
// |r| <= ln2 / 2, e^r by its degree-7 Taylor polynomial (truncation < 1e-8 relative),
// 2^n applied with scalef, which also flushes very negative inputs to 0 cleanly.
// x86 only: elsewhere isa.cpp never selects this path and nothing here is built.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "cpu/vecmath.h"

// GCC 12's _mm512_undefined_ps (the pass-through of max/min/scalef) initializes a value
// from itself, which -Wmaybe-uninitialized reports at every use; the warning is spurious.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace cm4j {
namespace cpu {

namespace {

#define CM4J_AVX512 __attribute__((target("avx512f")))

CM4J_AVX512 inline __m512 exp16(__m512 x) {
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

CM4J_AVX512 inline __mmask16 tail_mask(size_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1);
}

CM4J_AVX512 void affine_act(const float* x, float* y, size_t n, float center, float a, float b,
                            bool silu) {
  const __m512 vc = _mm512_set1_ps(center);
  const __m512 va = _mm512_set1_ps(a);
  const __m512 vb = _mm512_set1_ps(b);
  const __m512 one = _mm512_set1_ps(1.0f);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    __m512 v = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vc), va, vb);
    if (silu) {
      const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), v));
      v = _mm512_div_ps(v, _mm512_add_ps(one, e));
    }
    _mm512_mask_storeu_ps(y + i, m, v);
  }
}

CM4J_AVX512 void softmax_columns(float* s, int rows, int cols, int64_t ld, float* max,
                                 float* inv_sum) {
  for (int i = 0; i < cols; i += 16) {
    const __mmask16 m = tail_mask(cols - i);
    __m512 mx = _mm512_maskz_loadu_ps(m, s + i);
    for (int j = 1; j < rows; ++j) mx = _mm512_max_ps(mx, _mm512_maskz_loadu_ps(m, s + j * ld + i));
    _mm512_mask_storeu_ps(max + i, m, mx);
    _mm512_mask_storeu_ps(inv_sum + i, m, _mm512_setzero_ps());
  }
  // Row-major second pass: each row of s is read and written once, contiguously.
  for (int j = 0; j < rows; ++j) {
    float* row = s + j * ld;
    for (int i = 0; i < cols; i += 16) {
      const __mmask16 m = tail_mask(cols - i);
      const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + i),
                                           _mm512_maskz_loadu_ps(m, max + i)));
      _mm512_mask_storeu_ps(row + i, m, e);
      _mm512_mask_storeu_ps(inv_sum + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, inv_sum + i), e));
    }
  }
  for (int i = 0; i < cols; i += 16) {
    const __mmask16 m = tail_mask(cols - i);
    const __m512 sum = _mm512_maskz_loadu_ps(m, inv_sum + i);
    _mm512_mask_storeu_ps(inv_sum + i, m, _mm512_div_ps(_mm512_set1_ps(1.0f), sum));
  }
}

}  // namespace

const VecKernels kVecAvx512 = {affine_act, softmax_columns};

}  // namespace cpu
}  // namespace cm4j

#endif  // x86

// AVX2 versions of the exp loops: the same range reduction and polynomial as the AVX-512
// file, with 2^n built in the exponent bits (inputs clamped so n stays a normal exponent).
// x86 only: elsewhere isa.cpp never selects this path and nothing here is built.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "cpu/vecmath.h"

namespace cm4j {
namespace cpu {

namespace {

#define CM4J_AVX2 __attribute__((target("avx2,fma")))

CM4J_AVX2 inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i pow2n =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(pow2n));
}

CM4J_AVX2 inline __m256i tail_mask(size_t n) {
  const int k = n >= 8 ? 8 : static_cast<int>(n);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

CM4J_AVX2 void affine_act(const float* x, float* y, size_t n, float center, float a, float b,
                            bool silu) {
  const __m256 vc = _mm256_set1_ps(center);
  const __m256 va = _mm256_set1_ps(a);
  const __m256 vb = _mm256_set1_ps(b);
  const __m256 one = _mm256_set1_ps(1.0f);
  for (size_t i = 0; i < n; i += 8) {
    const __m256i m = tail_mask(n - i);
    __m256 v = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vc), va, vb);
    if (silu) {
      const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), v));
      v = _mm256_div_ps(v, _mm256_add_ps(one, e));
    }
    _mm256_maskstore_ps(y + i, m, v);
  }
}

CM4J_AVX2 void softmax_columns(float* s, int rows, int cols, int64_t ld, float* max,
                               float* inv_sum) {
  for (int i = 0; i < cols; i += 8) {
    const __m256i m = tail_mask(cols - i);
    __m256 mx = _mm256_maskload_ps(s + i, m);
    for (int j = 1; j < rows; ++j) mx = _mm256_max_ps(mx, _mm256_maskload_ps(s + j * ld + i, m));
    _mm256_maskstore_ps(max + i, m, mx);
    _mm256_maskstore_ps(inv_sum + i, m, _mm256_setzero_ps());
  }
  for (int j = 0; j < rows; ++j) {
    float* row = s + j * ld;
    for (int i = 0; i < cols; i += 8) {
      const __m256i m = tail_mask(cols - i);
      const __m256 e =
          exp8(_mm256_sub_ps(_mm256_maskload_ps(row + i, m), _mm256_maskload_ps(max + i, m)));
      _mm256_maskstore_ps(row + i, m, e);
      _mm256_maskstore_ps(inv_sum + i, m, _mm256_add_ps(_mm256_maskload_ps(inv_sum + i, m), e));
    }
  }
  for (int i = 0; i < cols; i += 8) {
    const __m256i m = tail_mask(cols - i);
    const __m256 sum = _mm256_maskload_ps(inv_sum + i, m);
    _mm256_maskstore_ps(inv_sum + i, m, _mm256_div_ps(_mm256_set1_ps(1.0f), sum));
  }
}

// Two 4-double accumulators per 8 floats; the tail in scalar.
CM4J_AVX2 double sum(const float* x, size_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
    a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(a0, a1));
  double total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; i < n; ++i) total += x[i];
  return total;
}

CM4J_AVX2 double centered_squares(const float* x, size_t n, double mean) {
  const __m256d m = _mm256_set1_pd(mean);
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), m);
    const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)), m);
    a0 = _mm256_fmadd_pd(d0, d0, a0);
    a1 = _mm256_fmadd_pd(d1, d1, a1);
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(a0, a1));
  double total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; i < n; ++i) total += (x[i] - mean) * (x[i] - mean);
  return total;
}

}  // namespace

const VecKernels kVecAvx2 = {affine_act, softmax_columns, sum, centered_squares};

}  // namespace cpu
}  // namespace cm4j

#endif  // x86

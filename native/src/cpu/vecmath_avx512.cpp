// AVX-512 versions of the exp loops (exp16: exp_avx512.h).
// x86 only: elsewhere isa.cpp never selects this path and nothing here is built.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "cpu/exp_avx512.h"
#include "cpu/vecmath.h"

namespace cm4j {
namespace cpu {

namespace {

#define CM4J_AVX512 __attribute__((target("avx512f")))

CM4J_AVX512 inline __mmask16 tail_mask(size_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1);
}

CM4J_AVX512 void affine_act(const float* x, float* y, size_t n, float center, float a, float b,
                            bool silu) {
  const __m512 vc = _mm512_set1_ps(center);
  const __m512 va = _mm512_set1_ps(a);
  const __m512 vb = _mm512_set1_ps(b);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, affine_act16(_mm512_maskz_loadu_ps(m, x + i), vc, va, vb, silu));
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

// Through memory: GCC 12's _mm512_reduce_add_pd trips -Wuninitialized in its own header.
CM4J_AVX512 inline double lane_sum(__m512d v) {
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, v);
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// Two 8-double accumulators per 16 floats; the tail in scalar.
CM4J_AVX512 double sum(const float* x, size_t n) {
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm256_loadu_ps(x + i)));
    a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8)));
  }
  double total = lane_sum(_mm512_add_pd(a0, a1));
  for (; i < n; ++i) total += x[i];
  return total;
}

CM4J_AVX512 double centered_squares(const float* x, size_t n, double mean) {
  const __m512d m = _mm512_set1_pd(mean);
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512d d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), m);
    const __m512d d1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8)), m);
    a0 = _mm512_fmadd_pd(d0, d0, a0);
    a1 = _mm512_fmadd_pd(d1, d1, a1);
  }
  double total = lane_sum(_mm512_add_pd(a0, a1));
  for (; i < n; ++i) total += (x[i] - mean) * (x[i] - mean);
  return total;
}

}  // namespace

const VecKernels kVecAvx512 = {affine_act, softmax_columns, sum, centered_squares};

}  // namespace cpu
}  // namespace cm4j

#endif  // x86

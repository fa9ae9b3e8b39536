#include "cpu/vecmath.h"

#include <algorithm>
#include <cmath>

namespace cm4j {
namespace cpu {

namespace {

void affine_act_generic(const float* x, float* y, size_t n, float center, float a, float b,
                        bool silu) {
  for (size_t i = 0; i < n; ++i) {
    const float v = (x[i] - center) * a + b;
    y[i] = silu ? v / (1.0f + std::exp(-v)) : v;
  }
}

void softmax_columns_generic(float* s, int rows, int cols, int64_t ld, float* max,
                             float* inv_sum) {
  // Row by row so every pass streams through memory; max and inv_sum are per column.
  std::copy(s, s + cols, max);
  for (int j = 1; j < rows; ++j)
    for (int i = 0; i < cols; ++i) max[i] = std::max(max[i], s[j * ld + i]);
  // A loop rather than std::fill: GCC 13 warns about the fill's size with a signed count.
  for (int i = 0; i < cols; ++i) inv_sum[i] = 0.0f;
  for (int j = 0; j < rows; ++j) {
    float* row = s + j * ld;
    for (int i = 0; i < cols; ++i) {
      row[i] = std::exp(row[i] - max[i]);
      inv_sum[i] += row[i];
    }
  }
  for (int i = 0; i < cols; ++i) inv_sum[i] = 1.0f / inv_sum[i];
}

constexpr int kLanes = 8;  // independent accumulators: lets the compiler vectorize the sums

double sum_generic(const float* x, size_t n) {
  double lane[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] += x[i + l];
  double total = 0;
  for (; i < n; ++i) total += x[i];
  for (int l = 0; l < kLanes; ++l) total += lane[l];
  return total;
}

double centered_squares_generic(const float* x, size_t n, double mean) {
  double lane[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const double d = x[i + l] - mean;
      lane[l] += d * d;
    }
  double total = 0;
  for (; i < n; ++i) total += (x[i] - mean) * (x[i] - mean);
  for (int l = 0; l < kLanes; ++l) total += lane[l];
  return total;
}

}  // namespace

const VecKernels kVecGeneric = {affine_act_generic, softmax_columns_generic, sum_generic,
                                centered_squares_generic};

const VecKernels& vec_kernels(Isa isa) {
  switch (isa) {
#if defined(__x86_64__) || defined(__i386__)
    case Isa::kAvx512: return kVecAvx512;
    case Isa::kAvx2: return kVecAvx2;
#endif
    default: return kVecGeneric;
  }
}

}  // namespace cpu
}  // namespace cm4j

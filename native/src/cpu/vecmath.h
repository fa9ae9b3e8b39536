// Elementwise loops that need exp (SiLU, softmax) and the group norm sums, one
// implementation per ISA: the scalar versions would cost more than the matrix products
// around these loops.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/isa.h"

namespace cm4j {
namespace cpu {

struct VecKernels {
  // y[i] = (x[i] - center) * a + b, then SiLU (v / (1 + exp(-v))) when silu. y may alias
  // x. Centering before scaling keeps group norm exact when |mean| >> std.
  void (*affine_act)(const float* x, float* y, size_t n, float center, float a, float b,
                     bool silu);
  // Softmax of each column of s [rows, cols] (row stride ld), left unnormalized:
  // s[j, i] = exp(s[j, i] - max_j s[:, i]) and inv_sum[i] = 1 / sum_j of those.
  // max is cols floats of scratch.
  void (*softmax_columns)(float* s, int rows, int cols, int64_t ld, float* max, float* inv_sum);
  // Group norm's two-pass statistics, accumulated in double: sum x[i], and
  // sum (x[i] - mean)^2.
  double (*sum)(const float* x, size_t n);
  double (*centered_squares)(const float* x, size_t n, double mean);
};

const VecKernels& vec_kernels(Isa isa);
extern const VecKernels kVecGeneric;
extern const VecKernels kVecAvx2;
extern const VecKernels kVecAvx512;

}  // namespace cpu
}  // namespace cm4j

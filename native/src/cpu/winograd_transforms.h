// The Winograd input and output transforms on 16 tiles at once, written once with GCC's
// vector extension: the generic build (winograd.cpp) lowers a 16-float vector to SSE
// registers, and winograd_avx512.cpp instantiates the same code inside AVX-512 functions
// (target attribute), where it is one zmm register. The matrices are constants, so after
// full unrolling the zero coefficients vanish and +-1 become plain adds.
#pragma once

#include <cstdint>

namespace cm4j {
namespace cpu {
namespace wino {

typedef float Lanes __attribute__((vector_size(64), aligned(64)));  // 16 tiles

#define CM4J_WINO_INLINE __attribute__((always_inline)) inline

// F(2x2,3x3): B^T (4x4) and A^T (2x4).
constexpr float kBT2[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
constexpr float kAT2[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
// F(4x4,3x3) with interpolation points 0, +-1, +-2 (Lavin & Gray): B^T (6x6), A^T (4x6).
constexpr float kBT4[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                              {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
constexpr float kAT4[4][6] = {
    {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};

// y[i * ys] = sum_j mat[i][j] * x[j * xs] for i < R.
template <int R, int C>
CM4J_WINO_INLINE void apply(const float (&mat)[R][C], const Lanes* x, int xs, Lanes* y, int ys) {
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    Lanes acc = {};
    bool started = false;  // folds away once unrolled: the first term is not added to 0
#pragma GCC unroll 8
    for (int j = 0; j < C; ++j) {
      const float c = mat[i][j];
      if (c == 0.0f) continue;
      const Lanes term = c == 1.0f ? x[j * xs] : c == -1.0f ? -x[j * xs] : c * x[j * xs];
      acc = started ? acc + term : term;
      started = true;
    }
    y[i * ys] = acc;
  }
}

// V = B^T d B for a t x t tile: d is [t*t] lanes; position xi goes to v + xi * v_stride.
template <int T>
CM4J_WINO_INLINE void input_tile(const float (&bt)[T][T], const float* d, float* v,
                                 int64_t v_stride) {
  const Lanes* in = reinterpret_cast<const Lanes*>(d);
  Lanes tmp[T * T], out[T * T];
#pragma GCC unroll 8
  for (int c = 0; c < T; ++c) apply(bt, in + c, T, tmp + c, T);  // B^T d, column by column
#pragma GCC unroll 8
  for (int r = 0; r < T; ++r) apply(bt, tmp + r * T, 1, out + r * T, 1);  // (B^T d) B
#pragma GCC unroll 8
  for (int xi = 0; xi < T * T; ++xi) *reinterpret_cast<Lanes*>(v + xi * v_stride) = out[xi];
}

// Y = A^T M A: position xi of the GEMM results at mv + xi * m_stride; y is [m*m] lanes.
template <int M, int T>
CM4J_WINO_INLINE void output_tile(const float (&at)[M][T], const float* mv, int64_t m_stride,
                                  float* y) {
  Lanes in[T * T], tmp[M * T];
#pragma GCC unroll 8
  for (int xi = 0; xi < T * T; ++xi) in[xi] = *reinterpret_cast<const Lanes*>(mv + xi * m_stride);
#pragma GCC unroll 8
  for (int c = 0; c < T; ++c) apply(at, in + c, T, tmp + c, T);  // A^T M
  Lanes* out = reinterpret_cast<Lanes*>(y);
#pragma GCC unroll 8
  for (int r = 0; r < M; ++r) apply(at, tmp + r * T, 1, out + r * M, 1);  // (A^T M) A
}

}  // namespace wino
}  // namespace cpu
}  // namespace cm4j

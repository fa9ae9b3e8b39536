// The portable Winograd input and output stages (winograd.h's WinogradKernels): tiles read
// and written one lane at a time around the vector transforms of winograd_transforms.h.
// winograd.cpp instantiates them as the generic kernels (winograd_avx512.cpp has its own).
#pragma once

#include <algorithm>
#include <cstdint>

#include "backend.h"
#include "cpu/gemm.h"
#include "cpu/winograd.h"
#include "cpu/winograd_transforms.h"

namespace cm4j {
namespace cpu {
namespace wino {

// The t x t input tiles of channel c for tiles n0..n0+15 (those past `end` zero) into d,
// [t*t][16], read through the zero padding and the optional nearest-2x upsample. T is a
// constant so that a tile inside the image (most of them) is t*t plain loads.
template <int T>
CM4J_WINO_INLINE void gather(const Tiling& g, const ConvParams& p, const ConvArgs& a, int c,
                             int64_t n0, int64_t end, float* d) {
  const int shift = p.upsample ? 1 : 0;
  const int h_virt = p.h_in << shift, w_virt = p.w_in << shift;
  const int64_t plane = static_cast<int64_t>(p.h_in) * p.w_in;
  for (int l = 0; l < kWinoLanes; ++l) {
    const int64_t n = n0 + l;
    if (n >= end) {
      for (int i = 0; i < T * T; ++i) d[i * kWinoLanes + l] = 0.0f;
      continue;
    }
    const int64_t image = n / g.per_image;
    const int r = static_cast<int>(n % g.per_image);
    const int y0 = r / g.tiles_x * g.m - 1, x0 = r % g.tiles_x * g.m - 1;
    const float* src = c < p.c_in1 ? a.src1 + (image * p.c_in1 + c) * plane
                                   : a.src2 + (image * p.c_in2 + c - p.c_in1) * plane;
    float* out = d + l;
    if (!p.upsample && y0 >= 0 && x0 >= 0 && y0 + T <= p.h_in && x0 + T <= p.w_in) {
      const float* at = src + static_cast<int64_t>(y0) * p.w_in + x0;
#pragma GCC unroll 6
      for (int i = 0; i < T; ++i)
#pragma GCC unroll 6
        for (int j = 0; j < T; ++j) out[(i * T + j) * kWinoLanes] = at[i * p.w_in + j];
      continue;
    }
    for (int i = 0; i < T; ++i) {
      const int iy = y0 + i;
      const bool row_inside = iy >= 0 && iy < h_virt;
      const float* row = row_inside ? src + static_cast<int64_t>(iy >> shift) * p.w_in : src;
      for (int j = 0; j < T; ++j) {
        const int ix = x0 + j;
        const bool inside = row_inside && ix >= 0 && ix < w_virt;
        out[(i * T + j) * kWinoLanes] = inside ? row[ix >> shift] : 0.0f;
      }
    }
  }
}

// Output channel co of tiles n0..n0+15 (y: [m*m][16]) into C with the epilogue.
CM4J_WINO_INLINE void scatter(const Tiling& g, const OutSpec& out, int co, int64_t n0,
                              int64_t end, const float* y) {
  for (int l = 0; l < kWinoLanes && n0 + l < end; ++l) {
    const int64_t n = n0 + l;
    const int64_t image = n / g.per_image;
    const int r = static_cast<int>(n % g.per_image);
    const int oy0 = r / g.tiles_x * g.m, ox0 = r % g.tiles_x * g.m;
    const float bias = out.bias ? out.bias[image * out.bias_image_stride + co] : 0.0f;
    const int64_t base = image * out.image_stride + static_cast<int64_t>(co) * out.ldc;
    const int rows = std::min(g.m, g.h_out - oy0), cols = std::min(g.m, g.w_out - ox0);
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) {
        const int64_t at = base + static_cast<int64_t>(oy0 + i) * g.w_out + ox0 + j;
        float v = y[(i * g.m + j) * kWinoLanes + l] + bias;
        if (out.residual) v += out.residual[at];
        out.c[at] = v * out.scale;
      }
  }
}

// WinogradKernels::input and ::output, lane by lane; BT: B^T, AT: A^T (winograd_transforms.h).
template <int T>
CM4J_WINO_INLINE void input_lanes(const float (&bt)[T][T], const Tiling& g, const ConvParams& p,
                                  const ConvArgs& a, int c0, int c1, int64_t n0, int64_t end,
                                  float* v, int64_t v_stride) {
  alignas(64) float d[T * T * kWinoLanes];
  for (int c = c0; c < c1; ++c) {
    gather<T>(g, p, a, c, n0, end, d);
    input_tile(bt, d, v + static_cast<int64_t>(c - c0) * kNR, v_stride);
  }
}

template <int M, int T>
CM4J_WINO_INLINE void output_lanes(const float (&at)[M][T], const Tiling& g, const OutSpec& out,
                                   int c0, int c1, int64_t n0, int64_t end, const float* mv,
                                   int64_t m_ldc, int64_t m_stride) {
  alignas(64) float y[M * M * kWinoLanes];
  for (int co = c0; co < c1; ++co) {
    output_tile(at, mv + (co - c0) * m_ldc, m_stride, y);
    scatter(g, out, co, n0, end, y);
  }
}

}  // namespace wino
}  // namespace cpu
}  // namespace cm4j

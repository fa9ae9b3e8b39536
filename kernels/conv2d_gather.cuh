// Device helpers shared by the conv2d kernels (conv2d.cu, conv2d_wmma.cu): the implicit
// GEMM's gather of X[k, n] and the fused epilogue.
#pragma once

#include "conv2d.cuh"
#include "indexing.cuh"

namespace cm4j {
namespace kernels {
namespace conv_detail {

__device__ __forceinline__ kidx::ConvGeometry geometry(const Conv2dParams& p) {
  return {p.c_in1, p.c_in2, p.h_in, p.w_in, p.kernel, p.stride, p.pad, p.upsample,
          p.h_out, p.w_out};
}

// X[k, n] of the implicit GEMM for output pixel px; 0 in the padding.
template <int KS>
__device__ __forceinline__ float gather(const Conv2dParams& p, const kidx::ConvGeometry& g,
                                        kidx::Pixel px, int k) {
  const int ks = KS > 0 ? KS : p.kernel;
  kidx::Tap t = kidx::tap_of(k, ks);
  int which = 0;
  int64_t off = kidx::conv_gather_offset(g, px, t, &which);
  if (off < 0) return 0.0f;
  return which == 0 ? p.src1[off] : p.src2[off];
}

__device__ __forceinline__ void store_output(const Conv2dParams& p, float acc, int m,
                                             kidx::Pixel q) {
  int64_t off = kidx::nchw(q.b, m, q.y, q.x, p.c_out, p.h_out, p.w_out);
  float v = acc;
  if (p.bias) v += p.bias[m];
  if (p.bias_bc) v += p.bias_bc[kidx::bias_bc_offset(q.b, m, p.c_out, p.bias_bc_stride)];
  if (p.residual) v += p.residual[off];
  p.dst[off] = v * p.out_scale;
}

}  // namespace conv_detail
}  // namespace kernels
}  // namespace cm4j

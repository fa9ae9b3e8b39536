// 2-D convolution over channels-last fp16/bf16 activations (the NHWC mode, nhwc.cuh) as an
// implicit GEMM on tensor cores: out[n, co] = sum_k X[n, k] W[k, co] with n an output pixel
// and k = (ky * kernel + kx) * c_in + c, so that the gather of X along k reads consecutive
// channels of one source pixel. Same features as conv2d.cuh: the channel concat of two
// sources and a nearest 2x upsample in the gather; bias, per-image bias, residual and
// out_scale in the fp32 epilogue; one rounding to the storage type on store.
//   dst = (conv(cat(src1, src2)) + bias + bias_bc + residual) * out_scale
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "indexing.cuh"
#include "nhwc.cuh"

// Resource ceilings, per thread and per block, for every template instance on sm_80 and
// sm_90 (kernels/dev/ptxas-check.sh holds ptxas to them, and to no spills):
// ptxas budget: conv2d_nhwc_kernel 92 registers, 27904 bytes shared

namespace cm4j {
namespace kernels {

struct Conv2dNhwcParams {
  int batch = 1;
  int c_in1 = 0, c_in2 = 0;  // channels of src1 and src2 (0: no src2)
  int h_in = 0, w_in = 0;    // spatial size of the sources (before upsampling)
  int c_out = 0;
  int kernel = 3, stride = 1, pad = 1;
  bool upsample = false;
  float out_scale = 1.0f;
  int h_out = 0, w_out = 0;  // must equal kidx::conv_out_size(...)

  HalfType type = HalfType::kF16;  // of the activations and the weight
  const void* src1 = nullptr;      // [B, h_in, w_in, c_in1]
  const void* src2 = nullptr;      // [B, h_in, w_in, c_in2] or null
  const void* weight = nullptr;    // packed by conv2d_nhwc_pack_weight, converted to `type`
  const float* bias = nullptr;     // [c_out] or null
  const float* bias_bc = nullptr;  // [B, c_out] (row stride bias_bc_stride) or null
  int bias_bc_stride = 0;          // 0: c_out (dense rows); else >= c_out
  const void* residual = nullptr;  // [B, h_out, w_out, c_out] or null, not aliasing dst
  void* dst = nullptr;             // [B, h_out, w_out, c_out]
  // A group norm fused into the gather (conv2d_nhwc_mma only; the others refuse it): value v
  // of channel c of cat(src1, src2) in image b becomes (v - center) * mul + add, then SiLU
  // when norm_silu (nhwc_detail::norm_act), with norm [B, 3, c_in1 + c_in2] holding the
  // center, mul and add rows (group_norm_nhwc_coeffs). Zero padding stays zero.
  const float* norm = nullptr;
  bool norm_silu = false;
  // Split-K in one launch (conv2d_nhwc_mma and _wgmma with splits > 1; the others ignore
  // it): one arrival counter per output tile, zero at rest (each launch leaves them so), at
  // least conv2d_nhwc_mma_split_counters(p); the last split of a tile to finish adds the
  // splits' partial sums and applies the epilogue. Null: a second kernel does that.
  unsigned* split_counters = nullptr;
};

// Host: torch layout [c_out, c_in, k, k] -> packed [K, c_out] in the NHWC reduction order
// (kidx::k_of_nhwc); conv2d_convert_weight then rounds it to fp16/bf16 on the device.
void conv2d_nhwc_pack_weight(const float* torch_w, int c_out, int c_in, int kernel,
                             float* packed);

// Whether the parameters describe a convolution these kernels can run (shapes consistent,
// pointers present, GEMM indices within int).
inline bool conv2d_nhwc_params_ok(const Conv2dNhwcParams& p) {
  if (p.batch < 1 || p.c_in1 < 1 || p.c_in2 < 0 || p.c_out < 1 || p.h_in < 1 || p.w_in < 1 ||
      p.kernel < 1 || p.stride < 1 || p.pad < 0 || (p.c_in2 > 0) != (p.src2 != nullptr) ||
      !p.src1 || !p.weight || !p.dst || (p.norm_silu && !p.norm) ||
      (p.bias_bc && p.bias_bc_stride != 0 && p.bias_bc_stride < p.c_out))
    return false;
  if (p.h_out != kidx::conv_out_size(p.h_in, p.kernel, p.stride, p.pad, p.upsample) ||
      p.w_out != kidx::conv_out_size(p.w_in, p.kernel, p.stride, p.pad, p.upsample) ||
      p.h_out < 1 || p.w_out < 1)
    return false;
  // GEMM indices are int: M = B*h_out*w_out (plus a tile of the largest kernel) and
  // K = c_in*k*k must fit.
  const int64_t m = static_cast<int64_t>(p.batch) * p.h_out * p.w_out;
  const int64_t k = static_cast<int64_t>(p.c_in1 + p.c_in2) * p.kernel * p.kernel;
  return m + 128 < INT32_MAX && k * p.c_out < INT32_MAX;
}

// Queues the convolution on `stream` (sm_80+); cudaErrorInvalidValue for parameters the
// kernel does not support (a fused norm among them).
cudaError_t conv2d_nhwc_forward(const Conv2dNhwcParams& p, cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

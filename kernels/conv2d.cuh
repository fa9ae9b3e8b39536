// 2-D convolution (kernel 1 or 3, stride 1 or 2) as an implicit GEMM over NCHW fp32
// activations: the channel concat of two sources and a nearest 2x upsample are folded into
// the gather, bias / per-image bias / residual / output scale into the epilogue.
//   dst = (conv(cat(src1, src2)) + bias + bias_bc + residual) * out_scale
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

// Resource ceilings, per thread and per block, for every template instance on sm_80 and
// sm_90 (kernels/dev/ptxas-check.sh holds ptxas to them, and to no spills):
// ptxas budget: conv2d_tiled_kernel 64 registers, 8192 bytes shared
// ptxas budget: conv2d_direct_kernel 40 registers, 0 bytes shared

namespace cm4j {
namespace kernels {

enum class Conv2dVariant {
  kTiled = 0,   // default: shared-memory tiled SIMT GEMM, 64x64 outputs per block
  kDirect = 1,  // reference: one thread per output, the gather done in the inner loop
};

// Precision of the GEMM operands. kF32 runs the variants above; kF16 and kBF16 run the
// tensor-core kernel (conv2d_wmma.cu, sm_80+): weights stored in that type, activations
// rounded to it in the gather, products accumulated in fp32, epilogue in fp32.
enum class ConvOperand { kF32 = 0, kF16 = 1, kBF16 = 2 };

struct Conv2dParams {
  int batch = 1;
  int c_in1 = 0, c_in2 = 0;  // channels of src1 and src2 (0: no src2)
  int h_in = 0, w_in = 0;    // spatial size of the sources (before upsampling)
  int c_out = 0;
  int kernel = 3, stride = 1, pad = 1;
  bool upsample = false;
  float out_scale = 1.0f;
  int h_out = 0, w_out = 0;  // must equal kidx::conv_out_size(...)

  const float* src1 = nullptr;      // [B, c_in1, h_in, w_in]
  const float* src2 = nullptr;      // [B, c_in2, h_in, w_in] or null
  ConvOperand operand = ConvOperand::kF32;
  const float* weight = nullptr;    // kF32: packed by conv2d_pack_weight, [c_in*k*k, c_out]
  const void* weight_lp = nullptr;  // kF16/kBF16: the same layout in that type
  const float* bias = nullptr;      // [c_out] or null
  const float* bias_bc = nullptr;   // [B, c_out] or null, rows bias_bc_stride apart
  int bias_bc_stride = 0;           // 0: c_out (dense rows); else >= c_out
  const float* residual = nullptr;  // [B, c_out, h_out, w_out] or null, not aliasing dst
  float* dst = nullptr;             // [B, c_out, h_out, w_out]
};

// Host: torch layout [c_out, c_in, k, k] -> packed [c_in * k * k, c_out].
void conv2d_pack_weight(const float* torch_w, int c_out, int c_in, int kernel, float* packed);

// Device: dst[i] = src[i] rounded to nearest-even in `op` (kF16 or kBF16), 2 bytes each.
cudaError_t conv2d_convert_weight(const float* src, void* dst, int64_t count, ConvOperand op,
                                  cudaStream_t stream);

// Queues the convolution on `stream`; returns the launch status (cudaErrorInvalidValue for
// parameters the kernels do not support). `variant` applies to kF32 operands.
cudaError_t conv2d_forward(const Conv2dParams& p, Conv2dVariant variant, cudaStream_t stream);

// The tensor-core path for kF16/kBF16 operands (called by conv2d_forward).
cudaError_t conv2d_wmma_forward(const Conv2dParams& p, cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

// The conv's host side (kernels/conv2d*.cu): weights packed and uploaded at load (converted to
// fp16/bf16 for tensor cores), then each call checked against its weight and launched, in the
// NHWC mode with the kernel the conv tuner chooses.
#include <string>
#include <vector>

#include "conv2d.cuh"
#include "conv2d_nhwc.cuh"
#include "conv2d_nhwc_mma.cuh"
#include "cuda/cuda_backend_impl.h"

namespace cm4j {
namespace cuda {

namespace {

// The engine's params and args in a kernel's params struct; the NCHW and NHWC kernels take
// the same fields (kernels/ does not include the engine's headers, hence the copies), the
// NHWC ones with untyped activation pointers and their storage type besides.
template <typename K>
void fill_conv(const ConvParams& p, const ConvArgs& a, K* k) {
  k->batch = p.batch;
  k->c_in1 = p.c_in1;
  k->c_in2 = p.c_in2;
  k->h_in = p.h_in;
  k->w_in = p.w_in;
  k->c_out = p.c_out;
  k->kernel = p.kernel;
  k->stride = p.stride;
  k->pad = p.pad;
  k->upsample = p.upsample;
  k->out_scale = p.out_scale;
  k->h_out = p.h_out();
  k->w_out = p.w_out();
  k->src1 = a.src1;
  k->src2 = p.c_in2 > 0 ? a.src2 : nullptr;
  k->bias = a.bias;
  k->bias_bc = a.bias_bc;
  k->bias_bc_stride = a.bias_bc_stride;
  k->residual = a.residual;
  k->dst = a.dst;
}

}  // namespace

Status CudaBackend::prepare_conv(const float* w, int c_out, int c_in, int kernel,
                                 std::unique_ptr<Weight>* out) {
  if (c_out < 1 || c_in < 1 || kernel < 1) return invalid("prepare_conv: bad shape");
  const size_t count = static_cast<size_t>(c_out) * c_in * kernel * kernel;
  std::vector<float> packed(count);
  if (nhwc_)
    kernels::conv2d_nhwc_pack_weight(w, c_out, c_in, kernel, packed.data());
  else
    kernels::conv2d_pack_weight(w, c_out, c_in, kernel, packed.data());
  std::unique_ptr<DeviceWeight> dw;
  Status s = upload_weight(packed.data(), count, "prepare_conv", &dw);
  if (!s.ok()) return s;
  if (operand_ != kernels::ConvOperand::kF32) {
    s = convert_weight(dw.get());
    if (!s.ok()) return s;
  }
  dw->rows = c_out;
  dw->cols = c_in;
  dw->kernel = kernel;
  dw->is_conv = true;
  dw->nhwc = nhwc_;
  *out = std::move(dw);
  return Status::Ok();
}

Status CudaBackend::convert_weight(DeviceWeight* dw) {
  void* lp = nullptr;
  cudaError_t e = cudaMalloc(&lp, dw->count * 2);
  if (e != cudaSuccess) return cuda_error(e, "prepare_conv (" + std::to_string(dw->count * 2) + " bytes)");
  e = kernels::conv2d_convert_weight(static_cast<const float*>(dw->data), lp,
                                     static_cast<int64_t>(dw->count), operand_, stream_);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
  if (e != cudaSuccess) {
    cudaFree(lp);
    return cuda_error(e, "prepare_conv");
  }
  cudaFree(dw->data);
  dw->data = lp;
  dw->element_bytes = 2;
  return Status::Ok();
}

Status CudaBackend::conv2d(const ConvParams& p, const ConvArgs& a) {
  auto* w = dynamic_cast<const DeviceWeight*>(a.weight);
  if (!w || !w->is_conv) return invalid("conv2d: weight was not prepared by prepare_conv");
  if (w->rows != p.c_out || w->cols != p.c_in1 + p.c_in2 || w->kernel != p.kernel)
    return invalid("conv2d: weight is [" + std::to_string(w->rows) + ", " +
                   std::to_string(w->cols) + ", " + std::to_string(w->kernel) +
                   "], call expects [" + std::to_string(p.c_out) + ", " +
                   std::to_string(p.c_in1 + p.c_in2) + ", " + std::to_string(p.kernel) + "]");
  if (w->nhwc != nhwc_)
    return invalid("conv2d: weight was prepared by a backend with another activation layout");
  if (nhwc_) return conv2d_nhwc(p, a, w);
  if (a.norm) return invalid("conv2d: a fused group norm needs the NHWC mode (conv_fuses_norm)");
  kernels::Conv2dParams k;
  fill_conv(p, a, &k);
  k.operand = operand_;
  if (operand_ == kernels::ConvOperand::kF32)
    k.weight = static_cast<const float*>(w->data);
  else
    k.weight_lp = w->data;
  const auto variant = kernels_ == CudaKernels::kReference ? kernels::Conv2dVariant::kDirect
                                                           : kernels::Conv2dVariant::kTiled;
  cudaSetDevice(device_);
  return finish(kernels::conv2d_forward(k, variant, stream_), "conv2d");
}

// In the NHWC mode the tensor-core conv applies a group norm as it gathers its input
// (conv2d_nhwc_mma.cuh): the norm then writes only its per-channel maps, and the normalized
// tensor is neither written nor read back. The arena keeps buffers 64-byte aligned, so the
// kernel's alignment holds wherever its channel counts do. CM4J_CUDA_NORM_FUSION=off keeps
// the norm a kernel of its own (the same bits, group_norm_nhwc.cuh), to time one against the
// other.
bool CudaBackend::conv_fuses_norm(const ConvParams& p) const {
  return nhwc_ && norm_fusion_ && kernels::conv2d_nhwc_mma_channels_ok(p.c_in1, p.c_in2, p.c_out);
}

Status CudaBackend::conv2d_nhwc(const ConvParams& p, const ConvArgs& a, const DeviceWeight* w) {
  kernels::Conv2dNhwcParams k;
  fill_conv(p, a, &k);
  k.type = half_;
  k.weight = w->data;
  k.norm = a.norm;
  k.norm_silu = a.norm && p.norm_silu;
  if (a.norm && !kernels::conv2d_nhwc_mma_supports(k))
    return invalid("conv2d: a fused group norm needs the tensor-core conv: channels in multiples "
                   "of 8, 16-byte-aligned sources and weight");
  cudaSetDevice(device_);
  // Split-K in one launch, whatever the tuner takes (measuring included): counters for the
  // smallest tile (kernels without split-K ignore them).
  Status s = counter_buffer(kernels::conv2d_nhwc_mma_split_counters(k), "conv2d", &k.split_counters);
  if (!s.ok()) return s;
  // The pipelined mma.sync kernel's tile and split, the WMMA kernel, cuBLAS (1x1) or the
  // sm_90a wgmma kernel (CM4J_CUDA_WGMMA=on), as the tuner chooses (CM4J_TUNING); WMMA alone
  // where the mma kernel's 16-byte gather does not apply (conv_in, conv_out). Split-K's
  // partial sums use the staging buffer (free during a conv: ops run in order on one stream).
  const ConvChoice choice = tuner_->choose(k, stream_, capturing_);
  float* workspace = nullptr;
  if (const size_t floats = conv_choice_workspace_floats(k, choice)) {
    s = staging_buffer(floats, "conv2d", &workspace);
    if (!s.ok()) return s;
  }
  return finish(tuner_->run(k, choice, workspace, stream_), "conv2d");
}

}  // namespace cuda
}  // namespace cm4j

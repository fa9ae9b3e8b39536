// Group norm's host side (kernels/group_norm.cu, group_norm_nhwc.cu).
#include <string>

#include "cuda/cuda_backend_impl.h"
#include "group_norm.cuh"
#include "group_norm_nhwc.cuh"

namespace cm4j {
namespace cuda {

namespace {

// The engine's params and args in the kernel's params struct (see fill_conv in conv2d.cpp).
template <typename K>
void fill_group_norm(const GroupNormParams& p, const GroupNormArgs& a, K* k) {
  k->batch = p.batch;
  k->channels = p.channels;
  k->hw = p.hw;
  k->groups = p.groups;
  k->eps = p.eps;
  k->silu = p.silu;
  k->x = a.x;
  k->x2 = a.x2;
  k->c1 = a.x2 ? a.c1 : 0;
  k->gamma = a.gamma;
  k->beta = a.beta;
  k->scale = a.scale;
  k->shift = a.shift;
  k->scale_stride = a.scale_stride;
  k->y = a.y;
}

}  // namespace

Status CudaBackend::group_norm(const GroupNormParams& p, const GroupNormArgs& a) {
  if (a.x2 && (a.c1 < 1 || a.c1 >= p.channels))
    return invalid("group_norm: c1 " + std::to_string(a.c1) + " outside 1.." +
                   std::to_string(p.channels - 1) + " with a second source");
  if (nhwc_) return group_norm_nhwc(p, a);
  if (a.coeffs) return invalid("group_norm: coeffs (a fused norm) need the NHWC mode");
  kernels::GroupNormParams k;
  fill_group_norm(p, a, &k);
  cudaSetDevice(device_);
  return finish(kernels::group_norm_forward(k, stream_), "group_norm");
}

Status CudaBackend::group_norm_nhwc(const GroupNormParams& p, const GroupNormArgs& a) {
  kernels::GroupNormNhwcParams k;
  fill_group_norm(p, a, &k);
  k.type = half_;
  k.coeffs = a.coeffs;  // instead of y: the maps a conv applies (conv_fuses_norm)
  cudaSetDevice(device_);
  // The chunks' statistics go through the staging buffer, like split-K's partial sums.
  float* workspace = nullptr;
  Status s = staging_buffer(kernels::group_norm_nhwc_workspace_floats(k), "group_norm", &workspace);
  if (s.ok() && k.coeffs)
    s = counter_buffer(kernels::group_norm_nhwc_counters(k), "group_norm", &k.counters);
  if (!s.ok()) return s;
  return finish(kernels::group_norm_nhwc_forward(k, workspace, stream_), "group_norm");
}

}  // namespace cuda
}  // namespace cm4j

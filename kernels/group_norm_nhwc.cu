// Group norm over NHWC fp16/bf16: one block per (image, group), as group_norm.cu, with the
// group's values walked channel-fastest (kidx::group_channel_nhwc) so that a thread's
// neighbours read neighbouring channels of the same pixel. Not yet run on a GPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "group_norm_nhwc.cuh"
#include "indexing.cuh"
#include "launch.cuh"
#include "nhwc_device.cuh"

namespace cm4j {
namespace kernels {

namespace {

using nhwc_detail::from_f32;
using nhwc_detail::to_f32;

constexpr int kThreads = 512;

// Sum over the block; every thread gets the result. `scratch` holds one float per warp.
__device__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < kThreads / 32 ? scratch[lane] : 0.0f;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Element i of group g of image b: its channel, and where it is read and written.
struct GroupElement {
  int c;
  int64_t in, out;  // offset in the source (x or x2) and in y
  int which;        // 0: x, 1: x2
};

__device__ __forceinline__ GroupElement element(const GroupNormNhwcParams& p, int b, int g,
                                                int i) {
  GroupElement e;
  e.c = kidx::group_channel_nhwc(g, i, p.channels, p.groups);
  const int pos = kidx::group_pos_nhwc(i, p.channels, p.groups);
  e.in = kidx::concat_offset_nhwc(b, e.c, pos, p.x2 ? p.c1 : p.channels, p.channels, p.hw,
                                  &e.which);
  e.out = kidx::nhwc(b, 0, pos, e.c, 1, p.hw, p.channels);
  return e;
}

template <typename T>
__device__ __forceinline__ float load(const GroupNormNhwcParams& p, const GroupElement& e) {
  return to_f32(static_cast<const T*>(e.which == 0 ? p.x : p.x2)[e.in]);
}

// Mean, then variance around the mean, then the affine transform: three passes over the
// group's (C/groups) * HW values, statistics in fp32.
template <typename T>
__global__ void __launch_bounds__(kThreads) group_norm_nhwc_kernel(const GroupNormNhwcParams p) {
  __shared__ float scratch[kThreads / 32];
  const int b = blockIdx.x / p.groups, g = blockIdx.x % p.groups;
  const int count = (p.channels / p.groups) * p.hw;

  float s = 0.0f;
  for (int i = threadIdx.x; i < count; i += kThreads) s += load<T>(p, element(p, b, g, i));
  const float mean = block_sum(s, scratch) / count;

  float q = 0.0f;
  for (int i = threadIdx.x; i < count; i += kThreads) {
    const float d = load<T>(p, element(p, b, g, i)) - mean;
    q = fmaf(d, d, q);
  }
  const float var = block_sum(q, scratch) / count;  // biased, as torch
  const float rstd = 1.0f / sqrtf(var + p.eps);

  T* y = static_cast<T*>(p.y);
  for (int i = threadIdx.x; i < count; i += kThreads) {
    const GroupElement e = element(p, b, g, i);
    float v = (load<T>(p, e) - mean) * rstd;
    if (p.gamma) v *= p.gamma[e.c];
    if (p.beta) v += p.beta[e.c];
    const int64_t sc = static_cast<int64_t>(b) * p.scale_stride + e.c;
    if (p.scale) v = v * (1.0f + p.scale[sc]);
    if (p.shift) v = v + p.shift[sc];
    if (p.silu) v = v / (1.0f + expf(-v));
    // In place (y == x) is safe: every element is read and then written by one thread,
    // after the block has finished reading for the statistics.
    y[e.out] = from_f32<T>(v);
  }
}

}  // namespace

cudaError_t group_norm_nhwc_forward(const GroupNormNhwcParams& p, cudaStream_t stream) {
  if (p.batch < 1 || p.channels < 1 || p.hw < 1 || p.groups < 1 ||
      p.channels % p.groups != 0 || !p.x || !p.y)
    return cudaErrorInvalidValue;
  if (p.x2 && (p.c1 < 1 || p.c1 >= p.channels)) return cudaErrorInvalidValue;
  if ((p.scale || p.shift) && p.scale_stride < p.channels) return cudaErrorInvalidValue;
  if (static_cast<int64_t>(p.channels / p.groups) * p.hw >= INT32_MAX ||
      static_cast<int64_t>(p.batch) * p.groups > INT32_MAX)
    return cudaErrorInvalidValue;
  switch (p.type) {
    case HalfType::kF16:
      CM4J_LAUNCH(group_norm_nhwc_kernel<__half>, p.batch * p.groups, kThreads, stream, p);
      break;
    case HalfType::kBF16:
      CM4J_LAUNCH(group_norm_nhwc_kernel<__nv_bfloat16>, p.batch * p.groups, kThreads, stream, p);
      break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace cm4j

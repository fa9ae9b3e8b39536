#include "group_norm.cuh"

#include "block_reduce.cuh"
#include "indexing.cuh"
#include "launch.cuh"

namespace cm4j {
namespace kernels {

namespace {

constexpr int kThreads = 512;

// Element i of group g of image b: its channel and where it is read from.
struct GroupElement {
  int c;
  int64_t in, out;  // offset in the source (x or x2) and in y
  const float* src;
};

__device__ __forceinline__ GroupElement element(const GroupNormParams& p, int b, int g, int i) {
  GroupElement e;
  e.c = kidx::group_channel(g, i, p.channels, p.groups, p.hw);
  const int pos = i % p.hw;
  int which = 0;
  e.in = kidx::concat_offset(b, e.c, pos, p.x2 ? p.c1 : p.channels, p.channels, p.hw, &which);
  e.src = which == 0 ? p.x : p.x2;
  e.out = kidx::group_base(b, g, p.channels, p.groups, p.hw) + i;
  return e;
}

// One block per (image, group): mean, then variance around the mean, then the affine
// transform, each a pass over the group's (C/groups) * HW values.
__global__ void __launch_bounds__(kThreads) group_norm_kernel(const GroupNormParams p) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  __shared__ float scratch[kThreads / 32];
  const int b = blockIdx.x / p.groups, g = blockIdx.x % p.groups;
  const int count = (p.channels / p.groups) * p.hw;

  float s = 0.0f;
  for (int i = threadIdx.x; i < count; i += kThreads) {
    const GroupElement e = element(p, b, g, i);
    s += e.src[e.in];
  }
  const float mean = block_sum<kThreads>(s, scratch) / count;

  float q = 0.0f;
  for (int i = threadIdx.x; i < count; i += kThreads) {
    const GroupElement e = element(p, b, g, i);
    const float d = e.src[e.in] - mean;
    q = fmaf(d, d, q);
  }
  const float var = block_sum<kThreads>(q, scratch) / count;  // biased, as torch
  const float rstd = 1.0f / sqrtf(var + p.eps);

  for (int i = threadIdx.x; i < count; i += kThreads) {
    const GroupElement e = element(p, b, g, i);
    float v = (e.src[e.in] - mean) * rstd;
    if (p.gamma) v *= p.gamma[e.c];
    if (p.beta) v += p.beta[e.c];
    const int64_t sc = static_cast<int64_t>(b) * p.scale_stride + e.c;
    if (p.scale) v = v * (1.0f + p.scale[sc]);
    if (p.shift) v = v + p.shift[sc];
    if (p.silu) v = v / (1.0f + expf(-v));
    // In place (y == x) is safe: every element is read and then written by one thread,
    // after the block has finished reading for the statistics.
    p.y[e.out] = v;
  }
}

}  // namespace

cudaError_t group_norm_forward(const GroupNormParams& p, cudaStream_t stream) {
  if (p.batch < 1 || p.channels < 1 || p.hw < 1 || p.groups < 1 ||
      p.channels % p.groups != 0 || !p.x || !p.y)
    return cudaErrorInvalidValue;
  if (p.x2 && (p.c1 < 1 || p.c1 >= p.channels)) return cudaErrorInvalidValue;
  if ((p.scale || p.shift) && p.scale_stride < p.channels) return cudaErrorInvalidValue;
  if (static_cast<int64_t>(p.channels / p.groups) * p.hw >= INT32_MAX ||
      static_cast<int64_t>(p.batch) * p.groups > INT32_MAX)
    return cudaErrorInvalidValue;
  CM4J_LAUNCH(group_norm_kernel, p.batch * p.groups, kThreads, stream, p);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace cm4j

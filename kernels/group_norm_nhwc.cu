// Group norm over NHWC fp16/bf16 in two launches (group_norm_nhwc.cuh): statistics per
// chunk of a group's pixels, then per chunk of an image's elements the merged statistics
// and the affine transform, scale/shift and SiLU, channel-fastest so that neighbouring
// threads touch neighbouring channels of a pixel; or, for a conv that normalizes as it
// gathers, each channel's affine map, written by the group's last stats block instead of a
// second pass. Built with --fmad=false (CMakeLists.txt): the map, computed by either kernel,
// rounds the same in both.
// Not yet run on a GPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "group_norm_nhwc.cuh"
#include "block_reduce.cuh"
#include "indexing.cuh"
#include "launch.cuh"
#include "nhwc_device.cuh"

namespace cm4j {
namespace kernels {

namespace {

using nhwc_detail::from_f32;
using nhwc_detail::to_f32;

constexpr int kThreads = 256;
// Elements per block of either kernel: 16 a thread, enough work to hide a block's start and
// few enough blocks that the apply kernel's merge (groups x chunks reads) stays cheap.
constexpr int kChunkElements = 16 * kThreads;

// How a group's pixels split into stats chunks: one image's shape only (never the batch).
struct Chunks {
  int pixels;  // per chunk (the last may have fewer)
  int count;
};

__host__ __device__ inline Chunks stats_chunks(const GroupNormNhwcParams& p) {
  const int cpg = p.channels / p.groups;
  Chunks c;
  c.pixels = cpg >= kChunkElements ? 1 : kChunkElements / cpg;
  c.count = (p.hw + c.pixels - 1) / c.pixels;
  return c;
}

// Element (b, c, pos) of cat(x, x2).
template <typename T>
__device__ __forceinline__ float load(const GroupNormNhwcParams& p, int b, int c, int pos) {
  int which;
  const int64_t at = kidx::concat_offset_nhwc(b, c, pos, p.x2 ? p.c1 : p.channels, p.channels,
                                              p.hw, &which);
  return to_f32(static_cast<const T*>(which == 0 ? p.x : p.x2)[at]);
}

// Group g of image b: its chunks' statistics merged in chunk order (Chan et al.'s pairwise
// update), as (mean, 1 / sqrt(biased variance + eps)), as torch.
__device__ float2 group_stats(const GroupNormNhwcParams& p, const float2* partial, int b, int g) {
  const int cpg = p.channels / p.groups;
  const Chunks chunks = stats_chunks(p);
  const float2* part = partial + (static_cast<int64_t>(b) * p.groups + g) * chunks.count;
  float n = 0.0f, mean = 0.0f, m2 = 0.0f;
  for (int k = 0; k < chunks.count; ++k) {
    const float nk = static_cast<float>(cpg * min(chunks.pixels, p.hw - k * chunks.pixels));
    const float2 pk = __ldcg(&part[k]);  // from L2: the last stats block reads other SMs' chunks
    const float total = n + nk, delta = pk.x - mean;
    mean += delta * (nk / total);
    m2 += pk.y + delta * delta * (n * nk / total);
    n = total;
  }
  return make_float2(mean, 1.0f / sqrtf(m2 / n + p.eps));
}

// Channel c of image b: (x - mean) * rstd * gamma + beta, then * (1 + scale) + shift, as
// one affine map (x - mean) * mul + add (mul, add returned).
__device__ __forceinline__ float2 channel_map(const GroupNormNhwcParams& p, int b, int c,
                                              float rstd) {
  float mul = p.gamma ? rstd * p.gamma[c] : rstd;
  float add = p.beta ? p.beta[c] : 0.0f;
  const int64_t sc = static_cast<int64_t>(b) * p.scale_stride + c;
  if (p.scale) {
    const float s = 1.0f + p.scale[sc];
    mul *= s;
    add *= s;
  }
  if (p.shift) add += p.shift[sc];
  return make_float2(mul, add);
}

// Block (chunk, g, b): the chunk's mean and its sum of squared deviations from it (M2),
// two passes over its values (the second mostly from L1), as float2 at
// partial[(b * groups + g) * chunks + chunk]; with coeffs, the group's last block to finish
// also writes the group's maps.
template <typename T>
__global__ void __launch_bounds__(kThreads) group_norm_nhwc_stats_kernel(const GroupNormNhwcParams p,
                                                                         float2* partial) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  __shared__ float scratch[kThreads / 32];
  const int chunk = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
  const int cpg = p.channels / p.groups;
  const Chunks chunks = stats_chunks(p);
  const int pos0 = chunk * chunks.pixels;
  const int count = cpg * min(chunks.pixels, p.hw - pos0);
  float s = 0.0f;
  for (int i = threadIdx.x; i < count; i += kThreads)
    s += load<T>(p, b, g * cpg + i % cpg, pos0 + i / cpg);
  const float mean = block_sum<kThreads>(s, scratch) / count;
  float q = 0.0f;
  for (int i = threadIdx.x; i < count; i += kThreads) {
    const float d = load<T>(p, b, g * cpg + i % cpg, pos0 + i / cpg) - mean;
    q = fmaf(d, d, q);
  }
  const float m2 = block_sum<kThreads>(q, scratch);
  const int64_t group = static_cast<int64_t>(b) * p.groups + g;
  if (threadIdx.x == 0) partial[group * chunks.count + chunk] = make_float2(mean, m2);
  if (!p.coeffs) return;
  // The group's last block to finish writes each of its channels' maps into coeffs [B, 3, C],
  // for the conv that applies them: the apply kernel's numbers, unwritten.
  if (!last_to_arrive([&] { return p.counters + group; }, chunks.count)) return;
  for (int j = threadIdx.x; j < cpg; j += kThreads) {
    const int c = g * cpg + j;
    const float2 st = group_stats(p, partial, b, g);
    const float2 map = channel_map(p, b, c, st.y);
    float* row = p.coeffs + static_cast<int64_t>(b) * 3 * p.channels + c;
    row[0] = st.x;
    row[p.channels] = map.x;
    row[2 * p.channels] = map.y;
  }
}

// Block (chunk, b): thread g < groups merges group g's statistics, then the block normalizes
// its kChunkElements elements of image b ([HW, C] order).
template <typename T>
__global__ void __launch_bounds__(kThreads) group_norm_nhwc_apply_kernel(const GroupNormNhwcParams p,
                                                                         const float2* partial) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  __shared__ float2 stats[kMaxNormGroups];  // mean, rstd per group
  const int b = blockIdx.y;
  const int cpg = p.channels / p.groups;
  for (int g = threadIdx.x; g < p.groups; g += kThreads) stats[g] = group_stats(p, partial, b, g);
  __syncthreads();

  T* y = static_cast<T*>(p.y);
  const int64_t image = static_cast<int64_t>(p.hw) * p.channels;
  const int64_t e0 = static_cast<int64_t>(blockIdx.x) * kChunkElements;
  const int64_t e1 = min(image, e0 + kChunkElements);
  for (int64_t e = e0 + threadIdx.x; e < e1; e += kThreads) {
    const int c = static_cast<int>(e % p.channels), pos = static_cast<int>(e / p.channels);
    const float2 st = stats[c / cpg];
    const float2 map = channel_map(p, b, c, st.y);
    // In place (y == x) is safe: each element is read, then written, by one thread, and the
    // statistics were taken by the launch before.
    y[image * b + e] = from_f32<T>(nhwc_detail::norm_act(load<T>(p, b, c, pos), st.x, map.x,
                                                         map.y, p.silu));
  }
}

template <typename T>
cudaError_t launch(const GroupNormNhwcParams& p, float* workspace, cudaStream_t stream) {
  const Chunks chunks = stats_chunks(p);
  float2* partial = reinterpret_cast<float2*>(workspace);
  CM4J_LAUNCH(group_norm_nhwc_stats_kernel<T>, dim3(chunks.count, p.groups, p.batch), kThreads,
              stream, p, partial);
  if (p.coeffs) return cudaGetLastError();
  const int64_t image = static_cast<int64_t>(p.hw) * p.channels;
  const int apply_chunks = static_cast<int>((image + kChunkElements - 1) / kChunkElements);
  CM4J_LAUNCH(group_norm_nhwc_apply_kernel<T>, dim3(apply_chunks, p.batch), kThreads, stream, p,
              static_cast<const float2*>(partial));
  return cudaGetLastError();
}

}  // namespace

size_t group_norm_nhwc_workspace_floats(const GroupNormNhwcParams& p) {
  if (p.groups < 1 || p.channels % p.groups != 0 || p.hw < 1) return 0;
  return 2 * static_cast<size_t>(p.batch) * p.groups * stats_chunks(p).count;
}

cudaError_t group_norm_nhwc_forward(const GroupNormNhwcParams& p, float* workspace,
                                    cudaStream_t stream) {
  if (p.batch < 1 || p.channels < 1 || p.hw < 1 || p.groups < 1 || p.groups > kMaxNormGroups ||
      p.channels % p.groups != 0 || !p.x || !p.y == !p.coeffs || (p.coeffs && !p.counters) ||
      !workspace)
    return cudaErrorInvalidValue;
  if (p.x2 && (p.c1 < 1 || p.c1 >= p.channels)) return cudaErrorInvalidValue;
  if ((p.scale || p.shift) && p.scale_stride < p.channels) return cudaErrorInvalidValue;
  if (static_cast<int64_t>(p.channels) * p.hw >= INT32_MAX || p.batch > 65535 ||
      stats_chunks(p).count > INT32_MAX / 2)
    return cudaErrorInvalidValue;
  switch (p.type) {
    case HalfType::kF16: return launch<__half>(p, workspace, stream);
    case HalfType::kBF16: return launch<__nv_bfloat16>(p, workspace, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace kernels
}  // namespace cm4j

// Attention over NHWC fp16/bf16: attention.cu's kernel (one thread per query, keys and
// values staged in shared memory as fp32, online softmax) reading the channels-last qkv.
// Not yet run on a GPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>

#include "attention_nhwc.cuh"
#include "indexing.cuh"
#include "launch.cuh"
#include "nhwc_device.cuh"

namespace cm4j {
namespace kernels {

namespace {

using nhwc_detail::from_f32;
using nhwc_detail::to_f32;

constexpr int kQueries = 128;  // queries per block, one per thread
constexpr int kKeys = 64;      // keys staged in shared memory per step

// One block per (query tile, head, image). Each thread keeps its query and its output
// accumulator in registers (MAXD >= dim_head; the extra lanes stay zero) and walks all keys
// with an online softmax: when a score exceeds the running max, the sum and the
// accumulator are rescaled by exp(old_max - new_max).
template <typename T, int MAXD>
__global__ void __launch_bounds__(kQueries) attention_nhwc_kernel(const AttentionNhwcParams p) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  __shared__ float k_tile[MAXD][kKeys];
  __shared__ float v_tile[MAXD][kKeys];
  const int b = blockIdx.z, h = blockIdx.y;
  const int i = blockIdx.x * kQueries + threadIdx.x;
  const bool active = i < p.hw;
  const int dh = p.dim_head;
  const T* qkv = static_cast<const T*>(p.qkv);

  float q[MAXD], acc[MAXD];
#pragma unroll
  for (int c = 0; c < MAXD; ++c) {
    q[c] = (active && c < dh)
               ? to_f32(qkv[kidx::qkv_offset_nhwc(b, 0, h, c, i, p.channels, dh, p.hw)])
               : 0.0f;
    acc[c] = 0.0f;
  }
  float running_max = -INFINITY, sum = 0.0f;

  for (int j0 = 0; j0 < p.hw; j0 += kKeys) {
    // Channel-fastest: consecutive threads read consecutive channels of one key.
    for (int idx = threadIdx.x; idx < MAXD * kKeys; idx += kQueries) {
      const int c = idx % MAXD, jj = idx / MAXD, j = j0 + jj;
      const bool ok = c < dh && j < p.hw;
      k_tile[c][jj] =
          ok ? to_f32(qkv[kidx::qkv_offset_nhwc(b, 1, h, c, j, p.channels, dh, p.hw)]) : 0.0f;
      v_tile[c][jj] =
          ok ? to_f32(qkv[kidx::qkv_offset_nhwc(b, 2, h, c, j, p.channels, dh, p.hw)]) : 0.0f;
    }
    __syncthreads();
    const int n = min(kKeys, p.hw - j0);
    if (active) {
      for (int jj = 0; jj < n; ++jj) {
        float s = 0.0f;
#pragma unroll
        for (int c = 0; c < MAXD; ++c) s = fmaf(q[c], k_tile[c][jj], s);
        s *= p.scale;
        if (s > running_max) {
          const float corr = expf(running_max - s);  // 0 on the first key
          sum *= corr;
#pragma unroll
          for (int c = 0; c < MAXD; ++c) acc[c] *= corr;
          running_max = s;
        }
        const float e = expf(s - running_max);
        sum += e;
#pragma unroll
        for (int c = 0; c < MAXD; ++c) acc[c] = fmaf(e, v_tile[c][jj], acc[c]);
      }
    }
    __syncthreads();
  }

  if (!active) return;
  const float inv = 1.0f / sum;
  T* out = static_cast<T*>(p.out);
#pragma unroll
  for (int c = 0; c < MAXD; ++c)
    if (c < dh)
      out[kidx::attn_out_offset_nhwc(b, h, c, i, p.channels, dh, p.hw)] = from_f32<T>(acc[c] * inv);
}

template <typename T>
void launch(const AttentionNhwcParams& p, cudaStream_t stream) {
  dim3 grid(kidx::ceil_div(p.hw, kQueries), p.heads, p.batch);
  void (*kernel)(const AttentionNhwcParams) = p.dim_head <= 8    ? attention_nhwc_kernel<T, 8>
                                              : p.dim_head <= 16 ? attention_nhwc_kernel<T, 16>
                                              : p.dim_head <= 32 ? attention_nhwc_kernel<T, 32>
                                                                 : attention_nhwc_kernel<T, 64>;
  CM4J_LAUNCH(kernel, grid, kQueries, stream, p);
}

}  // namespace

cudaError_t attention_nhwc_forward(const AttentionNhwcParams& p, cudaStream_t stream) {
  if (p.batch < 1 || p.heads < 1 || p.dim_head < 1 || p.hw < 1 || !p.qkv || !p.out ||
      p.channels != p.heads * p.dim_head || p.dim_head > kAttentionNhwcMaxDimHead ||
      p.batch > 65535 || p.heads > 65535)
    return cudaErrorInvalidValue;
  switch (p.type) {
    case HalfType::kF16: launch<__half>(p, stream); break;
    case HalfType::kBF16: launch<__nv_bfloat16>(p, stream); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace cm4j

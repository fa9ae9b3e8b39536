#include "attention.cuh"

#include <math.h>

#include "indexing.cuh"
#include "launch.cuh"

namespace cm4j {
namespace kernels {

namespace {

constexpr int kQueries = 128;  // queries per block, one per thread
constexpr int kKeys = 64;      // keys staged in shared memory per step

// One block per (query tile, head, image). Each thread keeps its query and its output
// accumulator in registers (MAXD >= dim_head; the extra lanes stay zero) and walks all keys
// with an online softmax: when a score exceeds the running max, the sum and the
// accumulator are rescaled by exp(old_max - new_max).
template <int MAXD>
__global__ void __launch_bounds__(kQueries) attention_kernel(const AttentionParams p) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  __shared__ float k_tile[MAXD][kKeys];
  __shared__ float v_tile[MAXD][kKeys];
  const int b = blockIdx.z, h = blockIdx.y;
  const int i = blockIdx.x * kQueries + threadIdx.x;
  const bool active = i < p.hw;
  const int dh = p.dim_head;

  float q[MAXD], acc[MAXD];
#pragma unroll
  for (int c = 0; c < MAXD; ++c) {
    q[c] = (active && c < dh)
               ? p.qkv[kidx::qkv_offset(b, 0, h, c, i, p.channels, dh, p.hw)]
               : 0.0f;
    acc[c] = 0.0f;
  }
  float running_max = -INFINITY, sum = 0.0f;

  for (int j0 = 0; j0 < p.hw; j0 += kKeys) {
    for (int idx = threadIdx.x; idx < MAXD * kKeys; idx += kQueries) {
      const int c = idx / kKeys, jj = idx % kKeys, j = j0 + jj;
      const bool ok = c < dh && j < p.hw;
      k_tile[c][jj] = ok ? p.qkv[kidx::qkv_offset(b, 1, h, c, j, p.channels, dh, p.hw)] : 0.0f;
      v_tile[c][jj] = ok ? p.qkv[kidx::qkv_offset(b, 2, h, c, j, p.channels, dh, p.hw)] : 0.0f;
    }
    __syncthreads();
    const int n = min(kKeys, p.hw - j0);
    if (active) {
      // Not unrolled: ptxas spilled 8 bytes unrolling it for MAXD 8 on sm_90.
#pragma unroll 1
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
#pragma unroll
  for (int c = 0; c < MAXD; ++c)
    if (c < dh) p.out[kidx::attn_out_offset(b, h, c, i, p.channels, dh, p.hw)] = acc[c] * inv;
}

}  // namespace

cudaError_t attention_forward(const AttentionParams& p, cudaStream_t stream) {
  if (p.batch < 1 || p.heads < 1 || p.dim_head < 1 || p.hw < 1 || !p.qkv || !p.out ||
      p.channels != p.heads * p.dim_head || p.dim_head > kAttentionMaxDimHead ||
      p.batch > 65535 || p.heads > 65535)
    return cudaErrorInvalidValue;
  dim3 grid(kidx::ceil_div(p.hw, kQueries), p.heads, p.batch);
  if (p.dim_head <= 8)
    CM4J_LAUNCH(attention_kernel<8>, grid, kQueries, stream, p);
  else if (p.dim_head <= 16)
    CM4J_LAUNCH(attention_kernel<16>, grid, kQueries, stream, p);
  else if (p.dim_head <= 32)
    CM4J_LAUNCH(attention_kernel<32>, grid, kQueries, stream, p);
  else
    CM4J_LAUNCH(attention_kernel<64>, grid, kQueries, stream, p);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace cm4j

#include "time_embedding.cuh"

#include "indexing.cuh"
#include "launch.cuh"

namespace cm4j {
namespace kernels {

namespace {

constexpr int kWarps = 16;
constexpr int kThreads = kWarps * 32;

__device__ __forceinline__ float silu(float v) { return v / (1.0f + expf(-v)); }

// x . w over k values, the lanes of one warp striding over k (coalesced reads of the weight
// row), then a shuffle reduction; every lane gets the sum.
__device__ __forceinline__ float warp_dot(const float* x, const float* w, int k, int lane) {
  float s = 0.0f;
  for (int i = lane; i < k; i += 32) s = fmaf(x[i], w[i], s);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  return s;
}

__global__ void __launch_bounds__(kThreads) time_embedding_kernel(const TimeEmbeddingParams p) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  __shared__ float sinusoid[kTimeEmbeddingMaxChannels];  // [channels]
  __shared__ float hidden[kTimeEmbeddingMaxDim];          // [dim]
  const int b = blockIdx.x;
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;

  // time_proj: sin/cos of the float32 product t * freq, in double and rounded once, as
  // timestep_embedding_kernel (and the CPU backend) compute it.
  const float t = p.t[b];
  for (int j = threadIdx.x; j < p.channels; j += kThreads) {
    const kidx::SinusoidColumn c = kidx::sinusoid_column(j, p.channels / 2, p.flip_sin_to_cos);
    float v = 0.0f;  // the padding column of an odd width
    if (c.freq >= 0) {
      const double a = static_cast<double>(t * p.freq[c.freq]);
      v = static_cast<float>(c.sine ? sin(a) : cos(a));
    }
    sinusoid[j] = v;
  }
  __syncthreads();

  // linear_1 + SiLU: one warp per output row.
  for (int n = warp; n < p.dim; n += kWarps) {
    const float* w = p.w1 + static_cast<int64_t>(n) * p.channels;
    const float s = warp_dot(sinusoid, w, p.channels, lane);
    if (lane == 0) hidden[n] = silu(s + (p.b1 ? p.b1[n] : 0.0f));
  }
  __syncthreads();

  // linear_2, then the class embedding row added after the bias.
  const float* cls = p.class_table ? p.class_table + p.labels[b] * p.dim : nullptr;
  float* out = p.emb + static_cast<int64_t>(b) * p.dim;
  for (int n = warp; n < p.dim; n += kWarps) {
    const float s = warp_dot(hidden, p.w2 + static_cast<int64_t>(n) * p.dim, p.dim, lane);
    if (lane != 0) continue;
    float v = s + (p.b2 ? p.b2[n] : 0.0f);
    if (cls) v += cls[n];
    out[n] = v;
  }
}

}  // namespace

cudaError_t time_embedding_forward(const TimeEmbeddingParams& p, cudaStream_t stream) {
  if (p.batch < 1 || p.channels < 1 || p.dim < 1 ||
      p.channels > kTimeEmbeddingMaxChannels || p.dim > kTimeEmbeddingMaxDim)
    return cudaErrorInvalidValue;
  if (!p.t || !p.w1 || !p.w2 || !p.emb || (p.channels >= 2 && !p.freq) ||
      (p.class_table && !p.labels))
    return cudaErrorInvalidValue;
  CM4J_LAUNCH(time_embedding_kernel, p.batch, kThreads, stream, p);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace cm4j

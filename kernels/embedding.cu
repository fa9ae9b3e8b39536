#include "embedding.cuh"

#include <cmath>

#include "indexing.cuh"
#include "launch.cuh"

namespace cm4j {
namespace kernels {

namespace {

constexpr int kThreads = 256;

__global__ void timestep_embedding_kernel(const TimestepEmbeddingParams p) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  const int b = blockIdx.y;
  const int j = blockIdx.x * kThreads + threadIdx.x;
  if (j >= p.dim) return;
  const int half = p.dim / 2;
  float v = 0.0f;  // the padding column of an odd dim
  if (j < 2 * half) {
    const int i = j < half ? j : j - half;
    const float arg = p.t[b] * p.freq[i];
    const bool first_half = j < half;
    // Unflipped: [sin, cos]; flipped: [cos, sin].
    // In double, rounded once: the correctly rounded float32 value the CPU backend computes.
    const double a = static_cast<double>(arg);
    v = static_cast<float>((first_half != p.flip_sin_to_cos) ? sin(a) : cos(a));
  }
  p.emb[static_cast<int64_t>(b) * p.dim + j] = v;
}

struct LookupParams {
  const float* table;
  float* rows;
  int dim, count;
  int64_t labels[kEmbeddingMaxRows];
};

__global__ void embedding_lookup_kernel(const LookupParams p) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  const int r = blockIdx.y;
  const int j = blockIdx.x * kThreads + threadIdx.x;
  if (j < p.dim) p.rows[static_cast<int64_t>(r) * p.dim + j] = p.table[p.labels[r] * p.dim + j];
}

}  // namespace

void timestep_frequencies(int half, float freq_shift, float* freq) {
  const float neg_log_period = static_cast<float>(-std::log(10000.0));
  const float denom = static_cast<float>(half) - freq_shift;
  for (int i = 0; i < half; ++i) {
    float e = neg_log_period * static_cast<float>(i);
    e = e / denom;
    freq[i] = static_cast<float>(std::exp(static_cast<double>(e)));  // correctly rounded
  }
}

cudaError_t timestep_embedding_forward(const TimestepEmbeddingParams& p, cudaStream_t stream) {
  if (p.batch < 1 || p.batch > 65535 || p.dim < 1 || !p.t || !p.emb || (p.dim >= 2 && !p.freq))
    return cudaErrorInvalidValue;
  dim3 grid(kidx::ceil_div(p.dim, kThreads), p.batch);
  CM4J_LAUNCH(timestep_embedding_kernel, grid, kThreads, stream, p);
  return cudaGetLastError();
}

cudaError_t embedding_lookup_forward(const float* table, const int64_t* host_labels,
                                     float* rows, int batch, int dim, cudaStream_t stream) {
  if (!table || !host_labels || !rows || batch < 1 || dim < 1) return cudaErrorInvalidValue;
  for (int r0 = 0; r0 < batch; r0 += kEmbeddingMaxRows) {
    LookupParams p;
    p.table = table;
    p.rows = rows + static_cast<int64_t>(r0) * dim;
    p.dim = dim;
    p.count = batch - r0 < kEmbeddingMaxRows ? batch - r0 : kEmbeddingMaxRows;
    for (int r = 0; r < kEmbeddingMaxRows; ++r) p.labels[r] = r < p.count ? host_labels[r0 + r] : 0;
    dim3 grid(kidx::ceil_div(dim, kThreads), p.count);
    CM4J_LAUNCH(embedding_lookup_kernel, grid, kThreads, stream, p);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

}  // namespace kernels
}  // namespace cm4j

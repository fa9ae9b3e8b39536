// The time path's two table-free embeddings:
//   timestep_embedding: diffusers' get_timestep_embedding, t [B] -> [B, dim]
//   embedding_lookup:   class embedding rows, table [num, dim] -> [B, dim]
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

// Resource ceilings, per thread and per block, for every template instance on sm_80 and
// sm_90 (kernels/dev/ptxas-check.sh holds ptxas to them, and to no spills):
// ptxas budget: timestep_embedding_kernel 32 registers, 0 bytes shared
// ptxas budget: embedding_lookup_kernel 16 registers, 0 bytes shared

namespace cm4j {
namespace kernels {

// Host: freq[i] = exp(-ln(10000) * i / (half - freq_shift)) for i < half, the exponent in
// float32 as torch computes it, exp correctly rounded. Computed once on the host so the
// device and the CPU backend agree to the last bit; sin/cos of the float32 product
// t * freq are taken in double on the device and rounded once, giving the same correctly
// rounded values as the CPU backend.
void timestep_frequencies(int half, float freq_shift, float* freq);

struct TimestepEmbeddingParams {
  int batch = 1, dim = 0;
  bool flip_sin_to_cos = false;
  const float* t = nullptr;     // [B] on the device
  const float* freq = nullptr;  // [dim / 2] from timestep_frequencies, on the device
  float* emb = nullptr;         // [B, dim]; [sin, cos] halves, [cos, sin] when flipped,
                                // a zero last column when dim is odd
};

cudaError_t timestep_embedding_forward(const TimestepEmbeddingParams& p, cudaStream_t stream);

// rows[b, :] = table[labels[b], :]. Labels are host values (already validated) and travel
// in the launch parameters, kEmbeddingMaxRows per launch.
constexpr int kEmbeddingMaxRows = 32;

cudaError_t embedding_lookup_forward(const float* table, const int64_t* host_labels,
                                     float* rows, int batch, int dim, cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

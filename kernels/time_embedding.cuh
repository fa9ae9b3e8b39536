// The whole time path in one launch (the candidate kernel set):
//   emb[b] = linear_2(silu(linear_1(sinusoid(t[b])))) + class_table[labels[b]]
// with the sinusoid of timestep_embedding (embedding.cuh) and w1/w2 in torch nn.Linear
// layout. One block per image: the sinusoid and the hidden row stay in shared memory.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

// Resource ceilings, per thread and per block, for every template instance on sm_80 and
// sm_90 (kernels/dev/ptxas-check.sh holds ptxas to them, and to no spills):
// ptxas budget: time_embedding_kernel 32 registers, 20480 bytes shared

namespace cm4j {
namespace kernels {

// Shared-memory rows of one block: the sinusoid and the hidden activations.
constexpr int kTimeEmbeddingMaxChannels = 1024;
constexpr int kTimeEmbeddingMaxDim = 4096;

struct TimeEmbeddingParams {
  int batch = 1;
  int channels = 0;  // sinusoid width (linear_1's input), <= kTimeEmbeddingMaxChannels
  int dim = 0;       // time_embed_dim, <= kTimeEmbeddingMaxDim
  bool flip_sin_to_cos = false;
  const float* t = nullptr;            // [B]
  const float* freq = nullptr;         // [channels / 2] from timestep_frequencies
  const float* w1 = nullptr;           // [dim, channels]
  const float* b1 = nullptr;           // [dim] or null
  const float* w2 = nullptr;           // [dim, dim]
  const float* b2 = nullptr;           // [dim] or null
  const float* class_table = nullptr;  // [classes, dim] or null
  const int64_t* labels = nullptr;     // [B] on the device (validated); with class_table
  float* emb = nullptr;                // [B, dim]
};

cudaError_t time_embedding_forward(const TimeEmbeddingParams& p, cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

// Attention's host side (kernels/attention.cu, attention_nhwc.cu, attention_nhwc_mma.cu).
#include <string>

#include "attention.cuh"
#include "attention_nhwc.cuh"
#include "attention_nhwc_mma.cuh"
#include "cuda/cuda_backend_impl.h"

namespace cm4j {
namespace cuda {

namespace {

// The engine's params and args in the kernel's params struct (see fill_conv in conv2d.cpp).
template <typename K>
void fill_attention(const AttentionParams& p, const AttentionArgs& a, K* k) {
  k->batch = p.batch;
  k->channels = p.channels;
  k->hw = p.hw;
  k->heads = p.heads;
  k->dim_head = p.dim_head;
  k->scale = p.scale;
  k->qkv = a.qkv;
  k->out = a.out;
}

}  // namespace

Status CudaBackend::attention(const AttentionParams& p, const AttentionArgs& a) {
  if (p.dim_head > kernels::kAttentionMaxDimHead)
    return {CM4J_ERR_UNSUPPORTED, "attention: dim_head " + std::to_string(p.dim_head) +
                                      " is above the CUDA kernel's limit of " +
                                      std::to_string(kernels::kAttentionMaxDimHead)};
  if (nhwc_) return attention_nhwc(p, a);
  kernels::AttentionParams k;
  fill_attention(p, a, &k);
  cudaSetDevice(device_);
  return finish(kernels::attention_forward(k, stream_), "attention");
}

Status CudaBackend::attention_nhwc(const AttentionParams& p, const AttentionArgs& a) {
  kernels::AttentionNhwcParams k;
  fill_attention(p, a, &k);
  k.type = half_;
  cudaSetDevice(device_);
  // Head dim 64 (the models') as flash attention on tensor cores; other head dims (the
  // tiny model's 8) on the one-thread-per-query kernel.
  if (kernels::attention_nhwc_mma_supports(k))
    return finish(kernels::attention_nhwc_mma_forward(k, stream_), "attention");
  return finish(kernels::attention_nhwc_forward(k, stream_), "attention");
}

}  // namespace cuda
}  // namespace cm4j

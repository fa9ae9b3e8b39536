// The time path's host side: the linear layers (kernels/linear.cu), the timestep embedding and
// class-embedding lookup (embedding.cu), and the candidate set's whole time path in one
// launch (time_embedding.cu), with the frequency tables and class labels they upload.
#include <string>
#include <vector>

#include "cuda/cuda_backend_impl.h"
#include "embedding.cuh"
#include "linear.cuh"
#include "time_embedding.cuh"

namespace cm4j {
namespace cuda {

Status CudaBackend::prepare_linear(const float* w, int n, int k, std::unique_ptr<Weight>* out) {
  if (n < 1 || k < 1) return invalid("prepare_linear: bad shape");
  std::unique_ptr<DeviceWeight> dw;
  Status s = upload_weight(w, static_cast<size_t>(n) * k, "prepare_linear", &dw);
  if (!s.ok()) return s;
  dw->rows = n;
  dw->cols = k;
  *out = std::move(dw);
  return Status::Ok();
}

Status CudaBackend::linear(const LinearParams& p, const LinearArgs& a) {
  auto* w = dynamic_cast<const DeviceWeight*>(a.weight);
  if (!w || w->is_conv) return invalid("linear: weight was not prepared by prepare_linear");
  if (w->rows != p.n || w->cols != p.k)
    return invalid("linear: weight is [" + std::to_string(w->rows) + ", " +
                   std::to_string(w->cols) + "], call expects [" + std::to_string(p.n) +
                   ", " + std::to_string(p.k) + "]");
  kernels::LinearParams k;
  k.m = p.m;
  k.n = p.n;
  k.k = p.k;
  k.silu_input = p.silu_input;
  k.silu_output = p.silu_output;
  k.x = a.x;
  k.w = static_cast<const float*>(w->data);
  k.bias = a.bias;
  k.add = a.add;
  k.y = a.y;
  cudaSetDevice(device_);
  const auto variant = kernels_ == CudaKernels::kCandidate ? kernels::LinearVariant::kRowTiles
                                                           : kernels::LinearVariant::kOneRow;
  return finish(kernels::linear_forward(k, stream_, variant), "linear");
}

Status CudaBackend::timestep_embedding(const float* t, float* emb, int batch, int dim,
                                       bool flip_sin_to_cos, float freq_shift) {
  cudaSetDevice(device_);
  const float* freq = nullptr;
  if (dim >= 2) {
    Status s = frequencies(dim / 2, freq_shift, &freq);
    if (!s.ok()) return s;
  }
  kernels::TimestepEmbeddingParams k;
  k.batch = batch;
  k.dim = dim;
  k.flip_sin_to_cos = flip_sin_to_cos;
  k.t = t;
  k.freq = freq;
  k.emb = emb;
  return finish(kernels::timestep_embedding_forward(k, stream_), "timestep_embedding");
}

Status CudaBackend::embedding_lookup(const float* table, const int64_t* labels, float* rows,
                                     int batch, int dim) {
  cudaSetDevice(device_);
  return finish(kernels::embedding_lookup_forward(table, labels, rows, batch, dim, stream_),
                "embedding_lookup");
}

Status CudaBackend::time_embedding(const TimeEmbeddingParams& p, const TimeEmbeddingArgs& a) {
  if (kernels_ != CudaKernels::kCandidate || p.channels > kernels::kTimeEmbeddingMaxChannels ||
      p.dim > kernels::kTimeEmbeddingMaxDim)
    return compose_time_embedding(this, p, a);
  auto* w1 = dynamic_cast<const DeviceWeight*>(a.linear_1);
  auto* w2 = dynamic_cast<const DeviceWeight*>(a.linear_2);
  if (!w1 || w1->is_conv || w1->rows != p.dim || w1->cols != p.channels || !w2 ||
      w2->is_conv || w2->rows != p.dim || w2->cols != p.dim)
    return invalid("time_embedding: linear_1/linear_2 are not [" + std::to_string(p.dim) +
                   ", " + std::to_string(p.channels) + "] and [" + std::to_string(p.dim) +
                   ", " + std::to_string(p.dim) + "] linear weights");
  if (a.class_table && !a.class_labels)
    return invalid("time_embedding: a class table without labels");
  cudaSetDevice(device_);
  const float* freq = nullptr;
  if (p.channels >= 2) {
    Status s = frequencies(p.channels / 2, p.freq_shift, &freq);
    if (!s.ok()) return s;
  }
  kernels::TimeEmbeddingParams k;
  k.batch = p.batch;
  k.channels = p.channels;
  k.dim = p.dim;
  k.flip_sin_to_cos = p.flip_sin_to_cos;
  k.t = a.t;
  k.freq = freq;
  k.w1 = static_cast<const float*>(w1->data);
  k.b1 = a.bias_1;
  k.w2 = static_cast<const float*>(w2->data);
  k.b2 = a.bias_2;
  if (a.class_table) {
    Status s = upload_labels(a.class_labels, p.batch, &k.labels);
    if (!s.ok()) return s;
    k.class_table = a.class_table;
  }
  k.emb = a.emb;
  return finish(kernels::time_embedding_forward(k, stream_), "time_embedding");
}

Status CudaBackend::frequencies(int half, float shift, const float** out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto key = std::make_pair(half, shift);
  auto it = freq_tables_.find(key);
  if (it != freq_tables_.end()) {
    *out = it->second;
    return Status::Ok();
  }
  std::vector<float> host(half);
  kernels::timestep_frequencies(half, shift, host.data());
  float* d = nullptr;
  cudaError_t e = cudaMalloc(&d, half * sizeof(float));
  if (e != cudaSuccess) return cuda_error(e, "timestep_embedding");
  e = cudaMemcpyAsync(d, host.data(), half * sizeof(float), cudaMemcpyHostToDevice, stream_);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
  if (e != cudaSuccess) {
    cudaFree(d);
    return cuda_error(e, "timestep_embedding");
  }
  freq_tables_[key] = d;
  *out = d;
  return Status::Ok();
}

Status CudaBackend::upload_labels(const int64_t* host, int batch, const int64_t** out) {
  if (batch > labels_capacity_) {
    cudaStreamSynchronize(stream_);  // queued work may still read the old buffer
    cudaFree(labels_);
    labels_ = nullptr;
    labels_capacity_ = 0;
    void* d = nullptr;
    cudaError_t e = cudaMalloc(&d, batch * sizeof(int64_t));
    if (e != cudaSuccess) return cuda_error(e, "time_embedding (labels)");
    labels_ = static_cast<int64_t*>(d);
    labels_capacity_ = batch;
  }
  cudaError_t e = cudaMemcpyAsync(labels_, host, batch * sizeof(int64_t),
                                  cudaMemcpyHostToDevice, stream_);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
  if (e != cudaSuccess) return cuda_error(e, "time_embedding (labels)");
  *out = labels_;
  return Status::Ok();
}

}  // namespace cuda
}  // namespace cm4j

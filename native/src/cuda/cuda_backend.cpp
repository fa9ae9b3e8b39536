// The CUDA backend: fp32 NCHW activations in device memory (or, in the opt-in NHWC mode,
// fp16/bf16 channels-last: see kernels/nhwc.cuh), one stream per backend, every op a
// launch of a kernel from kernels/. Failures come back as Status (never abort):
// CM4J_ERR_DEVICE "CUDA error in <op>: <cudaGetErrorString>" for CUDA failures,
// CM4J_ERR_INVALID_ARGUMENT for calls that do not match their weights.
#include "cuda/cuda_backend.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_set>
#include <utility>
#include <vector>

#include "attention.cuh"
#include "attention_nhwc.cuh"
#include "attention_nhwc_mma.cuh"
#include "cm4j.h"
#include "conv2d.cuh"
#include "conv2d_nhwc.cuh"
#include "conv2d_nhwc_mma.cuh"
#include "cuda/conv_tuner.h"
#include "elementwise.cuh"
#include "elementwise_nhwc.cuh"
#include "embedding.cuh"
#include "group_norm.cuh"
#include "group_norm_nhwc.cuh"
#include "linear.cuh"
#include "scheduler.cuh"
#include "time_embedding.cuh"

namespace cm4j {

namespace {

Status cuda_error(cudaError_t e, const std::string& op) {
  if (e == cudaSuccess) return Status::Ok();
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  int code = e == cudaErrorMemoryAllocation ? CM4J_ERR_OUT_OF_MEMORY : CM4J_ERR_DEVICE;
  return {code, "CUDA error in " + op + ": " + cudaGetErrorString(e)};
}

Status invalid(const std::string& message) { return {CM4J_ERR_INVALID_ARGUMENT, message}; }

// A device buffer owned by a prepared weight: fp32, or 2-byte fp16/bf16 for the
// tensor-core conv.
struct DeviceWeight : Weight {
  int device = 0;
  void* data = nullptr;
  size_t count = 0;
  size_t element_bytes = sizeof(float);
  int rows = 0, cols = 0, kernel = 0;  // conv: c_out, c_in, k; linear: n, k, 0
  bool is_conv = false;
  bool nhwc = false;  // conv packed in the NHWC mode's reduction order
  ~DeviceWeight() override {
    if (data) {
      cudaSetDevice(device);
      cudaFree(data);
    }
  }
  size_t bytes() const override { return count * element_bytes; }
};

// The engine's params and args in a kernel's params struct; the NCHW and NHWC kernels take
// the same fields (kernels/ does not include the engine's headers, hence the copies), the
// NHWC ones with untyped activation pointers and their storage type besides.
template <typename K>
void fill_conv(const ConvParams& p, const ConvArgs& a, K* k) {
  k->batch = p.batch;
  k->c_in1 = p.c_in1;
  k->c_in2 = p.c_in2;
  k->h_in = p.h_in;
  k->w_in = p.w_in;
  k->c_out = p.c_out;
  k->kernel = p.kernel;
  k->stride = p.stride;
  k->pad = p.pad;
  k->upsample = p.upsample;
  k->out_scale = p.out_scale;
  k->h_out = p.h_out();
  k->w_out = p.w_out();
  k->src1 = a.src1;
  k->src2 = p.c_in2 > 0 ? a.src2 : nullptr;
  k->bias = a.bias;
  k->bias_bc = a.bias_bc;
  k->bias_bc_stride = a.bias_bc_stride;
  k->residual = a.residual;
  k->dst = a.dst;
}

template <typename K>
void fill_group_norm(const GroupNormParams& p, const GroupNormArgs& a, K* k) {
  k->batch = p.batch;
  k->channels = p.channels;
  k->hw = p.hw;
  k->groups = p.groups;
  k->eps = p.eps;
  k->silu = p.silu;
  k->x = a.x;
  k->x2 = a.x2;
  k->c1 = a.x2 ? a.c1 : 0;
  k->gamma = a.gamma;
  k->beta = a.beta;
  k->scale = a.scale;
  k->shift = a.shift;
  k->scale_stride = a.scale_stride;
  k->y = a.y;
}

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

// A captured stream's instantiated graph.
struct DeviceGraph : CapturedWork {
  int device = 0;
  cudaGraphExec_t exec = nullptr;
  ~DeviceGraph() override {
    cudaSetDevice(device);
    if (exec) cudaGraphExecDestroy(exec);
  }
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, CudaKernels kernel_set, kernels::ConvOperand operand,
              cudaStream_t stream, bool sync_each_op, bool graphs, TuningMode tuning)
      : device_(device),
        kernels_(kernel_set),
        operand_(operand),
        nhwc_(kernel_set == CudaKernels::kCandidate && operand != kernels::ConvOperand::kF32),
        half_(operand == kernels::ConvOperand::kBF16 ? kernels::HalfType::kBF16
                                                     : kernels::HalfType::kF16),
        stream_(stream),
        sync_each_op_(sync_each_op),
        graphs_(graphs && !sync_each_op) {
    if (nhwc_) tuner_ = std::make_unique<ConvTuner>(tuning, device);
  }

  ~CudaBackend() override {
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);
    tuner_.reset();  // its cuBLAS handle works on stream_
    if (staging_) cudaFree(staging_);
    for (auto& f : freq_tables_) cudaFree(f.second);
    cudaFree(labels_);
    for (float* p : live_) cudaFree(p);
    cudaStreamDestroy(stream_);
  }

  const char* name() const override { return "cuda"; }
  cudaStream_t stream() const { return stream_; }

  Status alloc(size_t bytes, float** out) override {
    *out = nullptr;
    cudaSetDevice(device_);
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes == 0 ? sizeof(float) : bytes);
    if (e != cudaSuccess)
      return cuda_error(e, "alloc (" + std::to_string(bytes) + " bytes)");
    *out = static_cast<float*>(p);
    std::lock_guard<std::mutex> lock(mu_);
    live_.insert(*out);
    return Status::Ok();
  }

  void free(float* p) override {
    if (!p) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (live_.erase(p) == 0) return;  // not ours, or already freed
    }
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);  // queued work may still read it
    cudaFree(p);
  }

  // Both copies wait for completion: the host buffer may be reused as soon as they return.
  Status upload(float* dst, const float* src, size_t count) override {
    cudaSetDevice(device_);
    cudaError_t e =
        cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyHostToDevice, stream_);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
    return cuda_error(e, "upload");
  }

  Status download(float* dst, const float* src, size_t count) override {
    cudaSetDevice(device_);
    cudaError_t e =
        cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyDeviceToHost, stream_);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
    return cuda_error(e, "download");
  }

  // In the NHWC mode activations are fp16/bf16 channels-last: converted on the device
  // through a staging buffer of fp32 NCHW. Both copies wait for completion.
  Status upload_activation(float* dst, const float* src, const ActShape& shape) override {
    if (!nhwc_) return upload(dst, src, shape.numel());
    cudaSetDevice(device_);
    float* staging = nullptr;
    Status s = staging_buffer(shape.numel(), "upload_activation", &staging);
    if (!s.ok()) return s;
    cudaError_t e = cudaMemcpyAsync(staging, src, shape.numel() * sizeof(float),
                                    cudaMemcpyHostToDevice, stream_);
    if (e == cudaSuccess)
      e = kernels::nchw_to_nhwc(staging, dst, half_, shape.batch, shape.channels,
                                shape.h * shape.w, stream_);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
    return cuda_error(e, "upload_activation");
  }

  Status download_activation(float* dst, const float* src, const ActShape& shape) override {
    if (!nhwc_) return download(dst, src, shape.numel());
    cudaSetDevice(device_);
    float* staging = nullptr;
    Status s = staging_buffer(shape.numel(), "download_activation", &staging);
    if (!s.ok()) return s;
    cudaError_t e = kernels::nhwc_to_nchw(src, staging, half_, shape.batch, shape.channels,
                                          shape.h * shape.w, stream_);
    if (e == cudaSuccess)
      e = cudaMemcpyAsync(dst, staging, shape.numel() * sizeof(float), cudaMemcpyDeviceToHost,
                          stream_);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
    return cuda_error(e, "download_activation");
  }

  bool plain_activations() const override { return !nhwc_; }

  Status activation_from_f32(const float* src, float* dst, const ActShape& shape) override {
    if (!nhwc_) return invalid("activation_from_f32: activations are plain float32");
    cudaSetDevice(device_);
    return finish(kernels::nchw_to_nhwc(src, dst, half_, shape.batch, shape.channels,
                                        shape.h * shape.w, stream_),
                  "activation_from_f32");
  }

  Status activation_to_f32(const float* src, float* dst, const ActShape& shape) override {
    if (!nhwc_) return invalid("activation_to_f32: activations are plain float32");
    cudaSetDevice(device_);
    return finish(kernels::nhwc_to_nchw(src, dst, half_, shape.batch, shape.channels,
                                        shape.h * shape.w, stream_),
                  "activation_to_f32");
  }

  Status prepare_conv(const float* w, int c_out, int c_in, int kernel,
                      std::unique_ptr<Weight>* out) override {
    if (c_out < 1 || c_in < 1 || kernel < 1) return invalid("prepare_conv: bad shape");
    const size_t count = static_cast<size_t>(c_out) * c_in * kernel * kernel;
    std::vector<float> packed(count);
    if (nhwc_)
      kernels::conv2d_nhwc_pack_weight(w, c_out, c_in, kernel, packed.data());
    else
      kernels::conv2d_pack_weight(w, c_out, c_in, kernel, packed.data());
    std::unique_ptr<DeviceWeight> dw;
    Status s = upload_weight(packed.data(), count, "prepare_conv", &dw);
    if (!s.ok()) return s;
    if (operand_ != kernels::ConvOperand::kF32) {
      s = convert_weight(dw.get());
      if (!s.ok()) return s;
    }
    dw->rows = c_out;
    dw->cols = c_in;
    dw->kernel = kernel;
    dw->is_conv = true;
    dw->nhwc = nhwc_;
    *out = std::move(dw);
    return Status::Ok();
  }

  Status prepare_linear(const float* w, int n, int k, std::unique_ptr<Weight>* out) override {
    if (n < 1 || k < 1) return invalid("prepare_linear: bad shape");
    std::unique_ptr<DeviceWeight> dw;
    Status s = upload_weight(w, static_cast<size_t>(n) * k, "prepare_linear", &dw);
    if (!s.ok()) return s;
    dw->rows = n;
    dw->cols = k;
    *out = std::move(dw);
    return Status::Ok();
  }

  Status conv2d(const ConvParams& p, const ConvArgs& a) override {
    auto* w = dynamic_cast<const DeviceWeight*>(a.weight);
    if (!w || !w->is_conv) return invalid("conv2d: weight was not prepared by prepare_conv");
    if (w->rows != p.c_out || w->cols != p.c_in1 + p.c_in2 || w->kernel != p.kernel)
      return invalid("conv2d: weight is [" + std::to_string(w->rows) + ", " +
                     std::to_string(w->cols) + ", " + std::to_string(w->kernel) +
                     "], call expects [" + std::to_string(p.c_out) + ", " +
                     std::to_string(p.c_in1 + p.c_in2) + ", " + std::to_string(p.kernel) + "]");
    if (w->nhwc != nhwc_)
      return invalid("conv2d: weight was prepared by a backend with another activation layout");
    if (nhwc_) return conv2d_nhwc(p, a, w);
    if (a.norm) return invalid("conv2d: a fused group norm needs the NHWC mode (conv_fuses_norm)");
    kernels::Conv2dParams k;
    fill_conv(p, a, &k);
    k.operand = operand_;
    if (operand_ == kernels::ConvOperand::kF32)
      k.weight = static_cast<const float*>(w->data);
    else
      k.weight_lp = w->data;
    const auto variant = kernels_ == CudaKernels::kReference ? kernels::Conv2dVariant::kDirect
                                                             : kernels::Conv2dVariant::kTiled;
    cudaSetDevice(device_);
    return finish(kernels::conv2d_forward(k, variant, stream_), "conv2d");
  }

  // In the NHWC mode the tensor-core conv applies a group norm as it gathers its input
  // (conv2d_nhwc_mma.cuh): the norm then writes only its per-channel maps, and the
  // normalized tensor is neither written nor read back. The arena keeps buffers 64-byte
  // aligned, so the kernel's alignment holds wherever its channel counts do.
  bool conv_fuses_norm(const ConvParams& p) const override {
    return nhwc_ && kernels::conv2d_nhwc_mma_channels_ok(p.c_in1, p.c_in2, p.c_out);
  }

  Status group_norm(const GroupNormParams& p, const GroupNormArgs& a) override {
    if (a.x2 && (a.c1 < 1 || a.c1 >= p.channels))
      return invalid("group_norm: c1 " + std::to_string(a.c1) + " outside 1.." +
                     std::to_string(p.channels - 1) + " with a second source");
    if (nhwc_) return group_norm_nhwc(p, a);
    if (a.coeffs) return invalid("group_norm: coeffs (a fused norm) need the NHWC mode");
    kernels::GroupNormParams k;
    fill_group_norm(p, a, &k);
    cudaSetDevice(device_);
    return finish(kernels::group_norm_forward(k, stream_), "group_norm");
  }

  Status attention(const AttentionParams& p, const AttentionArgs& a) override {
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

  Status linear(const LinearParams& p, const LinearArgs& a) override {
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

  Status avg_pool2(const float* x, float* y, int batch, int channels, int h, int w) override {
    cudaSetDevice(device_);
    if (nhwc_)
      return finish(kernels::avg_pool2_nhwc_forward(x, y, half_, batch, channels, h, w, stream_),
                    "avg_pool2");
    return finish(kernels::avg_pool2_forward(x, y, batch, channels, h, w, stream_), "avg_pool2");
  }

  Status upsample_nearest2(const float* x, float* y, int batch, int channels, int h,
                           int w) override {
    cudaSetDevice(device_);
    if (nhwc_)
      return finish(
          kernels::upsample_nearest2_nhwc_forward(x, y, half_, batch, channels, h, w, stream_),
          "upsample_nearest2");
    return finish(kernels::upsample_nearest2_forward(x, y, batch, channels, h, w, stream_),
                  "upsample_nearest2");
  }

  Status timestep_embedding(const float* t, float* emb, int batch, int dim, bool flip_sin_to_cos,
                            float freq_shift) override {
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

  Status embedding_lookup(const float* table, const int64_t* labels, float* rows, int batch,
                          int dim) override {
    cudaSetDevice(device_);
    return finish(kernels::embedding_lookup_forward(table, labels, rows, batch, dim, stream_),
                  "embedding_lookup");
  }

  Status scale_model_input(const float* x, const float* divisor, float* y, int batch,
                           int64_t image) override {
    cudaSetDevice(device_);
    return finish(kernels::scale_model_input_forward(x, divisor, y, batch, image, stream_),
                  "scale_model_input");
  }

  Status scheduler_step(const SchedulerStepParams& p, const SchedulerStepArgs& a) override {
    kernels::SchedulerStepParams k;
    k.batch = p.batch;
    k.image = p.image;
    k.clip = p.clip;
    k.s_noise = p.s_noise;
    k.model_output = a.model_output;
    k.sample = a.sample;
    k.noise = a.noise;
    k.c_skip = a.c_skip;
    k.c_out = a.c_out;
    k.noise_scale = a.noise_scale;
    k.prev = a.prev;
    cudaSetDevice(device_);
    return finish(kernels::scheduler_step_forward(k, stream_), "scheduler_step");
  }

  Status edit_step(const EditStepParams& p, const EditStepArgs& a) override {
    if (const char* problem = edit_step_problem(p, a)) return invalid(problem);
    float q[3];
    edit_luma_axis(q);
    kernels::EditStepParams k;
    k.batch = p.batch;
    k.channels = p.channels;
    k.size = p.size;
    k.replacement = static_cast<int>(p.replacement);
    k.patch = p.patch;
    k.q0 = q[0];
    k.q1 = q[1];
    k.q2 = q[2];
    k.model_output = a.model_output;
    k.sample = a.sample;
    k.reference = a.reference;
    k.mask_keep = a.mask_keep;
    k.noise = a.noise;
    k.c_skip = a.c_skip;
    k.c_out = a.c_out;
    k.noise_scale = a.noise_scale;
    k.workspace = a.workspace;
    cudaSetDevice(device_);
    return finish(kernels::edit_step_forward(k, stream_), "edit_step");
  }

  // Candidate kernels: one launch (after the labels' copy); otherwise the four launches of
  // compose_time_embedding, as verified.
  Status time_embedding(const TimeEmbeddingParams& p, const TimeEmbeddingArgs& a) override {
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

  Status synchronize() override {
    cudaSetDevice(device_);
    return cuda_error(cudaStreamSynchronize(stream_), "synchronize");
  }

  // CUDA graphs (CM4J_CUDA_GRAPHS): the stream's work captured thread-locally, so another
  // thread's engine may allocate meanwhile; an op that waits or allocates while capturing
  // fails the capture, and that error is returned.
  bool can_capture() const override { return graphs_; }

  Status capture(const std::function<Status()>& queue, std::unique_ptr<CapturedWork>* out) override {
    cudaSetDevice(device_);
    cudaError_t e = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) return cuda_error(e, "capture");
    capturing_ = true;  // the conv tuner measures nothing meanwhile
    Status s = queue();
    capturing_ = false;
    cudaGraph_t graph = nullptr;
    e = cudaStreamEndCapture(stream_, &graph);  // ends it whatever queue() did
    if (s.ok() && e != cudaSuccess) s = cuda_error(e, "capture");
    auto g = std::make_unique<DeviceGraph>();
    g->device = device_;
    if (s.ok()) s = cuda_error(cudaGraphInstantiate(&g->exec, graph, 0), "capture (instantiate)");
    if (graph) cudaGraphDestroy(graph);
    if (!s.ok()) return s;
    *out = std::move(g);
    return Status::Ok();
  }

  uint64_t scratch_epoch() const override { return scratch_epoch_; }

  Status replay(const CapturedWork& work) override {
    auto* g = dynamic_cast<const DeviceGraph*>(&work);
    if (!g || g->device != device_) return invalid("replay: not a graph of this backend");
    cudaSetDevice(device_);
    return finish(cudaGraphLaunch(g->exec, stream_), "replay");
  }

 private:
  // ---- the NHWC mode's ops: the same calls on fp16/bf16 channels-last activations ----
  Status conv2d_nhwc(const ConvParams& p, const ConvArgs& a, const DeviceWeight* w) {
    kernels::Conv2dNhwcParams k;
    fill_conv(p, a, &k);
    k.type = half_;
    k.weight = w->data;
    k.norm = a.norm;
    k.norm_silu = a.norm && p.norm_silu;
    cudaSetDevice(device_);
    // The pipelined mma.sync kernel's tile and split, or the WMMA kernel, as the tuner
    // chooses (CM4J_TUNING); WMMA alone where the mma kernel's 16-byte gather does not apply
    // (conv_in, conv_out). Split-K's partial sums use the staging buffer (free during a conv:
    // ops run in order on one stream).
    const ConvChoice choice = tuner_->choose(k, stream_, capturing_);
    float* workspace = nullptr;
    if (const size_t floats = conv_choice_workspace_floats(k, choice)) {
      Status s = staging_buffer(floats, "conv2d", &workspace);
      if (!s.ok()) return s;
    }
    return finish(tuner_->run(k, choice, workspace, stream_), "conv2d");
  }

  Status group_norm_nhwc(const GroupNormParams& p, const GroupNormArgs& a) {
    kernels::GroupNormNhwcParams k;
    fill_group_norm(p, a, &k);
    k.type = half_;
    k.coeffs = a.coeffs;  // instead of y: the maps a conv applies (conv_fuses_norm)
    cudaSetDevice(device_);
    // The chunks' statistics go through the staging buffer, like split-K's partial sums.
    float* workspace = nullptr;
    Status s = staging_buffer(kernels::group_norm_nhwc_workspace_floats(k), "group_norm", &workspace);
    if (!s.ok()) return s;
    return finish(kernels::group_norm_nhwc_forward(k, workspace, stream_), "group_norm");
  }

  Status attention_nhwc(const AttentionParams& p, const AttentionArgs& a) {
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

  // The fp32 staging buffer of upload/download_activation (and the partial sums of split-K
  // in conv2d_nhwc and of group_norm_nhwc's chunks), grown to `floats` on demand.
  Status staging_buffer(size_t floats, const char* op, float** out) {
    if (staging_floats_ < floats) {
      cudaStreamSynchronize(stream_);
      if (staging_) cudaFree(staging_);
      staging_ = nullptr;
      staging_floats_ = 0;
      cudaError_t e = cudaMalloc(&staging_, floats * sizeof(float));
      if (e != cudaSuccess) {
        staging_ = nullptr;
        return cuda_error(e, std::string(op) + " (" + std::to_string(floats * sizeof(float)) +
                                 " bytes of staging)");
      }
      staging_floats_ = floats;
      ++scratch_epoch_;  // graphs captured with the old buffer are stale
    }
    *out = staging_;
    return Status::Ok();
  }

  // A launch's status; with CM4J_CUDA_SYNC=1 also waits so a fault names its op.
  Status finish(cudaError_t e, const char* op) {
    if (e == cudaSuccess && sync_each_op_) e = cudaStreamSynchronize(stream_);
    return cuda_error(e, op);
  }

  // Replaces dw's fp32 data by its fp16/bf16 rounding (on the device, with the CUDA
  // conversion intrinsics).
  Status convert_weight(DeviceWeight* dw) {
    void* lp = nullptr;
    cudaError_t e = cudaMalloc(&lp, dw->count * 2);
    if (e != cudaSuccess) return cuda_error(e, "prepare_conv (" + std::to_string(dw->count * 2) + " bytes)");
    e = kernels::conv2d_convert_weight(static_cast<const float*>(dw->data), lp,
                                       static_cast<int64_t>(dw->count), operand_, stream_);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
    if (e != cudaSuccess) {
      cudaFree(lp);
      return cuda_error(e, "prepare_conv");
    }
    cudaFree(dw->data);
    dw->data = lp;
    dw->element_bytes = 2;
    return Status::Ok();
  }

  Status upload_weight(const float* host, size_t count, const char* op,
                       std::unique_ptr<DeviceWeight>* out) {
    cudaSetDevice(device_);
    auto dw = std::make_unique<DeviceWeight>();
    dw->device = device_;
    dw->count = count;
    cudaError_t e = cudaMalloc(&dw->data, count * sizeof(float));
    if (e != cudaSuccess) {
      dw->data = nullptr;
      return cuda_error(e, std::string(op) + " (" + std::to_string(count * sizeof(float)) +
                               " bytes)");
    }
    // On our stream (a legacy-stream cudaMemcpy from pageable memory may return before
    // its DMA lands, and nothing would order it before our non-blocking stream's kernels).
    e = cudaMemcpyAsync(dw->data, host, count * sizeof(float), cudaMemcpyHostToDevice, stream_);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
    if (e != cudaSuccess) return cuda_error(e, op);
    *out = std::move(dw);
    return Status::Ok();
  }

  // Device table of the sinusoidal frequencies for (half, shift), built once.
  Status frequencies(int half, float shift, const float** out) {
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

  // Copies host labels to a device buffer of the backend (grown as needed) and waits, so
  // the caller's array may change as soon as this returns.
  Status upload_labels(const int64_t* host, int batch, const int64_t** out) {
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

  const int device_;
  const CudaKernels kernels_;
  const kernels::ConvOperand operand_;  // conv operands: fp32, or fp16/bf16 on tensor cores
  // The NHWC mode (candidate kernels with fp16/bf16): activations stored channels-last in
  // half_ between ops.
  const bool nhwc_;
  const kernels::HalfType half_;
  float* staging_ = nullptr;
  size_t staging_floats_ = 0;
  cudaStream_t stream_;
  const bool sync_each_op_;
  const bool graphs_;  // capture() and replay() offered
  bool capturing_ = false;  // inside capture()'s queue()
  std::unique_ptr<ConvTuner> tuner_;  // the NHWC mode's conv choice
  uint64_t scratch_epoch_ = 0;
  std::mutex mu_;  // guards live_ and freq_tables_
  std::unordered_set<float*> live_;
  std::map<std::pair<int, float>, float*> freq_tables_;
  int64_t* labels_ = nullptr;  // [labels_capacity_] class labels of the candidate time path
  int labels_capacity_ = 0;
};

const char* dtype_name(int dtype) {
  switch (dtype) {
    case CM4J_F32: return "fp32";
    case CM4J_F16: return "fp16";
    case CM4J_BF16: return "bf16";
    default: return "unknown";
  }
}

}  // namespace

bool parse_cuda_kernels(const char* name, CudaKernels* out) {
  if (!name || !*name || std::strcmp(name, "default") == 0) {
    *out = CudaKernels::kDefault;
    return true;
  }
  if (std::strcmp(name, "reference") == 0) {
    *out = CudaKernels::kReference;
    return true;
  }
  if (std::strcmp(name, "candidate") == 0) {
    *out = CudaKernels::kCandidate;
    return true;
  }
  return false;
}

int cuda_device_count(std::string* error) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (error) *error = std::string("CUDA unavailable: ") + cudaGetErrorString(e);
    return 0;
  }
  if (n == 0 && error) *error = "CUDA unavailable: no CUDA device found";
  return n;
}

std::unique_ptr<Backend> make_cuda_backend_with(int device, int dtype, CudaKernels kernel_set,
                                                std::string* error) {
  std::string scratch;
  if (!error) error = &scratch;
  const int n = cuda_device_count(error);
  if (n == 0) return nullptr;
  if (device < 0 || device >= n) {
    *error = "CUDA device " + std::to_string(device) + " does not exist (" +
             std::to_string(n) + " device" + (n == 1 ? "" : "s") + " found)";
    return nullptr;
  }
  kernels::ConvOperand operand;
  switch (dtype) {
    case CM4J_F32: operand = kernels::ConvOperand::kF32; break;
    case CM4J_F16: operand = kernels::ConvOperand::kF16; break;
    case CM4J_BF16: operand = kernels::ConvOperand::kBF16; break;
    default:
      *error = "CUDA backend: unknown dtype " + std::to_string(dtype);
      return nullptr;
  }
  TuningMode tuning;  // refused before anything is allocated
  const char* tuning_env = std::getenv("CM4J_TUNING");
  if (!parse_tuning_mode(tuning_env, &tuning)) {
    *error = std::string("CM4J_TUNING=") + tuning_env + ": expected off, cached or full";
    return nullptr;
  }
  cudaError_t e = cudaSetDevice(device);
  if (e == cudaSuccess && operand != kernels::ConvOperand::kF32) {
    // The fp16/bf16 conv runs on sm_80+ tensor cores.
    cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, device);
    if (e == cudaSuccess && prop.major < 8) {
      *error = std::string("CUDA backend: ") + dtype_name(dtype) + " needs compute capability 8.0+, " +
               prop.name + " is " + std::to_string(prop.major) + "." + std::to_string(prop.minor);
      return nullptr;
    }
  }
  cudaStream_t stream = nullptr;
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (e == cudaSuccess) e = cuda_probe_kernels(stream);
  if (e != cudaSuccess) {
    cudaGetLastError();
    cudaDeviceProp prop;
    std::string what = "CUDA device " + std::to_string(device);
    if (cudaGetDeviceProperties(&prop, device) == cudaSuccess)
      what += " (" + std::string(prop.name) + ", sm_" + std::to_string(prop.major) +
              std::to_string(prop.minor) + ")";
    *error = "CUDA unavailable: " + what + ": " + cudaGetErrorString(e);
    if (stream) cudaStreamDestroy(stream);
    return nullptr;
  }
  const char* sync = std::getenv("CM4J_CUDA_SYNC");
  const bool sync_each_op = sync && std::strcmp(sync, "1") == 0;
  // CUDA graphs: on or off; unset, on in the candidate set only, until a GPU run verifies them.
  const char* graphs_env = std::getenv("CM4J_CUDA_GRAPHS");
  bool graphs = kernel_set == CudaKernels::kCandidate;
  if (graphs_env && (std::strcmp(graphs_env, "on") == 0 || std::strcmp(graphs_env, "1") == 0)) {
    graphs = true;
  } else if (graphs_env && (std::strcmp(graphs_env, "off") == 0 || std::strcmp(graphs_env, "0") == 0)) {
    graphs = false;
  } else if (graphs_env && *graphs_env) {
    *error = std::string("CM4J_CUDA_GRAPHS=") + graphs_env + ": expected on or off";
    cudaStreamDestroy(stream);
    return nullptr;
  }
  return std::make_unique<CudaBackend>(device, kernel_set, operand, stream, sync_each_op, graphs,
                                       tuning);
}

std::unique_ptr<Backend> make_cuda_backend(int device, int dtype, std::string* error) {
  const char* env = std::getenv("CM4J_CUDA_KERNELS");
  CudaKernels kernel_set;
  if (!parse_cuda_kernels(env, &kernel_set)) {
    if (error)
      *error = std::string("CM4J_CUDA_KERNELS=") + env +
               ": expected default, reference or candidate";
    return nullptr;
  }
  return make_cuda_backend_with(device, dtype, kernel_set, error);
}

cudaStream_t cuda_backend_stream(Backend* backend) {
  auto* b = dynamic_cast<CudaBackend*>(backend);
  return b ? b->stream() : nullptr;
}

}  // namespace cm4j

// The CUDA backend's class, private to native/src/cuda/: each op's host code sits beside its
// kernel family, one file each (conv2d.cpp, group_norm.cpp, attention.cpp,
// time_embedding.cpp, elementwise.cpp, scheduler.cpp); memory, staging, graphs and the
// factory are in cuda_backend.cpp. Include only with CM4J_HAVE_CUDA.
//
// fp32 NCHW activations in device memory (or, in the opt-in NHWC mode, fp16/bf16
// channels-last: see kernels/nhwc.cuh), one stream per backend, every op a launch of a
// kernel from kernels/. Failures come back as Status (never abort):
// CM4J_ERR_DEVICE "CUDA error in <op>: <cudaGetErrorString>" for CUDA failures,
// CM4J_ERR_INVALID_ARGUMENT for calls that do not match their weights.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <utility>

#include "backend.h"
#include "cm4j.h"
#include "conv2d.cuh"
#include "cuda/conv_tuner.h"
#include "cuda/cuda_backend.h"
#include "nhwc.cuh"

namespace cm4j {
namespace cuda {

Status cuda_error(cudaError_t e, const std::string& op);

inline Status invalid(const std::string& message) {
  return {CM4J_ERR_INVALID_ARGUMENT, message};
}

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
  // What the environment asks of a backend (make_cuda_backend_with reads it).
  struct Options {
    bool sync_each_op = false;  // CM4J_CUDA_SYNC=1: wait after every op (for debugging)
    bool graphs = false;        // CM4J_CUDA_GRAPHS
    bool norm_fusion = true;    // CM4J_CUDA_NORM_FUSION (the NHWC mode's only)
    bool wgmma = false;         // CM4J_CUDA_WGMMA: the sm_90a conv among the tuner's candidates
    // CM4J_CUDA_PDL: a captured graph's kernels launch programmatically (launch_mode.h);
    // on compute capability 9.0+ only.
    bool programmatic_launches = false;
    TuningMode tuning = TuningMode::kCached;  // CM4J_TUNING
  };
  CudaBackend(int device, CudaKernels kernel_set, kernels::ConvOperand operand,
              cudaStream_t stream, const Options& options);
  ~CudaBackend() override;

  const char* name() const override { return "cuda"; }
  cudaStream_t stream() const { return stream_; }

  // ---- memory (cuda_backend.cpp) ----
  Status alloc(size_t bytes, float** out) override;
  void free(float* p) override;
  // Both copies wait for completion: the host buffer may be reused as soon as they return.
  Status upload(float* dst, const float* src, size_t count) override;
  Status download(float* dst, const float* src, size_t count) override;
  // In the NHWC mode activations are fp16/bf16 channels-last: converted on the device
  // through a staging buffer of fp32 NCHW. Both copies wait for completion.
  Status upload_activation(float* dst, const float* src, const ActShape& shape) override;
  Status download_activation(float* dst, const float* src, const ActShape& shape) override;
  bool plain_activations() const override { return !nhwc_; }
  Status activation_from_f32(const float* src, float* dst, const ActShape& shape) override;
  Status activation_to_f32(const float* src, float* dst, const ActShape& shape) override;

  // ---- ops, one file per kernel family ----
  Status prepare_conv(const float* w, int c_out, int c_in, int kernel,
                      std::unique_ptr<Weight>* out) override;  // conv2d.cpp
  Status conv2d(const ConvParams& p, const ConvArgs& a) override;
  bool conv_fuses_norm(const ConvParams& p) const override;
  Status group_norm(const GroupNormParams& p, const GroupNormArgs& a) override;  // group_norm.cpp
  Status attention(const AttentionParams& p, const AttentionArgs& a) override;  // attention.cpp
  // time_embedding.cpp: the time path (kernels/linear, embedding, time_embedding)
  Status prepare_linear(const float* w, int n, int k, std::unique_ptr<Weight>* out) override;
  Status linear(const LinearParams& p, const LinearArgs& a) override;
  Status timestep_embedding(const float* t, float* emb, int batch, int dim, bool flip_sin_to_cos,
                            float freq_shift) override;
  Status embedding_lookup(const float* table, const int64_t* labels, float* rows, int batch,
                          int dim) override;
  // Candidate kernels: one launch (after the labels' copy); otherwise the four launches of
  // compose_time_embedding, as verified.
  Status time_embedding(const TimeEmbeddingParams& p, const TimeEmbeddingArgs& a) override;
  // elementwise.cpp
  Status avg_pool2(const float* x, float* y, int batch, int channels, int h, int w) override;
  Status upsample_nearest2(const float* x, float* y, int batch, int channels, int h,
                           int w) override;
  // scheduler.cpp
  Status scale_model_input(const float* x, const float* divisor, float* y, int batch,
                           int64_t image) override;
  Status scheduler_step(const SchedulerStepParams& p, const SchedulerStepArgs& a) override;
  Status edit_step(const EditStepParams& p, const EditStepArgs& a) override;

  Status synchronize() override;

  // CUDA graphs (CM4J_CUDA_GRAPHS): the stream's work captured thread-locally, so another
  // thread's engine may allocate meanwhile; an op that waits or allocates while capturing
  // fails the capture, and that error is returned.
  bool can_capture() const override { return graphs_; }
  Status capture(const std::function<Status()>& queue, std::unique_ptr<CapturedWork>* out) override;
  uint64_t scratch_epoch() const override { return scratch_epoch_; }
  Status replay(const CapturedWork& work) override;

 private:
  // ---- the NHWC mode's ops: the same calls on fp16/bf16 channels-last activations ----
  Status conv2d_nhwc(const ConvParams& p, const ConvArgs& a, const DeviceWeight* w);
  Status group_norm_nhwc(const GroupNormParams& p, const GroupNormArgs& a);
  Status attention_nhwc(const AttentionParams& p, const AttentionArgs& a);

  // The fp32 staging buffer of upload/download_activation (and the partial sums of split-K
  // in conv2d_nhwc and of group_norm_nhwc's chunks), grown to `floats` on demand.
  Status staging_buffer(size_t floats, const char* op, float** out);
  // The arrival counters of the NHWC mode's one-launch split-K and fused group norms
  // (Conv2dNhwcParams::split_counters, GroupNormNhwcParams::counters), at least `count`,
  // zero at rest: zeroed when allocated, and every kernel counting on them leaves them so.
  Status counter_buffer(size_t count, const char* op, unsigned** out);

  // A launch's status; with CM4J_CUDA_SYNC=1 also waits so a fault names its op.
  Status finish(cudaError_t e, const char* op);

  // Replaces dw's fp32 data by its fp16/bf16 rounding (on the device, with the CUDA
  // conversion intrinsics).
  Status convert_weight(DeviceWeight* dw);

  Status upload_weight(const float* host, size_t count, const char* op,
                       std::unique_ptr<DeviceWeight>* out);

  // Device table of the sinusoidal frequencies for (half, shift), built once.
  Status frequencies(int half, float shift, const float** out);

  // Copies host labels to a device buffer of the backend (grown as needed) and waits, so
  // the caller's array may change as soon as this returns.
  Status upload_labels(const int64_t* host, int batch, const int64_t** out);

  const int device_;
  const CudaKernels kernels_;
  const kernels::ConvOperand operand_;  // conv operands: fp32, or fp16/bf16 on tensor cores
  // The NHWC mode (candidate kernels with fp16/bf16): activations stored channels-last in
  // half_ between ops.
  const bool nhwc_;
  const kernels::HalfType half_;
  // A device buffer of the stream's ops, grown on demand (grow_scratch).
  struct ScratchBuffer {
    void* data = nullptr;
    size_t bytes = 0;
  };
  // Grows `buffer` to `bytes` (zeroed: zero), after the stream's work on the old one.
  Status grow_scratch(ScratchBuffer* buffer, size_t bytes, bool zero, const char* what,
                      const char* op);
  ScratchBuffer staging_, counters_;
  cudaStream_t stream_;
  const bool sync_each_op_;
  const bool graphs_;  // capture() and replay() offered
  const bool norm_fusion_;  // the NHWC mode's convs take group norms (conv_fuses_norm)
  const bool programmatic_launches_;  // in capture()
  bool capturing_ = false;  // inside capture()'s queue()
  std::unique_ptr<ConvTuner> tuner_;  // the NHWC mode's conv choice
  uint64_t scratch_epoch_ = 0;
  std::mutex mu_;  // guards live_ and freq_tables_
  std::unordered_set<float*> live_;
  std::map<std::pair<int, float>, float*> freq_tables_;
  int64_t* labels_ = nullptr;  // [labels_capacity_] class labels of the candidate time path
  int labels_capacity_ = 0;
};

}  // namespace cuda
}  // namespace cm4j

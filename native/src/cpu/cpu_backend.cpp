// CpuBackend: the float32 reference backend. Owns a thread pool and scratch (CpuContext)
// and forwards each Backend call to its op file. One mutex serializes calls on a backend
// so its scratch is never shared; different backends run fully in parallel. Nothing
// throws past this file: allocation failures come back as CM4J_ERR_OUT_OF_MEMORY.
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include "cm4j.h"
#include "cpu/host_memory.h"
#include "cpu/ops.h"

namespace cm4j {
namespace cpu {
namespace {

class CpuBackend : public Backend {
 public:
  CpuBackend(int threads, bool bf16)
      : ctx_(threads, bf16),
        name_(std::string("cpu-") + isa_name(ctx_.isa) +
              (bf16 ? std::string("-bf16-") + bf16_path_name(ctx_.bf16_path) : std::string())) {}

  const char* name() const override { return name_.c_str(); }

  Status alloc(size_t bytes, float** out) override {
    if (out == nullptr) return invalid("alloc: null out");
    void* p = nullptr;
    if (!host_memory_allows(bytes) ||
        posix_memalign(&p, 64, bytes == 0 ? 64 : (bytes + 63) / 64 * 64) != 0)
      return out_of_memory("activations", bytes);
    *out = static_cast<float*>(p);
    return Status::Ok();
  }
  void free(float* p) override { std::free(p); }
  Status upload(float* dst, const float* src, size_t count) override {
    if (count > 0) std::memcpy(dst, src, count * sizeof(float));
    return Status::Ok();
  }
  Status download(float* dst, const float* src, size_t count) override {
    if (count > 0) std::memcpy(dst, src, count * sizeof(float));
    return Status::Ok();
  }

  Status prepare_conv(const float* w, int c_out, int c_in, int kernel,
                      std::unique_ptr<Weight>* out) override {
    return guarded([&] { return pack_conv_weight(ctx_, w, c_out, c_in, kernel, nullptr, out); });
  }
  Status prepare_conv_for(const float* w, const ConvParams& use,
                          std::unique_ptr<Weight>* out) override {
    return guarded([&] {
      return pack_conv_weight(ctx_, w, use.c_out, use.c_in1 + use.c_in2, use.kernel, &use, out);
    });
  }
  Status prepare_linear(const float* w, int n, int k, std::unique_ptr<Weight>* out) override {
    return guarded([&] { return pack_linear_weight(ctx_, w, n, k, out); });
  }

  Status conv2d(const ConvParams& p, const ConvArgs& a) override {
    return guarded([&] { return cpu::conv2d(ctx_, p, a); });
  }
  bool conv_fuses_norm(const ConvParams& p) const override { return cpu::conv_fuses_norm(ctx_, p); }
  Status group_norm(const GroupNormParams& p, const GroupNormArgs& a) override {
    return guarded([&] { return cpu::group_norm(ctx_, p, a); });
  }
  Status attention(const AttentionParams& p, const AttentionArgs& a) override {
    return guarded([&] { return cpu::attention(ctx_, p, a); });
  }
  Status linear(const LinearParams& p, const LinearArgs& a) override {
    return guarded([&] { return cpu::linear(ctx_, p, a); });
  }
  Status avg_pool2(const float* x, float* y, int batch, int channels, int h, int w) override {
    return guarded([&] { return cpu::avg_pool2(ctx_, x, y, batch, channels, h, w); });
  }
  Status upsample_nearest2(const float* x, float* y, int batch, int channels, int h,
                           int w) override {
    return guarded([&] { return cpu::upsample_nearest2(ctx_, x, y, batch, channels, h, w); });
  }
  Status timestep_embedding(const float* t, float* emb, int batch, int dim, bool flip_sin_to_cos,
                            float freq_shift) override {
    return guarded([&] { return cpu::timestep_embedding(t, emb, batch, dim, flip_sin_to_cos, freq_shift); });
  }
  Status embedding_lookup(const float* table, const int64_t* labels, float* rows, int batch,
                          int dim) override {
    return guarded([&] { return cpu::embedding_lookup(table, labels, rows, batch, dim); });
  }
  Status scale_model_input(const float* x, const float* divisor, float* y, int batch,
                           int64_t image) override {
    return guarded([&] { return cpu::scale_model_input(ctx_, x, divisor, y, batch, image); });
  }
  Status scheduler_step(const SchedulerStepParams& p, const SchedulerStepArgs& a) override {
    return guarded([&] { return cpu::scheduler_step(ctx_, p, a); });
  }
  Status edit_step(const EditStepParams& p, const EditStepArgs& a) override {
    return guarded([&] { return cpu::edit_step(ctx_, p, a); });
  }
  // Composed from the calls above, each taking the lock itself (the lock is not recursive).
  Status time_embedding(const TimeEmbeddingParams& p, const TimeEmbeddingArgs& a) override {
    return compose_time_embedding(this, p, a);
  }
  Status synchronize() override { return Status::Ok(); }

 private:
  template <typename Fn>
  Status guarded(Fn fn) {
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      return fn();
    } catch (const std::bad_alloc&) {
      return {CM4J_ERR_OUT_OF_MEMORY, "cpu: out of memory"};
    } catch (const std::exception& e) {
      return {CM4J_ERR_INTERNAL, std::string("cpu: ") + e.what()};
    } catch (...) {
      return {CM4J_ERR_INTERNAL, "cpu: unknown failure"};
    }
  }

  std::mutex mutex_;
  CpuContext ctx_;
  std::string name_;
};

}  // namespace
}  // namespace cpu

std::unique_ptr<Backend> make_cpu_backend(int threads, int dtype) {
  if (dtype != CM4J_F32 && dtype != CM4J_BF16) return nullptr;
  try {
    return std::make_unique<cpu::CpuBackend>(threads, dtype == CM4J_BF16);
  } catch (...) {
    return nullptr;  // thread creation or allocation failed; the caller reports it
  }
}

}  // namespace cm4j

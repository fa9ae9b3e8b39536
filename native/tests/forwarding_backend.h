// A test backend that hands every call to another backend, its compute calls (conv2d ...
// edit_step) through one hook, compute(name, call): tests override the hook to count the
// calls a plan makes, or to record them as a stream capture does (arguments by value).
#pragma once

#include <functional>
#include <memory>

#include "backend.h"

namespace cm4j_test {

class ForwardingBackend : public cm4j::Backend {
 public:
  using Status = cm4j::Status;
  explicit ForwardingBackend(cm4j::Backend* inner) : inner_(inner) {}

  const char* name() const override { return "forwarding"; }
  Status alloc(size_t bytes, float** out) override { return inner_->alloc(bytes, out); }
  void free(float* p) override { inner_->free(p); }
  Status upload(float* dst, const float* src, size_t count) override {
    return inner_->upload(dst, src, count);
  }
  Status download(float* dst, const float* src, size_t count) override {
    return inner_->download(dst, src, count);
  }
  // The activation layout and the conv's fusion are the inner backend's.
  bool plain_activations() const override { return inner_->plain_activations(); }
  Status upload_activation(float* dst, const float* src, const cm4j::ActShape& shape) override {
    return inner_->upload_activation(dst, src, shape);
  }
  Status download_activation(float* dst, const float* src, const cm4j::ActShape& shape) override {
    return inner_->download_activation(dst, src, shape);
  }
  Status activation_from_f32(const float* src, float* dst, const cm4j::ActShape& shape) override {
    return inner_->activation_from_f32(src, dst, shape);
  }
  Status activation_to_f32(const float* src, float* dst, const cm4j::ActShape& shape) override {
    return inner_->activation_to_f32(src, dst, shape);
  }
  bool conv_fuses_norm(const cm4j::ConvParams& p) const override { return inner_->conv_fuses_norm(p); }
  Status prepare_conv(const float* w, int c_out, int c_in, int kernel,
                      std::unique_ptr<cm4j::Weight>* out) override {
    return inner_->prepare_conv(w, c_out, c_in, kernel, out);
  }
  Status prepare_conv_for(const float* w, const cm4j::ConvParams& use,
                          std::unique_ptr<cm4j::Weight>* out) override {
    return inner_->prepare_conv_for(w, use, out);
  }
  Status prepare_linear(const float* w, int n, int k, std::unique_ptr<cm4j::Weight>* out) override {
    return inner_->prepare_linear(w, n, k, out);
  }
  Status conv2d(const cm4j::ConvParams& p, const cm4j::ConvArgs& a) override {
    return compute("conv2d", [=] { return inner_->conv2d(p, a); });
  }
  Status group_norm(const cm4j::GroupNormParams& p, const cm4j::GroupNormArgs& a) override {
    return compute("group_norm", [=] { return inner_->group_norm(p, a); });
  }
  Status attention(const cm4j::AttentionParams& p, const cm4j::AttentionArgs& a) override {
    return compute("attention", [=] { return inner_->attention(p, a); });
  }
  Status linear(const cm4j::LinearParams& p, const cm4j::LinearArgs& a) override {
    return compute("linear", [=] { return inner_->linear(p, a); });
  }
  Status avg_pool2(const float* x, float* y, int batch, int channels, int h, int w) override {
    return compute("avg_pool2", [=] { return inner_->avg_pool2(x, y, batch, channels, h, w); });
  }
  Status upsample_nearest2(const float* x, float* y, int batch, int channels, int h,
                           int w) override {
    return compute("upsample_nearest2",
                   [=] { return inner_->upsample_nearest2(x, y, batch, channels, h, w); });
  }
  Status timestep_embedding(const float* t, float* emb, int batch, int dim, bool flip,
                            float shift) override {
    return compute("timestep_embedding",
                   [=] { return inner_->timestep_embedding(t, emb, batch, dim, flip, shift); });
  }
  Status embedding_lookup(const float* table, const int64_t* labels, float* rows, int batch,
                          int dim) override {
    return compute("embedding_lookup",
                   [=] { return inner_->embedding_lookup(table, labels, rows, batch, dim); });
  }
  Status time_embedding(const cm4j::TimeEmbeddingParams& p,
                        const cm4j::TimeEmbeddingArgs& a) override {
    return compute("time_embedding", [=] { return inner_->time_embedding(p, a); });
  }
  Status scale_model_input(const float* x, const float* divisor, float* y, int batch,
                           int64_t image) override {
    return compute("scale_model_input",
                   [=] { return inner_->scale_model_input(x, divisor, y, batch, image); });
  }
  Status scheduler_step(const cm4j::SchedulerStepParams& p,
                        const cm4j::SchedulerStepArgs& a) override {
    return compute("scheduler_step", [=] { return inner_->scheduler_step(p, a); });
  }
  Status edit_step(const cm4j::EditStepParams& p, const cm4j::EditStepArgs& a) override {
    return compute("edit_step", [=] { return inner_->edit_step(p, a); });
  }
  Status synchronize() override { return inner_->synchronize(); }

 protected:
  // Every compute call, named as the Backend method; the default runs it.
  virtual Status compute(const char* /*name*/, std::function<Status()> call) { return call(); }

  cm4j::Backend* inner_;
};

}  // namespace cm4j_test

#include "sample_loop.h"

#include <algorithm>
#include <string>
#include <vector>

namespace cm4j {

LoopBuffers::~LoopBuffers() { release(); }

void LoopBuffers::release() {
  for (const Slot& slot : slots_) backend_->free(slot.p);
  slots_.clear();
  next_ = 0;
}

Status LoopBuffers::alloc(size_t floats, float** out) {
  if (next_ < slots_.size() && slots_[next_].floats == floats) {
    *out = slots_[next_++].p;
    return Status::Ok();
  }
  // A different loop shape: this slot and every later one are replaced.
  for (size_t i = next_; i < slots_.size(); ++i) backend_->free(slots_[i].p);
  slots_.resize(next_);
  Status s = backend_->alloc(floats * sizeof(float), out);
  if (!s.ok()) return s;
  slots_.push_back({*out, floats});
  ++next_;
  return Status::Ok();
}

Status run_sample_loop(const Plan& plan, PlanGraphs& graphs, LoopBuffers& buffers,
                       ExecContext ctx, const SampleLoopArgs& a) {
  Backend* be = ctx.backend;
  const size_t images = static_cast<size_t>(a.batch) * a.image;  // [B, image]
  const size_t rows = static_cast<size_t>(a.steps) * a.batch;     // [steps, B]
  buffers.begin();
  float *x, *model_in, *model_out, *scalars, *noise = nullptr;
  Status s = buffers.alloc(images, &x);  // the sample, stepped in place
  if (s.ok()) s = buffers.alloc(images, &model_in);
  if (s.ok()) s = buffers.alloc(images, &model_out);
  if (s.ok()) s = buffers.alloc(5 * rows, &scalars);
  if (s.ok() && a.noise) s = buffers.alloc(a.steps * images, &noise);
  if (!s.ok()) return s;
  EditStepArgs edit;  // the editing loop's buffers, when a.edit is set
  if (a.edit) {
    const ActShape& shape = a.shape;
    const size_t plane = static_cast<size_t>(shape.h) * shape.w;
    const EditLoopArgs& e = *a.edit;
    float *reference = nullptr, *mask = nullptr, *workspace = nullptr;
    if (e.reference) s = buffers.alloc(images, &reference);
    if (s.ok() && e.mask_keep) s = buffers.alloc(a.batch * plane, &mask);
    if (s.ok() && e.replacement == EditReplacement::kSuperres) {
      const size_t cells = shape.h / e.patch;
      s = buffers.alloc(static_cast<size_t>(a.batch) * shape.channels * cells * cells, &workspace);
    }
    if (s.ok() && reference) s = be->upload(reference, e.reference, images);
    if (s.ok() && mask) s = be->upload(mask, e.mask_keep, a.batch * plane);
    if (!s.ok()) return s;
    edit.reference = reference;
    edit.mask_keep = mask;
    edit.workspace = workspace;
  }

  // The per-step values, five [steps, B] tables in one upload.
  std::vector<float> host(5 * rows);
  const float* tables[5] = {a.timesteps, a.input_scale, a.c_skip, a.c_out, a.noise_scale};
  for (int t = 0; t < 5; ++t) std::copy(tables[t], tables[t] + rows, host.begin() + t * rows);
  const float* timesteps = scalars;
  const float* input_scale = scalars + rows;
  const float* c_skip = scalars + 2 * rows;
  const float* c_out = scalars + 3 * rows;
  const float* noise_scale = scalars + 4 * rows;
  s = be->upload(x, a.sample_in, images);
  if (s.ok()) s = be->upload(scalars, host.data(), host.size());
  if (s.ok() && noise) s = be->upload(noise, a.noise, a.steps * images);
  if (!s.ok()) return s;

  // A backend that stores activations in its own layout or type (the CUDA NHWC mode) gets
  // the model input converted into, and its output out of, buffers of that storage.
  const bool plain = be->plain_activations();
  float *act_in = model_in, *act_out = model_out;
  if (!plain) {
    s = buffers.alloc(images, &act_in);
    if (s.ok()) s = buffers.alloc(images, &act_out);
    if (!s.ok()) return s;
  }
  const PlanIO& io = plan.io();
  ctx.sample = nullptr;  // inputs and output stay on the backend
  ctx.timestep = nullptr;
  ctx.output = nullptr;
  ctx.external = {{io.sample, act_in}, {io.timestep, nullptr}, {io.output, act_out}};
  SchedulerStepParams p;
  p.batch = a.batch;
  p.image = a.image;
  p.clip = a.clip;
  p.s_noise = a.s_noise;
  for (int step = 0; step < a.steps; ++step) {
    const size_t row = static_cast<size_t>(step) * a.batch;
    s = be->scale_model_input(x, input_scale + row, model_in, a.batch, a.image);
    if (s.ok() && !plain) s = be->activation_from_f32(model_in, act_in, a.shape);
    if (s.ok()) {
      ctx.external[1].second = const_cast<float*>(timesteps + row);  // read-only to the plan
      s = graphs.run(plan, ctx);
    }
    if (s.ok() && !plain) s = be->activation_to_f32(act_out, model_out, a.shape);
    if (s.ok() && a.edit) {
      EditStepParams ep;
      ep.batch = a.batch;
      ep.channels = a.shape.channels;
      ep.size = a.shape.h;
      ep.replacement = a.edit->replacement;
      ep.patch = a.edit->patch;
      edit.model_output = model_out;
      edit.sample = x;
      edit.noise = noise ? noise + step * images : nullptr;
      edit.c_skip = c_skip + row;
      edit.c_out = c_out + row;
      edit.noise_scale = noise_scale + row;
      s = be->edit_step(ep, edit);
    } else if (s.ok()) {
      SchedulerStepArgs sa;
      sa.model_output = model_out;
      sa.sample = x;
      sa.noise = noise ? noise + step * images : nullptr;
      sa.c_skip = c_skip + row;
      sa.c_out = c_out + row;
      sa.noise_scale = noise_scale + row;
      sa.prev = x;
      s = be->scheduler_step(p, sa);
    }
    if (!s.ok()) {
      s.message = "step " + std::to_string(step + 1) + " of " + std::to_string(a.steps) + ": " +
                  s.message;
      return s;
    }
  }
  s = be->download(a.sample_out, x, images);
  return s.ok() ? be->synchronize() : s;
}

}  // namespace cm4j

// The C API (cm4j.h): validates arguments, turns C++ failures into status codes plus a
// thread-local message, and serializes forward passes and sampling loops per engine.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "backend.h"
#include "checked.h"
#include "cpu/isa.h"
#include "cpu/winograd.h"
#include "cm4j.h"
#include "plan_graphs.h"
#include "sample_loop.h"
#include "synth.h"
#include "unet_config.h"
#include "unet_graph.h"
#include "weights.h"

struct cm4j_unet {
  cm4j::UNetConfig config;
  std::unique_ptr<cm4j::Backend> backend;
  std::unique_ptr<cm4j::WeightStore> weights;
  std::mutex mutex;  // one forward pass at a time: they share the arena
  // The plan of the last (batch, capture) used, and its arena.
  std::unique_ptr<cm4j::Plan> plan;
  int plan_batch = 0;
  bool plan_capture = false;
  float* arena = nullptr;
  size_t arena_floats = 0;
  bool capture_taps = false;
  std::vector<cm4j::Tap> taps;
  // The op profile of the last forward pass or sampling step, while enabled: one time per
  // op of the current plan (a new plan is only built for a pass, which refills it).
  bool profile_ops = false;
  std::vector<double> op_ms;
  // cm4j_unet_bind's converted tensor (as_floats), until finalize.
  std::unique_ptr<float[]> staging;
  size_t staging_floats = 0;
  // Captured passes of the plan (CUDA graphs); point into the plan, the arena and the
  // sampling loops' buffers.
  cm4j::PlanGraphs graphs;
  std::unique_ptr<cm4j::LoopBuffers> loop_buffers;
};

namespace {

thread_local std::string last_error;

int fail(int code, const std::string& message) {
  last_error = message;
  return code;
}
int fail(const cm4j::Status& s) { return fail(s.code, s.message); }

// The status of the exception being handled, its message kept for cm4j_last_error().
int caught() {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return fail(CM4J_ERR_OUT_OF_MEMORY, "out of host memory");
  } catch (const std::exception& e) {
    return fail(CM4J_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(CM4J_ERR_INTERNAL, "internal error");
  }
}

// Every exported function runs its body through guarded: an escaping C++ exception becomes a
// status (or, for a function that returns a value, on_failure with the message kept), so
// nothing unwinds into the JVM. test_api_guarded checks that each one in cm4j.h does.
template <typename Fn>
int guarded(Fn fn) {
  try {
    return fn();
  } catch (...) {
    return caught();
  }
}
template <typename R, typename Fn>
R guarded(R on_failure, Fn fn) {
  try {
    return fn();
  } catch (...) {
    caught();
    return on_failure;
  }
}

// "cpu" (one thread per core), "cpu:N" (N threads), "cuda" or "cuda:N" (device N).
// *index is the thread count (0: one per core) for the cpu, the device number for cuda.
bool parse_device(const char* device, bool* cuda, int* index) {
  std::string d = device ? device : "cpu";
  *cuda = false;
  *index = 0;
  if (d == "cpu") return true;
  if (d == "cuda") return *cuda = true;
  size_t colon = d.find(':');
  if (colon == std::string::npos) return false;
  std::string kind = d.substr(0, colon), n = d.substr(colon + 1);
  if ((kind != "cpu" && kind != "cuda") || n.empty() || n.size() > 4) return false;
  for (char c : n)
    if (c < '0' || c > '9') return false;
  *cuda = kind == "cuda";
  *index = std::stoi(n);
  return *cuda || *index >= 1;
}

int element_size(int dtype) { return dtype == CM4J_F32 ? 4 : 2; }

// A caller's shape against the size it gave for it, counted in `unit`s of unit_size bytes,
// the product checked for overflow; *numel is the shape's element count.
int check_size(const std::string& what, const std::vector<int64_t>& dims, int64_t unit_size,
               const char* unit, int64_t given, int64_t* numel) {
  int64_t size = 0;
  if (!cm4j::checked_numel(dims, numel) || __builtin_mul_overflow(*numel, unit_size, &size))
    return fail(CM4J_ERR_INVALID_ARGUMENT,
                what + ": shape has a negative dimension or over 2^63 " + unit);
  if (size != given)
    return fail(CM4J_ERR_INVALID_ARGUMENT, what + ": expected " + std::to_string(size) + " " + unit +
                                               " for its shape, found " + std::to_string(given));
  return CM4J_OK;
}

// The float32 values of a bound tensor: float32 data that is 4-byte aligned is used where
// it lies (a view of the caller's memory-mapped checkpoint: no copy, no fresh pages to
// fault in); other data is converted into the engine's staging buffer, reused from one
// bind to the next and freed at finalize.
const float* as_floats(cm4j_unet* u, int dtype, const void* data, int64_t n) {
  if (dtype == CM4J_F32 && reinterpret_cast<uintptr_t>(data) % alignof(float) == 0)
    return static_cast<const float*>(data);
  if (static_cast<size_t>(n) > u->staging_floats) {
    u->staging.reset();
    u->staging.reset(new float[static_cast<size_t>(n)]);  // not zeroed: fully written below
    u->staging_floats = static_cast<size_t>(n);
  }
  float* out = u->staging.get();
  if (dtype == CM4J_F32) {
    if (n > 0) std::memcpy(out, data, static_cast<size_t>(n) * 4);  // never from a null pointer
    return out;
  }
  const auto* h = static_cast<const uint16_t*>(data);
  for (int64_t i = 0; i < n; ++i)
    out[i] = dtype == CM4J_F16 ? cm4j::half_to_float(h[i]) : cm4j::bfloat16_to_float(h[i]);
  return out;
}

int check_ready(const cm4j_unet* u) {
  if (!u) return fail(CM4J_ERR_INVALID_ARGUMENT, "engine handle is null");
  if (!u->weights->finalized())
    return fail(CM4J_ERR_STATE, "weights are not finalized: bind every weight, then finalize");
  return CM4J_OK;
}

// A batch size of one call: positive, and small enough for the backends' 32-bit counts.
int check_batch(const cm4j_unet* u, int batch) {
  if (batch <= 0)
    return fail(CM4J_ERR_INVALID_ARGUMENT, "batch: expected a positive size, found " + std::to_string(batch));
  if (batch > u->config.max_batch())
    return fail(CM4J_ERR_INVALID_ARGUMENT, "batch: at most " + std::to_string(u->config.max_batch()) +
                                               " images for this model, found " + std::to_string(batch));
  return CM4J_OK;
}

// Labels of one call: required by a class-conditional model, each in [0, num_class_embeds).
int check_labels(const cm4j_unet* u, int batch, const int64_t* class_labels) {
  const cm4j::UNetConfig& c = u->config;
  if (c.num_class_embeds <= 0) return CM4J_OK;
  if (!class_labels)
    return fail(CM4J_ERR_INVALID_ARGUMENT, "class_labels: required by this class-conditional model");
  for (int b = 0; b < batch; ++b)
    if (class_labels[b] < 0 || class_labels[b] >= c.num_class_embeds)
      return fail(CM4J_ERR_INVALID_ARGUMENT,
                  "class_labels[" + std::to_string(b) + "]: expected 0.." +
                      std::to_string(c.num_class_embeds - 1) + ", found " +
                      std::to_string(class_labels[b]));
  return CM4J_OK;
}

// The context of a forward pass over the engine's current plan.
cm4j::ExecContext plan_context(cm4j_unet* u, const int64_t* class_labels) {
  cm4j::ExecContext ctx;
  ctx.backend = u->backend.get();
  ctx.arena = u->arena;
  ctx.offsets = &u->plan->offsets();
  ctx.class_labels = class_labels;
  ctx.taps = &u->taps;
  if (u->profile_ops) ctx.op_ms = &u->op_ms;
  return ctx;
}

// Builds the plan for (batch, capture) unless it is the cached one, and sizes the arena.
int prepare_plan(cm4j_unet* u, int batch) {
  if (u->plan && u->plan_batch == batch && u->plan_capture == u->capture_taps) return CM4J_OK;
  auto plan = std::make_unique<cm4j::Plan>();
  std::vector<cm4j::ParamSpec> specs;
  std::vector<cm4j::Tap> taps;
  cm4j::GraphOptions opts{batch, u->capture_taps, u->backend.get()};
  cm4j::Status s = cm4j::build_unet(u->config, u->weights.get(), opts, &specs, plan.get(), &taps);
  if (!s.ok()) return fail(s);
  u->graphs.clear();  // they point into the old plan and, maybe, the old arena
  u->op_ms.clear();     // timed the old plan's ops
  if (plan->arena_floats() > u->arena_floats) {
    // The old arena goes first (both at once may not fit); if the new one cannot be had,
    // the cached plan goes too, so that the next call, even at the batch size that ran
    // before, builds its plan and allocates again rather than running with no arena.
    if (u->arena) u->backend->free(u->arena);
    u->arena = nullptr;
    u->arena_floats = 0;
    s = u->backend->alloc(plan->arena_floats() * sizeof(float), &u->arena);
    if (!s.ok()) {
      u->arena = nullptr;
      u->plan.reset();
      u->plan_batch = 0;
      u->taps.clear();
      return fail(s);
    }
    u->arena_floats = plan->arena_floats();
  }
  u->plan = std::move(plan);
  u->plan_batch = batch;
  u->plan_capture = u->capture_taps;
  u->taps = std::move(taps);
  return CM4J_OK;
}

}  // namespace

void cm4j::engine_graph_counts(const cm4j_unet* unet, size_t* captures, size_t* replays) {
  *captures = unet->graphs.captures();
  *replays = unet->graphs.replays();
}

size_t cm4j::engine_programmatic_edges(const cm4j_unet* unet) {
  return unet->graphs.programmatic_edges();
}

extern "C" {

const char* cm4j_last_error(void) {
  return guarded<const char*>("", [] { return last_error.c_str(); });
}

const char* cm4j_version(void) {
  return guarded<const char*>("", [] { return CM4J_VERSION; });
}

int cm4j_cuda_device_count(void) {
  return guarded([] {
    std::string error;
    int n = cm4j::cuda_device_count(&error);
    if (n == 0) last_error = error;
    return n;
  });
}

int cm4j_synth_v1(const char* name, const int64_t* shape, int ndim, uint64_t seed, float* out,
                  int64_t n) {
  return guarded([&] {
    if (!name || (!shape && ndim > 0) || !out || ndim < 0 || ndim > 8)
      return fail(CM4J_ERR_INVALID_ARGUMENT, "synth_v1: invalid arguments");
    std::vector<int64_t> dims(shape, shape + ndim);
    int64_t numel = 0;
    int rc = check_size(std::string("synth_v1 ") + name, dims, 1, "elements", n, &numel);
    if (rc != CM4J_OK) return rc;
    cm4j::synth_v1_fill(name, dims, seed, out);
    return CM4J_OK;
  });
}

int cm4j_unet_create(const char* config_json, const char* device, int dtype, cm4j_unet** out) {
  return guarded([&] {
    if (!out) return fail(CM4J_ERR_INVALID_ARGUMENT, "output handle pointer is null");
    *out = nullptr;
    if (!config_json) return fail(CM4J_ERR_INVALID_ARGUMENT, "config text is null");
    bool cuda;
    int index;
    if (!parse_device(device, &cuda, &index))
      return fail(CM4J_ERR_INVALID_ARGUMENT, std::string("device: expected cpu, cpu:THREADS (1 or more), cuda or cuda:N, found ") +
                                                 (device ? device : "null"));
    if (dtype != CM4J_F32 && dtype != CM4J_F16 && dtype != CM4J_BF16)
      return fail(CM4J_ERR_INVALID_ARGUMENT, "dtype: expected fp32, fp16 or bf16");
    if (!cuda && dtype == CM4J_F16)
      return fail(CM4J_ERR_UNSUPPORTED, "dtype: the cpu device computes in fp32 or bf16, not fp16");
    auto u = std::make_unique<cm4j_unet>();
    cm4j::Status s = cm4j::parse_unet_config(config_json, &u->config);
    if (!s.ok()) return fail(s);
    if (cuda) {
      std::string error;
      u->backend = cm4j::make_cuda_backend(index, dtype, &error);
      if (!u->backend) return fail(CM4J_ERR_DEVICE, error);
    } else {
      s = cm4j::cpu::check_isa_override();
      if (s.ok()) s = cm4j::cpu::check_conv_override();
      if (!s.ok()) return fail(s);
      u->backend = cm4j::make_cpu_backend(index, dtype);
      if (!u->backend) return fail(CM4J_ERR_INTERNAL, "cpu backend: could not start its threads");
    }
    std::vector<cm4j::ParamSpec> specs;
    s = cm4j::build_unet(u->config, nullptr, {}, &specs, nullptr, nullptr);
    if (!s.ok()) return fail(s);
    u->weights = std::make_unique<cm4j::WeightStore>(u->backend.get(), std::move(specs));
    *out = u.release();
    return CM4J_OK;
  });
}

void cm4j_unet_destroy(cm4j_unet* unet) {
  guarded([&] {
    if (!unet) return CM4J_OK;
    // Graphs, weights and the arena go back to the backend before it is destroyed.
    unet->graphs.clear();
    unet->loop_buffers.reset();
    unet->weights.reset();
    if (unet->arena) unet->backend->free(unet->arena);
    delete unet;
    return CM4J_OK;
  });
}

int cm4j_unet_param_count(const cm4j_unet* u) {
  return guarded(0, [&] { return u ? static_cast<int>(u->weights->specs().size()) : 0; });
}

const char* cm4j_unet_param_name(const cm4j_unet* u, int index) {
  return guarded<const char*>(nullptr, [&]() -> const char* {
    if (!u || index < 0 || index >= cm4j_unet_param_count(u)) return nullptr;
    return u->weights->specs()[index].name.c_str();
  });
}

int cm4j_unet_param_shape(const cm4j_unet* u, int index, int64_t* shape_out) {
  return guarded([&] {
    if (!u || !shape_out || index < 0 || index >= cm4j_unet_param_count(u))
      return fail(CM4J_ERR_INVALID_ARGUMENT, "param_shape: index out of range");
    const auto& shape = u->weights->specs()[index].shape;
    for (size_t i = 0; i < shape.size(); ++i) shape_out[i] = shape[i];
    return static_cast<int>(shape.size());
  });
}

int cm4j_unet_in_channels(const cm4j_unet* u) {
  return guarded(0, [&] { return u ? u->config.in_channels : 0; });
}
int cm4j_unet_out_channels(const cm4j_unet* u) {
  return guarded(0, [&] { return u ? u->config.out_channels : 0; });
}
int cm4j_unet_sample_size(const cm4j_unet* u) {
  return guarded(0, [&] { return u ? u->config.sample_size : 0; });
}
int cm4j_unet_num_class_embeds(const cm4j_unet* u) {
  return guarded(0, [&] { return u ? u->config.num_class_embeds : 0; });
}
int cm4j_unet_max_batch(const cm4j_unet* u) {
  return guarded(0, [&] { return u ? u->config.max_batch() : 0; });
}

int cm4j_unet_bind(cm4j_unet* u, const char* name, int dtype, const int64_t* shape, int ndim,
                   const void* data, int64_t nbytes) {
  return guarded([&] {
    if (!u || !name || (!shape && ndim > 0) || !data || ndim < 0 || ndim > 8)
      return fail(CM4J_ERR_INVALID_ARGUMENT, "bind: invalid arguments");
    if (dtype != CM4J_F32 && dtype != CM4J_F16 && dtype != CM4J_BF16)
      return fail(CM4J_ERR_INVALID_ARGUMENT, std::string("bind ") + name + ": dtype must be f32, f16 or bf16");
    std::vector<int64_t> dims(shape, shape + ndim);
    int64_t numel = 0;
    int rc = check_size(std::string("bind ") + name, dims, element_size(dtype), "bytes", nbytes, &numel);
    if (rc != CM4J_OK) return rc;
    std::lock_guard<std::mutex> lock(u->mutex);
    cm4j::Status s = u->weights->bind(name, dims, as_floats(u, dtype, data, numel));
    return s.ok() ? CM4J_OK : fail(s);
  });
}

int cm4j_unet_bind_synth(cm4j_unet* u, uint64_t seed) {
  return guarded([&] {
    if (!u) return fail(CM4J_ERR_INVALID_ARGUMENT, "engine handle is null");
    std::lock_guard<std::mutex> lock(u->mutex);
    std::vector<float> values;
    for (const cm4j::ParamSpec& spec : std::vector<cm4j::ParamSpec>(u->weights->specs())) {
      values.resize(static_cast<size_t>(spec.numel()));
      cm4j::synth_v1_fill(spec.name, spec.shape, seed, values.data());
      cm4j::Status s = u->weights->bind(spec.name, spec.shape, values.data());
      if (!s.ok()) return fail(s);
    }
    return CM4J_OK;
  });
}

int cm4j_unet_finalize(cm4j_unet* u) {
  return guarded([&] {
    if (!u) return fail(CM4J_ERR_INVALID_ARGUMENT, "engine handle is null");
    std::lock_guard<std::mutex> lock(u->mutex);
    if (u->weights->finalized()) return CM4J_OK;
    u->staging.reset();
    u->staging_floats = 0;
    cm4j::Status s = u->weights->finalize();
    return s.ok() ? CM4J_OK : fail(s);
  });
}

int cm4j_unet_forward(cm4j_unet* u, int batch, const float* sample, const float* timestep,
                      const int64_t* class_labels, float* out) {
  return guarded([&] {
    int rc = check_ready(u);
    if (rc != CM4J_OK) return rc;
    rc = check_batch(u, batch);
    if (rc != CM4J_OK) return rc;
    if (!sample || !timestep || !out) return fail(CM4J_ERR_INVALID_ARGUMENT, "forward: null buffer");
    rc = check_labels(u, batch, class_labels);
    if (rc != CM4J_OK) return rc;
    std::lock_guard<std::mutex> lock(u->mutex);
    rc = prepare_plan(u, batch);
    if (rc != CM4J_OK) return rc;
    cm4j::ExecContext ctx = plan_context(u, class_labels);
    ctx.sample = sample;
    ctx.timestep = timestep;
    ctx.output = out;
    cm4j::Status s = u->graphs.run(*u->plan, ctx);
    return s.ok() ? CM4J_OK : fail(s);
  });
}

namespace {

// cm4j_unet_sample, or cm4j_unet_edit when edit is set (already checked).
int run_loop(cm4j_unet* u, int batch, int steps, const float* sample_in, const float* timesteps,
             const float* input_scale, const float* c_skip, const float* c_out,
             const float* noise_scale, float s_noise, const float* noise,
             const int64_t* class_labels, int clip, float* sample_out,
             const cm4j::EditLoopArgs* edit) {
  int rc = check_ready(u);
  if (rc != CM4J_OK) return rc;
  const cm4j::UNetConfig& c = u->config;
  if (c.in_channels != c.out_channels)
    return fail(CM4J_ERR_UNSUPPORTED, "sample: the UNet outputs " + std::to_string(c.out_channels) +
                                          " channels but takes " + std::to_string(c.in_channels) +
                                          "; the scheduler's step needs them equal");
  rc = check_batch(u, batch);
  if (rc != CM4J_OK) return rc;
  if (steps <= 0)
    return fail(CM4J_ERR_INVALID_ARGUMENT, "steps: expected at least 1, found " + std::to_string(steps));
  const struct {
    const void* p;
    const char* name;
  } required[] = {{sample_in, "sample_in"},     {timesteps, "timesteps"}, {input_scale, "input_scale"},
                  {c_skip, "c_skip"},           {c_out, "c_out"},         {noise_scale, "noise_scale"},
                  {sample_out, "sample_out"}};
  for (const auto& r : required)
    if (!r.p) return fail(CM4J_ERR_INVALID_ARGUMENT, std::string("sample: ") + r.name + " is null");
  if (clip != 0 && clip != 1)
    return fail(CM4J_ERR_INVALID_ARGUMENT, "clip: expected 0 or 1, found " + std::to_string(clip));
  const int64_t image = static_cast<int64_t>(c.in_channels) * c.sample_size * c.sample_size;
  // The noise of every step is held on the device at once: [steps, B, C, S, S] floats, under
  // 2^31 x 2^31 = 2^62 of them (check_batch keeps B x C x S x S under 2^31), so its bytes,
  // under 2^64, fit the size_t the loop computes them in; too many for the device is the
  // allocation's error, which names the bytes.
  for (int64_t i = 0; i < static_cast<int64_t>(steps) * batch; ++i)
    if (!std::isfinite(timesteps[i]))
      return fail(CM4J_ERR_INVALID_ARGUMENT, "timesteps[" + std::to_string(i) + "] (step " +
                                                 std::to_string(i / batch + 1) + ", image " +
                                                 std::to_string(i % batch) +
                                                 "): expected a finite value, found " +
                                                 std::to_string(timesteps[i]));
  rc = check_labels(u, batch, class_labels);
  if (rc != CM4J_OK) return rc;
  std::lock_guard<std::mutex> lock(u->mutex);
  rc = prepare_plan(u, batch);
  if (rc != CM4J_OK) return rc;
  cm4j::SampleLoopArgs a;
  a.batch = batch;
  a.steps = steps;
  a.image = image;
  a.shape = {batch, c.in_channels, c.sample_size, c.sample_size};
  a.sample_in = sample_in;
  a.timesteps = timesteps;
  a.input_scale = input_scale;
  a.c_skip = c_skip;
  a.c_out = c_out;
  a.noise_scale = noise_scale;
  a.noise = noise;
  a.s_noise = s_noise;
  a.clip = clip == 1;
  a.sample_out = sample_out;
  a.edit = edit;
  if (!u->loop_buffers) u->loop_buffers = std::make_unique<cm4j::LoopBuffers>(u->backend.get());
  cm4j::Status s = cm4j::run_sample_loop(*u->plan, u->graphs, *u->loop_buffers,
                                         plan_context(u, class_labels), a);
  // Kept for the next call only where captured steps can be replayed into them.
  if (!u->backend->can_capture()) u->loop_buffers->release();
  return s.ok() ? CM4J_OK : fail(s);
}

}  // namespace

int cm4j_unet_sample(cm4j_unet* u, int batch, int steps, const float* sample_in,
                     const float* timesteps, const float* input_scale, const float* c_skip,
                     const float* c_out, const float* noise_scale, float s_noise,
                     const float* noise, const int64_t* class_labels, int clip,
                     float* sample_out) {
  return guarded([&] {
    return run_loop(u, batch, steps, sample_in, timesteps, input_scale, c_skip, c_out,
                    noise_scale, s_noise, noise, class_labels, clip, sample_out, nullptr);
  });
}

int cm4j_unet_edit(cm4j_unet* u, int batch, int steps, const float* sample_in,
                   const float* timesteps, const float* input_scale, const float* c_skip,
                   const float* c_out, const float* noise_scale, const float* noise,
                   const int64_t* class_labels, int replacement, int patch,
                   const float* reference, const float* mask_keep, float* sample_out) {
  return guarded([&] {
    int rc = check_ready(u);
    if (rc != CM4J_OK) return rc;
    const cm4j::UNetConfig& c = u->config;
    cm4j::EditLoopArgs edit;
    edit.reference = reference;
    edit.mask_keep = mask_keep;
    edit.patch = patch;
    switch (replacement) {
      case CM4J_EDIT_NONE:
        edit.replacement = cm4j::EditReplacement::kNone;
        break;
      case CM4J_EDIT_INPAINT:
        edit.replacement = cm4j::EditReplacement::kInpaint;
        if (!reference || !mask_keep)
          return fail(CM4J_ERR_INVALID_ARGUMENT, "edit: inpaint needs reference and mask_keep");
        break;
      case CM4J_EDIT_COLORIZE:
        edit.replacement = cm4j::EditReplacement::kColorize;
        if (!reference) return fail(CM4J_ERR_INVALID_ARGUMENT, "edit: colorize needs a reference");
        if (c.in_channels != 3)
          return fail(CM4J_ERR_UNSUPPORTED, "edit: colorize needs 3 channels, the UNet has " +
                                                std::to_string(c.in_channels));
        break;
      case CM4J_EDIT_SUPERRES:
        edit.replacement = cm4j::EditReplacement::kSuperres;
        if (!reference) return fail(CM4J_ERR_INVALID_ARGUMENT, "edit: superres needs a reference");
        if (patch < 1 || c.sample_size % patch != 0)
          return fail(CM4J_ERR_INVALID_ARGUMENT, "patch: expected a size that divides " +
                                                     std::to_string(c.sample_size) + ", found " +
                                                     std::to_string(patch));
        break;
      default:
        return fail(CM4J_ERR_INVALID_ARGUMENT,
                    "replacement: expected CM4J_EDIT_NONE..SUPERRES (0-3), found " +
                        std::to_string(replacement));
    }
    if (replacement != CM4J_EDIT_INPAINT) edit.mask_keep = nullptr;
    if (replacement == CM4J_EDIT_NONE) edit.reference = nullptr;
    return run_loop(u, batch, steps, sample_in, timesteps, input_scale, c_skip, c_out,
                    noise_scale, 1.0f, noise, class_labels, 1, sample_out, &edit);
  });
}

int cm4j_unet_set_capture_taps(cm4j_unet* u, int enable) {
  return guarded([&] {
    if (!u) return fail(CM4J_ERR_INVALID_ARGUMENT, "engine handle is null");
    std::lock_guard<std::mutex> lock(u->mutex);
    u->capture_taps = enable != 0;
    return CM4J_OK;
  });
}

int cm4j_unet_set_profile_ops(cm4j_unet* u, int enable) {
  return guarded([&] {
    if (!u) return fail(CM4J_ERR_INVALID_ARGUMENT, "engine handle is null");
    std::lock_guard<std::mutex> lock(u->mutex);
    u->profile_ops = enable != 0;
    u->op_ms.clear();
    return CM4J_OK;
  });
}

int cm4j_unet_op_count(const cm4j_unet* u) {
  return guarded(0, [&] { return u ? static_cast<int>(u->op_ms.size()) : 0; });
}

const char* cm4j_unet_op_name(const cm4j_unet* u, int index) {
  return guarded<const char*>(nullptr, [&]() -> const char* {
    if (!u || index < 0 || index >= cm4j_unet_op_count(u)) return nullptr;
    return u->plan->op_name(index).c_str();
  });
}

double cm4j_unet_op_ms(const cm4j_unet* u, int index) {
  return guarded<double>(-1.0, [&] {
    if (!u || index < 0 || index >= cm4j_unet_op_count(u)) return -1.0;
    return u->op_ms[index];
  });
}

int cm4j_unet_tap_count(const cm4j_unet* u) {
  return guarded(0, [&] { return u ? static_cast<int>(u->taps.size()) : 0; });
}

const char* cm4j_unet_tap_name(const cm4j_unet* u, int index) {
  return guarded<const char*>(nullptr, [&]() -> const char* {
    if (!u || index < 0 || index >= cm4j_unet_tap_count(u)) return nullptr;
    return u->taps[index].name.c_str();
  });
}

int cm4j_unet_tap_shape(const cm4j_unet* u, int index, int64_t* shape_out) {
  return guarded(-1, [&] {
    if (!u || !shape_out || index < 0 || index >= cm4j_unet_tap_count(u)) {
      fail(CM4J_ERR_INVALID_ARGUMENT, "tap_shape: index out of range");
      return -1;
    }
    const auto& shape = u->taps[index].shape;
    for (size_t i = 0; i < shape.size(); ++i) shape_out[i] = shape[i];
    return static_cast<int>(shape.size());
  });
}

int cm4j_unet_tap_copy(const cm4j_unet* u, int index, float* dst, int64_t n) {
  return guarded([&] {
    if (!u || !dst || index < 0 || index >= cm4j_unet_tap_count(u))
      return fail(CM4J_ERR_INVALID_ARGUMENT, "tap_copy: index out of range");
    const auto& data = u->taps[index].data;
    if (static_cast<int64_t>(data.size()) != n)
      return fail(CM4J_ERR_INVALID_ARGUMENT, "tap_copy: expected " + std::to_string(data.size()) +
                                                 " elements, found " + std::to_string(n));
    std::memcpy(dst, data.data(), data.size() * sizeof(float));
    return CM4J_OK;
  });
}

int64_t cm4j_unet_weight_bytes(const cm4j_unet* u) {
  return guarded<int64_t>(0, [&] { return u ? static_cast<int64_t>(u->weights->bytes()) : 0; });
}

int64_t cm4j_unet_arena_bytes(const cm4j_unet* u) {
  return guarded<int64_t>(0, [&] { return u ? static_cast<int64_t>(u->arena_floats * sizeof(float)) : 0; });
}

}  // extern "C"

// The scheduler's elementwise ops and the device sampling loop, on the CPU:
// 1. scale_model_input and scheduler_step of the CPU backend against the per-operation
//    reference of test_util (the Java scheduler's arithmetic), bit for bit, on random data
//    (where a fused multiply-add would round differently: that count is printed and must be
//    above 0) and on edge values (NaN, infinities, signed zeros, +-1 and their neighbours,
//    subnormals, overflowing products, the NaN noise scale sqrt(f32(s)^2 - s^2) can give).
// 2. cm4j_unet_sample on the tiny model against a host loop of cm4j_unet_forward and the
//    reference arithmetic, bit for bit: one step and several, clip on and off, batch 1 and 3,
//    class-conditional (the golden weights) and unconditional (synth-v1), in place; the same
//    from two threads at once; every invalid argument refused with a status and a message.
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend.h"
#include "cm4j.h"
#include "test_util.h"

using namespace cm4j;
using namespace cm4j_test;

namespace {

std::mt19937 g_rng(20261126);

std::vector<float> randn(size_t n, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();
// Values where rounding, clamping or IEEE special cases decide the result.
const std::vector<float> kSpecials = {
    0.0f,     -0.0f,    1.0f,     -1.0f,    std::nextafter(1.0f, 2.0f),
    std::nextafter(-1.0f, -2.0f), std::nextafter(1.0f, 0.0f), std::nextafter(-1.0f, 0.0f),
    kInf,     -kInf,    kNaN,     FLT_MAX,  -FLT_MAX, FLT_MIN,  FLT_TRUE_MIN,
    -FLT_TRUE_MIN,      0.5f,     3.0f,     -7.25f,   1e-30f,   1e30f};

// ---- 1. the ops -------------------------------------------------------------------------

void check_bits(const char* what, const std::vector<float>& got, const std::vector<float>& want) {
  const int64_t at = first_difference(got.data(), want.data(), want.size());
  if (at >= 0)
    std::printf("FAIL %-52s element %lld: %a, reference %a\n", what, static_cast<long long>(at),
                got[at], want[at]);
  else
    std::printf("ok   %-52s %zu values bit for bit\n", what, want.size());
  CHECK(at < 0, "%s differs from the reference", what);
}

void test_scale(Backend& be, const char* what, const std::vector<float>& x,
                const std::vector<float>& divisor, bool in_place) {
  const int batch = static_cast<int>(divisor.size());
  const int64_t image = static_cast<int64_t>(x.size()) / batch;
  std::vector<float> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = reference_scale_model_input(x[i], divisor[i / image]);
  std::vector<float> in = x, out(x.size(), kNaN);
  float* y = in_place ? in.data() : out.data();
  Status s = be.scale_model_input(in.data(), divisor.data(), y, batch, image);
  CHECK(s.ok(), "%s: %s", what, s.message.c_str());
  check_bits(what, in_place ? in : out, want);
}

struct StepData {
  std::vector<float> model_output, sample, noise;  // noise empty: null (zeros)
  std::vector<float> c_skip, c_out, noise_scale;   // [B]
  float s_noise = 1.0f;
  bool clip = false;
};

std::vector<float> reference_step(const StepData& d) {
  const int64_t image = static_cast<int64_t>(d.sample.size() / d.c_skip.size());
  std::vector<float> want(d.sample.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const size_t b = i / image;
    want[i] = reference_scheduler_step(d.model_output[i], d.sample[i],
                                       d.noise.empty() ? 0.0f : d.noise[i], d.c_skip[b],
                                       d.c_out[b], d.s_noise, d.noise_scale[b], d.clip);
  }
  return want;
}

void test_step(Backend& be, const std::string& what, const StepData& d, bool in_place) {
  SchedulerStepParams p;
  p.batch = static_cast<int>(d.c_skip.size());
  p.image = static_cast<int64_t>(d.sample.size()) / p.batch;
  p.clip = d.clip;
  p.s_noise = d.s_noise;
  std::vector<float> sample = d.sample, out(d.sample.size(), kNaN);
  SchedulerStepArgs a;
  a.model_output = d.model_output.data();
  a.sample = sample.data();
  a.noise = d.noise.empty() ? nullptr : d.noise.data();
  a.c_skip = d.c_skip.data();
  a.c_out = d.c_out.data();
  a.noise_scale = d.noise_scale.data();
  a.prev = in_place ? sample.data() : out.data();
  Status s = be.scheduler_step(p, a);
  CHECK(s.ok(), "%s: %s", what.c_str(), s.message.c_str());
  check_bits(what.c_str(), in_place ? sample : out, reference_step(d));
}

void test_ops(Backend& be) {
  // Random data at a real size: [3, 3, 32, 32] (chunks cross image boundaries).
  const int batch = 3;
  const size_t n = static_cast<size_t>(batch) * 3 * 32 * 32;
  StepData r;
  r.model_output = randn(n, 1.0f);
  r.sample = randn(n, 20.0f);
  r.noise = randn(n, 1.0f);
  r.c_skip = {0.0390f, 0.4102f, 0.9999f};
  r.c_out = {0.4985f, 0.3839f, 0.0071f};
  r.noise_scale = {24.41f, 5.523f, 7.3e-7f};
  size_t fused_differs = 0;
  for (size_t i = 0; i < n; ++i) {
    const size_t b = i / (n / batch);
    const float product = r.c_skip[b] * r.sample[i];
    if (std::fmaf(r.c_out[b], r.model_output[i], product) !=
        reference_scheduler_step(r.model_output[i], r.sample[i], 0.0f, r.c_skip[b], r.c_out[b],
                                 1.0f, 0.0f, false))
      ++fused_differs;
  }
  std::printf("     random data: %zu of %zu denoised values differ when fused (FMA)\n",
              fused_differs, n);
  CHECK(fused_differs > 0, "the random data cannot tell a fused multiply-add apart");
  for (bool clip : {false, true})
    for (bool in_place : {false, true}) {
      r.clip = clip;
      test_step(be, std::string("scheduler_step random") + (clip ? " clip" : "") +
                        (in_place ? " in place" : ""), r, in_place);
    }
  StepData one_step = r;  // a one-step schedule: no noise, an s_noise that is not 1
  one_step.noise.clear();
  one_step.s_noise = 0.5f;
  test_step(be, "scheduler_step random, no noise, s_noise 0.5", one_step, false);
  r.s_noise = 1.003f;
  test_step(be, "scheduler_step random clip, s_noise 1.003", r, false);
  test_scale(be, "scale_model_input random", r.sample, {80.0016f, 24.41f, 0.5000f}, false);
  test_scale(be, "scale_model_input random in place", r.sample, {80.0016f, 24.41f, 0.5f}, true);

  // Edge values: every (model_output, sample) pair of specials, the noise running through
  // them at another phase, for per-image scalars that overflow, vanish, are infinite or NaN.
  const size_t k = kSpecials.size();
  const std::vector<std::vector<float>> scalars = {
      // c_skip, c_out, noise_scale
      {0.3f, 0.9f, 0.7f},       {1e30f, 1e30f, kNaN},  {0.0f, -0.0f, 0.0f},
      {kInf, -kInf, 1.0f},      {-0.0f, 1.0f, kInf},   {FLT_TRUE_MIN, 2.0f, 1e-30f}};
  StepData e;
  for (const auto& sc : scalars) {
    for (size_t i = 0; i < k * k; ++i) {
      e.model_output.push_back(kSpecials[i / k]);
      e.sample.push_back(kSpecials[i % k]);
      e.noise.push_back(kSpecials[(i * 7 + 3) % k]);
    }
    e.c_skip.push_back(sc[0]);
    e.c_out.push_back(sc[1]);
    e.noise_scale.push_back(sc[2]);
  }
  for (bool clip : {false, true})
    for (float s_noise : {1.0f, -0.5f}) {
      e.clip = clip;
      e.s_noise = s_noise;
      char what[64];
      std::snprintf(what, sizeof what, "scheduler_step edge values%s s_noise %g",
                    clip ? " clip" : "", s_noise);
      test_step(be, what, e, false);
    }
  e.noise.clear();
  e.clip = true;
  e.s_noise = 1.0f;
  test_step(be, "scheduler_step edge values clip, no noise", e, true);
  std::vector<float> x;
  const std::vector<float> divisors = {0.0f, -0.0f, kInf, kNaN, 1e-38f, 3.0f, -FLT_TRUE_MIN};
  for (size_t b = 0; b < divisors.size(); ++b) x.insert(x.end(), kSpecials.begin(), kSpecials.end());
  test_scale(be, "scale_model_input edge values", x, divisors, false);

  // Bad calls come back as statuses.
  SchedulerStepParams p;
  p.batch = 1;
  p.image = 4;
  Status s = be.scheduler_step(p, SchedulerStepArgs{});
  CHECK(!s.ok() && s.code == CM4J_ERR_INVALID_ARGUMENT, "null step arguments: %d", s.code);
  float v[4] = {1, 2, 3, 4};
  s = be.scale_model_input(v, v, v, 0, 4);
  CHECK(!s.ok() && s.code == CM4J_ERR_INVALID_ARGUMENT, "batch 0: %d", s.code);
}

// ---- 2. cm4j_unet_sample ----------------------------------------------------------------

std::string g_config;  // the tiny pipeline's UNet config

cm4j_unet* open_tiny(bool conditional, const std::string& config_override = "") {
  std::string config = config_override.empty() ? g_config : config_override;
  if (!conditional) {
    const std::string key = "\"num_class_embeds\": 1000";
    const size_t at = config.find(key);
    CHECK(at != std::string::npos, "tiny config has no %s", key.c_str());
    if (at != std::string::npos) config.replace(at, key.size(), "\"num_class_embeds\": null");
  }
  cm4j_unet* u = nullptr;
  int rc = cm4j_unet_create(config.c_str(), "cpu", CM4J_F32, &u);
  CHECK(rc == CM4J_OK, "create: %s", cm4j_last_error());
  if (rc != CM4J_OK) return nullptr;
  rc = conditional ? bind_safetensors(u, golden_dir() +
                                             "/tiny/pipeline/unet/diffusion_pytorch_model.safetensors")
                   : cm4j_unet_bind_synth(u, 1);
  if (rc == CM4J_OK) rc = cm4j_unet_finalize(u);
  CHECK(rc == CM4J_OK, "bind/finalize: %s", cm4j_last_error());
  if (rc != CM4J_OK) {
    cm4j_unet_destroy(u);
    return nullptr;
  }
  return u;
}

constexpr int64_t kImage = 3 * 32 * 32;

struct Run {
  int batch = 1;
  std::vector<float> sigmas;
  bool noise = false;
  float s_noise = 1.0f;
  bool clip = true;
  std::vector<int64_t> labels;  // empty: none
  std::vector<float> x0, noise_values;
  SampleTables tables;
};

Run make_run(int batch, std::vector<float> sigmas, bool noise, bool clip, bool conditional,
             float s_noise = 1.0f) {
  Run r;
  r.batch = batch;
  r.sigmas = std::move(sigmas);
  r.noise = noise;
  r.clip = clip;
  r.s_noise = s_noise;
  if (conditional)
    for (int b = 0; b < batch; ++b) r.labels.push_back(145 + 300 * b);
  r.x0 = randn(batch * kImage, 80.0f);
  const int steps = static_cast<int>(r.sigmas.size());
  if (noise) r.noise_values = randn(static_cast<size_t>(steps) * batch * kImage, 1.0f);
  r.tables = sample_tables(r.sigmas, batch);
  return r;
}

// The loop around cm4j_unet_forward with the reference arithmetic on the host.
std::vector<float> host_loop(cm4j_unet* u, const Run& r) {
  const int steps = static_cast<int>(r.sigmas.size());
  const size_t n = r.batch * kImage;
  std::vector<float> x = r.x0, in(n), out(n);
  for (int s = 0; s < steps; ++s) {
    const size_t row = static_cast<size_t>(s) * r.batch;
    for (size_t i = 0; i < n; ++i)
      in[i] = reference_scale_model_input(x[i], r.tables.input_scale[row + i / kImage]);
    int rc = cm4j_unet_forward(u, r.batch, in.data(), &r.tables.timesteps[row],
                               r.labels.empty() ? nullptr : r.labels.data(), out.data());
    CHECK(rc == CM4J_OK, "forward: %s", cm4j_last_error());
    for (size_t i = 0; i < n; ++i) {
      const size_t b = row + i / kImage;
      x[i] = reference_scheduler_step(out[i], x[i], r.noise ? r.noise_values[s * n + i] : 0.0f,
                                      r.tables.c_skip[b], r.tables.c_out[b], r.s_noise,
                                      r.tables.noise_scale[b], r.clip);
    }
  }
  return x;
}

int sample(cm4j_unet* u, const Run& r, float* out, const float* in = nullptr) {
  return cm4j_unet_sample(u, r.batch, static_cast<int>(r.sigmas.size()), in ? in : r.x0.data(),
                          r.tables.timesteps.data(), r.tables.input_scale.data(),
                          r.tables.c_skip.data(), r.tables.c_out.data(),
                          r.tables.noise_scale.data(), r.s_noise,
                          r.noise ? r.noise_values.data() : nullptr,
                          r.labels.empty() ? nullptr : r.labels.data(), r.clip ? 1 : 0, out);
}

void test_loop(cm4j_unet* u, const char* what, const Run& r) {
  std::vector<float> want = host_loop(u, r), got(want.size(), kNaN);
  int rc = sample(u, r, got.data());
  CHECK(rc == CM4J_OK, "%s: sample: %s", what, cm4j_last_error());
  check_bits(what, got, want);
}

void expect_error(const char* what, int rc, int code, const char* fragment) {
  const std::string message = cm4j_last_error();
  const bool ok = rc == code && message.find(fragment) != std::string::npos;
  std::printf("%s %-52s -> %d \"%s\"\n", ok ? "ok  " : "FAIL", what, rc, message.c_str());
  CHECK(ok, "%s: expected status %d with \"%s\"", what, code, fragment);
}

void test_sample() {
  cm4j_unet* cond = open_tiny(true);
  cm4j_unet* uncond = open_tiny(false);
  if (!cond || !uncond) {
    cm4j_unet_destroy(cond);
    cm4j_unet_destroy(uncond);
    return;
  }
  // The tiny pipeline's schedules: one step at sigma_max; 3 and 2 steps of its 40.
  const std::vector<float> one = {80.0f}, three = {80.0f, 24.41f, 5.523f}, two = {80.0f, 2.45f};
  test_loop(cond, "sample cond b1 onestep clip", make_run(1, one, false, true, true));
  test_loop(cond, "sample cond b3 3 steps clip", make_run(3, three, true, true, true));
  test_loop(cond, "sample cond b3 2 steps no clip s_noise 0.9",
            make_run(3, two, true, false, true, 0.9f));
  test_loop(cond, "sample cond b1 3 steps no clip", make_run(1, three, true, false, true));
  test_loop(uncond, "sample uncond b1 2 steps clip", make_run(1, two, true, true, false));
  test_loop(uncond, "sample uncond b3 onestep no clip", make_run(3, one, false, false, false));

  // In place, and from two threads at once on one engine (passes are serialized).
  const Run r = make_run(3, three, true, true, true);
  std::vector<float> want(r.x0.size()), inplace = r.x0;
  CHECK(sample(cond, r, want.data()) == CM4J_OK, "sample: %s", cm4j_last_error());
  CHECK(sample(cond, r, inplace.data(), inplace.data()) == CM4J_OK, "in place: %s",
        cm4j_last_error());
  check_bits("sample in place (sample_out == sample_in)", inplace, want);
  const Run r1 = make_run(1, two, true, false, true);
  std::vector<float> want1(r1.x0.size()), got_a(want.size()), got_b(want1.size());
  CHECK(sample(cond, r1, want1.data()) == CM4J_OK, "sample: %s", cm4j_last_error());
  int rc_a = -1, rc_b = -1;
  std::thread ta([&] { rc_a = sample(cond, r, got_a.data()); });
  std::thread tb([&] { rc_b = sample(cond, r1, got_b.data()); });
  ta.join();
  tb.join();
  CHECK(rc_a == CM4J_OK && rc_b == CM4J_OK, "concurrent samples failed");
  check_bits("sample b3 from thread A (B runs b1 at once)", got_a, want);
  check_bits("sample b1 from thread B", got_b, want1);

  // Invalid arguments: a status and a message naming the argument; the engine keeps working.
  std::vector<float> out(r.x0.size());
  const SampleTables& t = r.tables;
  const float* noise = r.noise_values.data();
  const int64_t* labels = r.labels.data();
  auto call = [&](cm4j_unet* u, int batch, int steps, const float* in, const float* ts,
                  const float* is, const float* cs, const float* co, const float* ns,
                  const int64_t* l, int clip, float* o) {
    return cm4j_unet_sample(u, batch, steps, in, ts, is, cs, co, ns, 1.0f, noise, l, clip, o);
  };
  const float* x0 = r.x0.data();
  const float *ts = t.timesteps.data(), *is = t.input_scale.data(), *cs = t.c_skip.data(),
              *co = t.c_out.data(), *ns = t.noise_scale.data();
  float* o = out.data();
  expect_error("null engine", call(nullptr, 3, 3, x0, ts, is, cs, co, ns, labels, 1, o),
               CM4J_ERR_INVALID_ARGUMENT, "engine handle is null");
  expect_error("batch 0", call(cond, 0, 3, x0, ts, is, cs, co, ns, labels, 1, o),
               CM4J_ERR_INVALID_ARGUMENT, "batch: expected a positive size, found 0");
  expect_error("steps -1", call(cond, 3, -1, x0, ts, is, cs, co, ns, labels, 1, o),
               CM4J_ERR_INVALID_ARGUMENT, "steps: expected at least 1, found -1");
  expect_error("null sample_in", call(cond, 3, 3, nullptr, ts, is, cs, co, ns, labels, 1, o),
               CM4J_ERR_INVALID_ARGUMENT, "sample_in is null");
  expect_error("null timesteps", call(cond, 3, 3, x0, nullptr, is, cs, co, ns, labels, 1, o),
               CM4J_ERR_INVALID_ARGUMENT, "timesteps is null");
  expect_error("null input_scale", call(cond, 3, 3, x0, ts, nullptr, cs, co, ns, labels, 1, o),
               CM4J_ERR_INVALID_ARGUMENT, "input_scale is null");
  expect_error("null c_skip", call(cond, 3, 3, x0, ts, is, nullptr, co, ns, labels, 1, o),
               CM4J_ERR_INVALID_ARGUMENT, "c_skip is null");
  expect_error("null c_out", call(cond, 3, 3, x0, ts, is, cs, nullptr, ns, labels, 1, o),
               CM4J_ERR_INVALID_ARGUMENT, "c_out is null");
  expect_error("null noise_scale", call(cond, 3, 3, x0, ts, is, cs, co, nullptr, labels, 1, o),
               CM4J_ERR_INVALID_ARGUMENT, "noise_scale is null");
  expect_error("null sample_out", call(cond, 3, 3, x0, ts, is, cs, co, ns, labels, 1, nullptr),
               CM4J_ERR_INVALID_ARGUMENT, "sample_out is null");
  expect_error("clip 2", call(cond, 3, 3, x0, ts, is, cs, co, ns, labels, 2, o),
               CM4J_ERR_INVALID_ARGUMENT, "clip: expected 0 or 1, found 2");
  expect_error("no labels, class-conditional",
               call(cond, 3, 3, x0, ts, is, cs, co, ns, nullptr, 1, o), CM4J_ERR_INVALID_ARGUMENT,
               "class_labels: required");
  const int64_t bad_labels[3] = {1, 1000, 2};
  expect_error("label 1000", call(cond, 3, 3, x0, ts, is, cs, co, ns, bad_labels, 1, o),
               CM4J_ERR_INVALID_ARGUMENT, "class_labels[1]: expected 0..999, found 1000");
  std::vector<float> bad_ts = t.timesteps;
  bad_ts[4] = kNaN;
  expect_error("NaN timestep", call(cond, 3, 3, x0, bad_ts.data(), is, cs, co, ns, labels, 1, o),
               CM4J_ERR_INVALID_ARGUMENT, "timesteps[4] (step 2, image 1): expected a finite value");
  // A batch whose activations pass 32-bit element counts is refused before anything is read
  // (and with it any steps x batch of noise that would not fit in memory).
  expect_error("2^31 steps of 2^31 images",
               call(cond, 2147483647, 2147483647, x0, ts, is, cs, co, ns, labels, 1, o),
               CM4J_ERR_INVALID_ARGUMENT, "images for this model, found 2147483647");
  std::string six = g_config;
  const size_t at = six.find("\"out_channels\": 3");
  if (at != std::string::npos) six.replace(at, 17, "\"out_channels\": 6");
  cm4j_unet* wide = nullptr;
  if (cm4j_unet_create(six.c_str(), "cpu", CM4J_F32, &wide) == CM4J_OK) {
    expect_error("not finalized", call(wide, 3, 3, x0, ts, is, cs, co, ns, labels, 1, o),
                 CM4J_ERR_STATE, "weights are not finalized");
    if (cm4j_unet_bind_synth(wide, 1) == CM4J_OK && cm4j_unet_finalize(wide) == CM4J_OK)
      expect_error("out_channels 6", call(wide, 3, 3, x0, ts, is, cs, co, ns, labels, 1, o),
                   CM4J_ERR_UNSUPPORTED, "outputs 6 channels but takes 3");
    else
      CHECK(false, "out_channels 6 model: %s", cm4j_last_error());
  } else {
    CHECK(false, "create out_channels 6: %s", cm4j_last_error());
  }
  cm4j_unet_destroy(wide);
  std::vector<float> after(want.size());
  CHECK(sample(cond, r, after.data()) == CM4J_OK, "after the errors: %s", cm4j_last_error());
  check_bits("sample after the refused calls", after, want);

  cm4j_unet_destroy(cond);
  cm4j_unet_destroy(uncond);
}

}  // namespace

int main() {
  auto cpu = make_cpu_backend(0, CM4J_F32);
  CHECK(cpu != nullptr, "cpu backend");
  if (cpu) test_ops(*cpu);
  g_config = read_text(golden_dir() + "/tiny/pipeline/unet/config.json");
  CHECK(!g_config.empty(), "no tiny config under %s", golden_dir().c_str());
  if (!g_config.empty()) test_sample();
  std::printf("test_scheduler: %s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}

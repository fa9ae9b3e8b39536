// CUDA benchmark: imagenet64 (the real cd_imagenet64_l2 architecture, synth-v1 weights)
// full forward latency at batch 1, 8 and 64 in fp32 (default kernels) and with the
// tensor-core conv (fp16 / bf16 operands), then per-op times of the largest convs (fp32
// tiled vs fp16/bf16 tensor cores), attention and group norms. Skips (77) without a GPU.
//   forward: wall clock around cm4j_unet_forward, which is synchronous (input upload,
//            every kernel, output download); the first call per batch size (plan and
//            arena building) is a warm-up and not timed.
//   ops:     CUDA events on the backend's stream, median of several launches.
// Lines starting with "RESULT" are for scripts/device-check.sh's summary and
// scripts/gpu-bench.sh's table.
//   --quick   fewer iterations, no batch 64
//   --batch 1,8,64,256 --dtype fp16,bf16,fp32 [--generate] [--ops N] [--ops-batch B]
//             forward passes of those only (gpu-bench.sh's run), with one- and two-step
//             generation (cm4j_unet_sample) and the N slowest ops of a profiled pass;
//             --device cpu:N --config FILE run that on another engine (a check of this
//             bench without a GPU)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend.h"
#include "cm4j.h"
#include "../tests/test_util.h"  // the bench targets are built with test_util.cpp
#ifdef CM4J_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

namespace {

constexpr double kGflopPerImage = 219.3;  // imagenet64 UNet forward, from the architecture doc

bool g_quick = false;
// --device / --config: the engine bench_forward builds (another config or the cpu device
// checks this bench's own logic on a machine without a GPU; TFLOP/s is imagenet64's).
std::string g_device = "cuda";
std::string g_config;

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

const char* dtype_tag(int dtype) {
  return dtype == CM4J_F16 ? "fp16" : dtype == CM4J_BF16 ? "bf16" : "fp32";
}

// Median milliseconds of `fn` (a synchronous engine call) after one warm-up call, over at most
// max_iters calls and about budget_ms; -1 with the message printed when a call fails.
double median_ms(const std::function<int()>& fn, int max_iters, double budget_ms, const char* what) {
  if (fn() != CM4J_OK) {  // warm-up: builds the plan and arena for this batch
    std::printf("%s failed: %s\n", what, cm4j_last_error());
    return -1;
  }
  std::vector<double> times;
  const double start = now_ms();
  while (static_cast<int>(times.size()) < max_iters && (times.empty() || now_ms() - start < budget_ms)) {
    const double t0 = now_ms();
    if (fn() != CM4J_OK) {
      std::printf("%s failed: %s\n", what, cm4j_last_error());
      return -1;
    }
    times.push_back(now_ms() - t0);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// One forward pass of u at `batch` with the op profile on: the `top` slowest ops as RESULT
// lines (milliseconds with each op waited for; their sum exceeds a plain pass's by the
// launch overlap a plain pass has).
void slowest_ops(cm4j_unet* u, const char* tag, int batch, int top, const std::function<int()>& forward,
                 std::vector<std::string>* results) {
  if (cm4j_unet_set_profile_ops(u, 1) != CM4J_OK || forward() != CM4J_OK) {
    std::printf("op profile failed: %s\n", cm4j_last_error());
    cm4j_unet_set_profile_ops(u, 0);
    return;
  }
  std::vector<std::pair<double, std::string>> ops;
  double total = 0;
  for (int i = 0; i < cm4j_unet_op_count(u); ++i) {
    ops.emplace_back(cm4j_unet_op_ms(u, i), cm4j_unet_op_name(u, i));
    total += ops.back().first;
  }
  cm4j_unet_set_profile_ops(u, 0);
  std::sort(ops.rbegin(), ops.rend());
  std::printf("%s batch %d: the %d slowest of %zu ops (each waited for; %.2f ms in all)\n", tag,
              batch, top, ops.size(), total);
  for (int i = 0; i < top && i < static_cast<int>(ops.size()); ++i) {
    std::printf("  %8.3f ms  %5.1f%%  %s\n", ops[i].first, 100 * ops[i].first / total, ops[i].second.c_str());
    char line[256];
    std::snprintf(line, sizeof line, "RESULT op %s batch=%d rank=%d ms=%.3f share=%.1f name=%s", tag,
                  batch, i + 1, ops[i].first, 100 * ops[i].first / total, ops[i].second.c_str());
    results->push_back(line);
  }
}

// imagenet64 with synth-v1 weights in `dtype`: per batch, a forward pass (cm4j_unet_forward:
// input upload, every kernel, output download) and, with `generate`, one- and two-step
// generation (cm4j_unet_sample: the whole loop on the device); the op profile of the batch
// `ops_batch` when `top_ops` > 0. RESULT lines for scripts/device-check.sh and gpu-bench.sh.
void bench_forward(int dtype, const char* dtype_name, const std::vector<int>& batches,
                   bool generate = false, int top_ops = 0, int ops_batch = 0) {
  const std::string path = g_config.empty() ? cm4j_test::golden_dir() + "/imagenet64/config.json" : g_config;
  const std::string config = cm4j_test::read_text(path);
  if (config.empty()) {
    std::printf("forward: cannot read the config %s\n", path.c_str());
    return;
  }
  cm4j_unet* u = nullptr;
  if (cm4j_unet_create(config.c_str(), g_device.c_str(), dtype, &u) != CM4J_OK ||
      cm4j_unet_bind_synth(u, 1) != CM4J_OK || cm4j_unet_finalize(u) != CM4J_OK) {
    std::printf("forward: engine setup failed: %s\n", cm4j_last_error());
    cm4j_unet_destroy(u);
    return;
  }
  const char* tag = dtype_tag(dtype);
  std::printf("\n%s forward on %s, %s, synth-v1 weights (%.1f MB of weights)\n",
              g_config.empty() ? "imagenet64" : g_config.c_str(), g_device.c_str(), dtype_name,
              cm4j_unet_weight_bytes(u) / 1e6);
  std::printf("| batch | ms / forward | ms / image | images / s | TFLOP/s | 1-step ms | 2-step ms | arena MB |\n");
  std::printf("|------:|-------------:|-----------:|-----------:|--------:|----------:|----------:|---------:|\n");
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::string> results;  // RESULT lines, printed after the table
  for (int batch : batches) {
    if (g_quick && batch > 8) continue;
    const int c = cm4j_unet_in_channels(u), size = cm4j_unet_sample_size(u);
    const size_t n = static_cast<size_t>(batch) * c * size * size;
    std::vector<float> sample(n), out(n), t(batch);
    std::vector<int64_t> labels(batch);
    for (auto& v : sample) v = normal(rng);
    for (int b = 0; b < batch; ++b) {
      t[b] = 250.0f * std::log(0.002f + 80.0f * b / batch + 1.0f);
      labels[b] = (b * 97) % std::max(1, cm4j_unet_num_class_embeds(u));
    }
    const int64_t* lab = cm4j_unet_num_class_embeds(u) > 0 ? labels.data() : nullptr;
    auto forward = [&] { return cm4j_unet_forward(u, batch, sample.data(), t.data(), lab, out.data()); };
    const int max_iters = g_quick ? 3 : (batch >= 64 ? 3 : 10);
    const double budget_ms = g_quick ? 2000 : 6000;
    const double ms = median_ms(forward, max_iters, budget_ms, "forward");
    if (ms < 0) continue;
    // Generation: one step from sigma 80, and two (80, then 0.661: a second step from the
    // middle of the schedule, as the multistep examples take).
    double gen_ms[2] = {-1, -1};
    for (int steps = 1; generate && steps <= 2; ++steps) {
      const std::vector<float> sigmas = steps == 1 ? std::vector<float>{80.0f} : std::vector<float>{80.0f, 0.661f};
      cm4j_test::SampleTables tab = cm4j_test::sample_tables(sigmas, batch);
      std::vector<float> noise(steps == 2 ? 2 * n : 0);
      for (auto& v : noise) v = normal(rng);
      gen_ms[steps - 1] = median_ms(
          [&] {
            return cm4j_unet_sample(u, batch, steps, sample.data(), tab.timesteps.data(),
                                    tab.input_scale.data(), tab.c_skip.data(), tab.c_out.data(),
                                    tab.noise_scale.data(), 1.0f, steps == 2 ? noise.data() : nullptr,
                                    lab, 1, out.data());
          },
          max_iters, budget_ms, "generate");
    }
    const double tflops = g_config.empty() ? kGflopPerImage * batch / ms : 0;  // GFLOP/ms = TFLOP/s
    std::printf("| %5d | %12.2f | %10.3f | %10.1f | %7.2f | %9.2f | %9.2f | %8.1f |\n", batch, ms,
                ms / batch, 1e3 * batch / ms, tflops, gen_ms[0], gen_ms[1], cm4j_unet_arena_bytes(u) / 1e6);
    char line[200];
    std::snprintf(line, sizeof line, "RESULT forward %s batch=%d ms=%.3f img_per_s=%.1f tflops=%.2f",
                  tag, batch, ms, 1e3 * batch / ms, tflops);
    results.push_back(line);
    for (int steps = 1; steps <= 2; ++steps) {
      if (gen_ms[steps - 1] < 0) continue;
      std::snprintf(line, sizeof line, "RESULT generate %s steps=%d batch=%d ms=%.3f img_per_s=%.1f",
                    tag, steps, batch, gen_ms[steps - 1], 1e3 * batch / gen_ms[steps - 1]);
      results.push_back(line);
    }
    if (top_ops > 0 && batch == ops_batch) slowest_ops(u, tag, batch, top_ops, forward, &results);
  }
  std::printf("\n");
  for (const std::string& r : results) std::printf("%s\n", r.c_str());
  cm4j_unet_destroy(u);
}

#ifdef CM4J_HAVE_CUDA
using cm4j::Backend;
using cm4j::Status;

struct DeviceBuf {
  Backend* be;
  float* p = nullptr;
  DeviceBuf(Backend* b, size_t n, std::mt19937& rng) : be(b) {
    if (!be->alloc(n * sizeof(float), &p).ok()) {
      p = nullptr;
      return;
    }
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> h(n);
    for (auto& v : h) v = d(rng);
    be->upload(p, h.data(), n);
  }
  ~DeviceBuf() {
    if (p) be->free(p);
  }
};

// Median milliseconds of `fn` over `reps` launches, timed by events on the backend's stream.
double time_op(Backend* be, const std::function<Status()>& fn, int reps, Status* status) {
  cudaStream_t stream = cm4j::cuda_backend_stream(be);
  *status = fn();  // warm-up
  if (status->ok()) *status = be->synchronize();
  if (!status->ok()) return -1;
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<double> ms;
  for (int i = 0; i < reps && status->ok(); ++i) {
    cudaEventRecord(a, stream);
    *status = fn();
    cudaEventRecord(b, stream);
    cudaEventSynchronize(b);
    float t = 0;
    cudaEventElapsedTime(&t, a, b);
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  if (!status->ok() || ms.empty()) return -1;
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

struct ConvShape {
  const char* name;
  int batch, c1, c2, h, c_out, kernel;
  bool up;
};

// Median ms of one conv on `be` (fresh random inputs, weights prepared by `be`); -1 and a
// message on failure.
double time_conv(Backend* be, const ConvShape& c, int reps, std::mt19937& rng, std::string* err) {
  cm4j::ConvParams p;
  p.batch = c.batch;
  p.c_in1 = c.c1;
  p.c_in2 = c.c2;
  p.h_in = p.w_in = c.h;
  p.c_out = c.c_out;
  p.kernel = c.kernel;
  p.pad = c.kernel / 2;
  p.upsample = c.up;
  const int ho = p.h_out();
  const int cin = c.c1 + c.c2;
  std::vector<float> w(static_cast<size_t>(c.c_out) * cin * c.kernel * c.kernel, 0.01f);
  std::unique_ptr<cm4j::Weight> weight;
  Status s = be->prepare_conv(w.data(), c.c_out, cin, c.kernel, &weight);
  DeviceBuf s1(be, static_cast<size_t>(c.batch) * c.c1 * c.h * c.h, rng);
  DeviceBuf s2(be, static_cast<size_t>(c.batch) * std::max(c.c2, 1) * c.h * c.h, rng);
  DeviceBuf dst(be, static_cast<size_t>(c.batch) * c.c_out * ho * ho, rng);
  cm4j::ConvArgs a;
  a.src1 = s1.p;
  a.src2 = c.c2 ? s2.p : nullptr;
  a.weight = weight.get();
  a.dst = dst.p;
  double ms = -1;
  if (s.ok()) ms = time_op(be, [&] { return be->conv2d(p, a); }, reps, &s);
  if (!s.ok()) *err = s.message;
  return s.ok() ? ms : -1;
}

// The imagenet64 time path: Backend::time_embedding as the default set composes it (four
// launches) and as the candidate set runs it (labels' copy + one kernel), then the one
// linear of every resnet's time_emb_proj (35712 rows: 36 scale_shift resnets).
void bench_time_path(Backend* def, int reps, std::mt19937& rng) {
  std::string err;
  auto cand = cm4j::make_cuda_backend_with(0, CM4J_F32, cm4j::CudaKernels::kCandidate, &err);
  const int c0 = 192, dim = 768, classes = 1000, proj_rows = 35712;
  std::vector<float> w1(static_cast<size_t>(dim) * c0, 0.01f);
  std::vector<float> w2(static_cast<size_t>(dim) * dim, 0.01f);
  std::vector<float> wp(static_cast<size_t>(proj_rows) * dim, 0.01f);
  for (int batch : {1, 8, 64}) {
    std::vector<int64_t> labels(batch, 207);
    Backend* backends[2] = {def, cand.get()};
    const char* names[2] = {"default", "candidate"};
    for (int i = 0; i < 2; ++i) {
      Backend* be = backends[i];
      if (!be) {
        std::printf("| time_embedding | %s | %d | failed: %s | |\n", names[i], batch, err.c_str());
        continue;
      }
      std::unique_ptr<cm4j::Weight> l1, l2;
      Status s = be->prepare_linear(w1.data(), dim, c0, &l1);
      if (s.ok()) s = be->prepare_linear(w2.data(), dim, dim, &l2);
      const size_t b = static_cast<size_t>(batch);
      DeviceBuf t(be, b, rng), bias(be, 2 * dim, rng);
      DeviceBuf table(be, static_cast<size_t>(classes) * dim, rng);
      DeviceBuf work(be, b * (c0 + 2 * dim), rng), emb(be, b * dim, rng);
      cm4j::TimeEmbeddingParams p;
      p.batch = batch;
      p.channels = c0;
      p.dim = dim;
      cm4j::TimeEmbeddingArgs a;
      a.t = t.p;
      a.linear_1 = l1.get();
      a.bias_1 = bias.p;
      a.linear_2 = l2.get();
      a.bias_2 = bias.p + dim;
      a.class_table = table.p;
      a.class_labels = labels.data();
      a.workspace = work.p;
      a.emb = emb.p;
      double ms = s.ok() ? time_op(be, [&] { return be->time_embedding(p, a); }, reps, &s) : -1;
      if (ms > 0)
        std::printf("| time_embedding | imagenet64, %s kernels | %d | %.4f | |\n", names[i], batch, ms);
      else
        std::printf("| time_embedding | imagenet64, %s kernels | %d | failed: %s | |\n", names[i],
                    batch, s.message.c_str());
    }
    std::unique_ptr<cm4j::Weight> lp;
    Status s = def->prepare_linear(wp.data(), proj_rows, dim, &lp);
    DeviceBuf x(def, static_cast<size_t>(batch) * dim, rng), bias(def, proj_rows, rng);
    DeviceBuf y(def, static_cast<size_t>(batch) * proj_rows, rng);
    cm4j::LinearArgs a;
    a.x = x.p;
    a.weight = lp.get();
    a.bias = bias.p;
    a.y = y.p;
    const cm4j::LinearParams p{batch, proj_rows, dim, /*silu_input=*/true, false};
    double ms = s.ok() ? time_op(def, [&] { return def->linear(p, a); }, reps, &s) : -1;
    const double bytes = static_cast<double>(proj_rows) * dim * sizeof(float);  // the weights, once
    if (ms > 0)
      std::printf("| linear | every time_emb_proj, %dx%d | %d | %.4f | %.0f GB/s |\n", proj_rows,
                  dim, batch, ms, bytes / ms / 1e6);
    else
      std::printf("| linear | every time_emb_proj | %d | failed: %s | |\n", batch, s.message.c_str());
  }
}

void bench_ops() {
  std::string err;
  auto be = cm4j::make_cuda_backend_with(0, CM4J_F32, cm4j::CudaKernels::kDefault, &err);
  if (!be) {
    std::printf("ops: %s\n", err.c_str());
    return;
  }
  std::string err16, errbf;
  auto be16 = cm4j::make_cuda_backend_with(0, CM4J_F16, cm4j::CudaKernels::kDefault, &err16);
  auto bebf = cm4j::make_cuda_backend_with(0, CM4J_BF16, cm4j::CudaKernels::kDefault, &errbf);
  std::mt19937 rng(3);
  const int reps = g_quick ? 3 : 10;
  std::printf("\nconv2d, median of %d launches (CUDA events), ms and TFLOP/s\n", reps);
  std::printf("| case | batch | fp32 tiled | fp16 tensor cores | bf16 tensor cores |\n");
  std::printf("|---|---:|---:|---:|---:|\n");
  const ConvShape convs[] = {
      {"down0 conv 192>192 64x64", 1, 192, 0, 64, 192, 3, false},
      {"down0 conv 192>192 64x64", 8, 192, 0, 64, 192, 3, false},
      {"down1 conv 384>384 32x32", 8, 384, 0, 32, 384, 3, false},
      {"down2 conv 576>576 16x16", 8, 576, 0, 16, 576, 3, false},
      {"mid conv 768>768 8x8", 1, 768, 0, 8, 768, 3, false},
      {"mid conv 768>768 8x8", 8, 768, 0, 8, 768, 3, false},
      {"up0 cat 768+768>768 8x8", 8, 768, 768, 8, 768, 3, false},
      {"up3 cat 384+192>192 64x64", 8, 384, 192, 64, 192, 3, false},
      {"upsample conv 576 16>32", 8, 576, 0, 16, 576, 3, true},
      {"to_qkv 1x1 384>1152 32x32", 8, 384, 0, 32, 1152, 1, false},
  };
  std::vector<std::string> results;
  for (const ConvShape& c : convs) {
    int ho = c.up ? 2 * c.h : c.h;
    const double flop = 2.0 * c.batch * c.c_out * ho * ho * (c.c1 + c.c2) * c.kernel * c.kernel;
    std::string cells[3];
    Backend* backends[3] = {be.get(), be16.get(), bebf.get()};
    const char* names[3] = {"fp32", "fp16", "bf16"};
    for (int i = 0; i < 3; ++i) {
      char cell[96];
      std::string e;
      double ms = backends[i] ? time_conv(backends[i], c, reps, rng, &e) : -1;
      if (!backends[i]) e = i == 1 ? err16 : errbf;
      if (ms > 0) {
        std::snprintf(cell, sizeof cell, "%.3f ms, %.1f", ms, flop / ms / 1e9);
        char line[160];
        std::snprintf(line, sizeof line, "RESULT op conv2d %s \"%s\" batch=%d ms=%.3f tflops=%.2f",
                      names[i], c.name, c.batch, ms, flop / ms / 1e9);
        results.push_back(line);
      } else {
        std::snprintf(cell, sizeof cell, "failed: %.60s", e.c_str());
      }
      cells[i] = cell;
    }
    std::printf("| %s | %d | %s | %s | %s |\n", c.name, c.batch, cells[0].c_str(), cells[1].c_str(),
                cells[2].c_str());
  }
  std::printf("\n");
  for (const std::string& r : results) std::printf("%s\n", r.c_str());

  std::printf("\nother ops (fp32), median of %d launches\n", reps);
  std::printf("| op | case | batch | ms | rate |\n|---|---|---:|---:|---:|\n");
  struct AttnShape {
    const char* name;
    int batch, c, hw;
  } attns[] = {{"down1 384ch 32x32 dh64", 8, 384, 1024},
               {"down2 576ch 16x16 dh64", 8, 576, 256},
               {"mid 768ch 8x8 dh64", 8, 768, 64}};
  for (const AttnShape& t : attns) {
    cm4j::AttentionParams p;
    p.batch = t.batch;
    p.channels = t.c;
    p.hw = t.hw;
    p.dim_head = 64;
    p.heads = t.c / 64;
    p.scale = 0.125f;
    DeviceBuf qkv(be.get(), static_cast<size_t>(t.batch) * 3 * t.c * t.hw, rng);
    DeviceBuf out(be.get(), static_cast<size_t>(t.batch) * t.c * t.hw, rng);
    cm4j::AttentionArgs a;
    a.qkv = qkv.p;
    a.out = out.p;
    Status s;
    double ms = time_op(be.get(), [&] { return be->attention(p, a); }, reps, &s);
    const double flop = 4.0 * t.batch * t.c * static_cast<double>(t.hw) * t.hw;
    if (ms > 0)
      std::printf("| attention | %s | %d | %.3f | %.2f TFLOP/s |\n", t.name, t.batch, ms, flop / ms / 1e9);
    else
      std::printf("| attention | %s | %d | failed: %s | |\n", t.name, t.batch, s.message.c_str());
  }
  struct NormShape {
    const char* name;
    int batch, c, hw;
  } norms[] = {{"192ch 64x64 silu", 8, 192, 4096}, {"768ch 8x8 silu", 8, 768, 64}};
  for (const NormShape& t : norms) {
    cm4j::GroupNormParams p;
    p.batch = t.batch;
    p.channels = t.c;
    p.hw = t.hw;
    p.silu = true;
    const size_t n = static_cast<size_t>(t.batch) * t.c * t.hw;
    DeviceBuf x(be.get(), n, rng), y(be.get(), n, rng), gb(be.get(), 2 * t.c, rng);
    cm4j::GroupNormArgs a;
    a.x = x.p;
    a.gamma = gb.p;
    a.beta = gb.p + t.c;
    a.y = y.p;
    Status s;
    double ms = time_op(be.get(), [&] { return be->group_norm(p, a); }, reps, &s);
    const double bytes = 3.0 * n * sizeof(float);  // two statistic passes and one write pass
    if (ms > 0)
      std::printf("| group_norm | %s | %d | %.3f | %.0f GB/s |\n", t.name, t.batch, ms, bytes / ms / 1e6);
    else
      std::printf("| group_norm | %s | %d | failed: %s | |\n", t.name, t.batch, s.message.c_str());
  }
  bench_time_path(be.get(), reps, rng);
}
#endif

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--quick] [--batch 1,8,64,256 --dtype fp16,bf16,fp32 [--generate]\n"
               "          [--ops N] [--ops-batch B] [--device cuda|cpu:N] [--config FILE]]\n"
               "  no options: forward at batch 1, 8, 64 in fp32 and fp16 (bf16 at 8), then the\n"
               "              per-op benchmarks (device-check's run)\n"
               "  --batch/--dtype: forward passes of those only, no per-op benchmarks;\n"
               "  --generate: one- and two-step generation too; --ops N: the N slowest ops of\n"
               "  one profiled pass at --ops-batch (default the largest batch)\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> batches, dtypes;
  bool generate = false;
  int top_ops = 0, ops_batch = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--quick") {
      g_quick = true;
    } else if (a == "--generate") {
      generate = true;
    } else if (a == "--batch" && value) {
      batches = cm4j_test::parse_int_list(argv[++i], 1, 4096);
      if (batches.empty()) return usage(argv[0]);
    } else if (a == "--dtype" && value) {
      for (const char* d = argv[++i]; *d;) {
        const size_t len = std::strcspn(d, ",");
        const std::string name(d, len);
        if (name == "fp32") dtypes.push_back(CM4J_F32);
        else if (name == "fp16") dtypes.push_back(CM4J_F16);
        else if (name == "bf16") dtypes.push_back(CM4J_BF16);
        else return usage(argv[0]);
        d += len + (d[len] == ',');
      }
    } else if (a == "--device" && value) {
      g_device = argv[++i];
    } else if (a == "--config" && value) {
      g_config = argv[++i];
    } else if ((a == "--ops" || a == "--ops-batch") && value) {
      const std::vector<int> v = cm4j_test::parse_int_list(argv[++i], 1, 4096);
      if (v.size() != 1) return usage(argv[0]);
      (a == "--ops" ? top_ops : ops_batch) = v[0];
    } else {
      return usage(argv[0]);
    }
  }
  const bool custom = !batches.empty() || !dtypes.empty();
  if (custom && (batches.empty() || dtypes.empty())) return usage(argv[0]);
  if (ops_batch == 0 && !batches.empty()) ops_batch = *std::max_element(batches.begin(), batches.end());
  if (g_device.rfind("cuda", 0) == 0 && cm4j_cuda_device_count() == 0) {
    std::printf("bench_cuda: skipped: %s\n", cm4j_last_error());
    return 77;
  }
  if (custom) {
    for (int dtype : dtypes) bench_forward(dtype, dtype_tag(dtype), batches, generate, top_ops, ops_batch);
    return 0;
  }
#ifdef CM4J_HAVE_CUDA
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
    std::printf("bench_cuda: device 0: %s, sm_%d%d, %.1f GB, %d SMs\n", prop.name, prop.major,
                prop.minor, prop.totalGlobalMem / 1e9, prop.multiProcessorCount);
  const char* kernels = std::getenv("CM4J_CUDA_KERNELS");
  std::printf("bench_cuda: CM4J_CUDA_KERNELS=%s\n", kernels ? kernels : "(unset: default)");
  bench_forward(CM4J_F32, "fp32", {1, 8, 64});
  bench_forward(CM4J_F16, "fp16 tensor-core conv", {1, 8, 64});
  bench_forward(CM4J_BF16, "bf16 tensor-core conv", {8});
  bench_ops();
#else
  bench_forward(CM4J_F32, "fp32", {1, 8, 64});
#endif
  return 0;
}

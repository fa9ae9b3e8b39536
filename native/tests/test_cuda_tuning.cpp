// The measured conv choice (CM4J_TUNING, native/src/cuda/conv_tuner.h) in the NHWC mode
// (candidate kernels, fp16/bf16) on device "cuda": a GPU, or the CPU emulator of
// kernels/dev/emu. Timing there means nothing, so the test replaces it by a fixed cost per
// candidate (the tuner's test hook), which makes the choice known in advance:
//   - CM4J_TUNING=full measures each op shape once and writes the cache file (the fixed
//     rule's choice loses to the cheaper candidates the hook names); outputs within the
//     dtype's bound of the CPU backend;
//   - a candidate whose output disagrees with the rule's is dropped;
//   - a new backend with CM4J_TUNING=cached reads the file, times nothing and gives the same
//     bits; with a garbage file it runs the fixed rule (CM4J_TUNING=off's bits);
//   - batch invariance: with costs that differ by batch (another split count fastest at
//     batch 3 than at batch 1), tuning at batch 3 and at batch 1, in either order, gives
//     image 0 the same bits at both, and the same file; read back, the same bits again;
//   - a fused group norm (and its SiLU) is a shape of its own, and a cached order naming a
//     kernel that refuses the norm runs the rule; many threads choosing at once agree;
//   - a bad CM4J_TUNING is refused by name;
//   - with CM4J_CUDA_WGMMA=on, the sm_90a wgmma kernel chosen where the hook makes it
//     cheapest, and a file naming it run by the rule once the switch is off;
//   - with --golden, the tiny model's forward pass the same way through the engine (full,
//     then cached: the file's choices, identical outputs, within the golden bound of the
//     CPU), three passes each: measured in the plain first pass, never in the CUDA graph
//     capture of the second, the same bits in all three; then again with every conv the
//     mma kernel takes on the wgmma kernel (CM4J_CUDA_WGMMA=on, a 9.0 card).
// Where cuBLAS loads (the emulator's stand-in through CM4J_CUBLAS_LIB, which then must load,
// or a GPU's libcublas), the 1x1 convs must choose it (the hook makes it cheapest) and stay
// within the bound. With --cublas-missing (CM4J_CUBLAS_LIB naming a missing file), a cache
// file choosing cuBLAS must run the fixed rule with its bits instead in cached mode, and be
// measured again (in memory, the file unchanged) in full mode.
// Skips (77) without a CUDA device. Options: --dtype=fp16|bf16 (default fp16), --golden,
// --cublas-missing.
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backend.h"
#include "cm4j.h"
#include "cuda_test_util.h"
#include "test_util.h"
#ifdef CM4J_HAVE_CUDA
#include "conv2d_nhwc_mma.cuh"
#include "conv2d_nhwc_wgmma.cuh"
#include "cuda/conv_tuner.h"
#include "cuda/cuda_backend.h"
#endif

using namespace cm4j_test;

#ifdef CM4J_HAVE_CUDA
using namespace cm4j;

namespace {

int g_dtype = CM4J_F16;
double g_bound = 2e-3;  // the op tests' bounds: 2e-3 fp16, 1.5e-2 bf16
int g_timings = 0;      // candidates the cost hook was asked about
using Chosen = std::map<ConvAtBatch, ConvChoice>;
Chosen g_chosen;  // the last choice per shape and batch, as the tuner reports it

struct Case {
  const char* name;
  int batch, c1, c2, h, w, c_out, kernel, stride, pad;
  bool up, residual;
};

// Small shapes the mma kernel takes (channels in multiples of 8), each with several splits.
const Case kCases[] = {
    {"b1 32>64 8x8 k3", 1, 32, 0, 8, 8, 64, 3, 1, 1, false, false},
    {"b2 64+32>32 4x4 k3 up", 2, 64, 32, 4, 4, 32, 3, 1, 1, true, false},
    {"b1 128>32 8x8 k1 res", 1, 128, 0, 8, 8, 32, 1, 1, 0, false, true},
    {"b2 64+32>32 4x4 k1", 2, 64, 32, 4, 4, 32, 1, 1, 0, false, false},
};
constexpr size_t kCaseCount = sizeof kCases / sizeof kCases[0];

// The hook's costs: cuBLAS cheapest (1x1 convs, where the library loads), then mma 64x64
// with 2 splits, then WMMA; every other candidate is skipped unrun (the emulator is slow).
// So the choice is cuBLAS, else mma 64 2 where 2 splits apply, else WMMA, and never the rule
// (which takes 1 or 3 splits at these sizes).
double cost(const ConvShape&, int, const ConvChoice& c) {
  ++g_timings;
  if (c.kernel == ConvChoice::kCublas) return 0.5;
  if (c.kernel == ConvChoice::kMma && c.tile.m == 64 && c.splits == 2) return 1;
  return c.kernel == ConvChoice::kWmma ? 2 : -1;
}

bool g_cublas = false;  // whether cuBLAS loads, so that the 1x1 convs choose it

void hooks(std::function<double(const ConvShape&, int, const ConvChoice&)> costs = cost,
           std::function<void(const ConvChoice&, std::vector<float>*)> alter = nullptr) {
  conv_tuner_test::set_hooks(std::move(costs), std::move(alter),
                             [](const ConvShape& s, int batch, const ConvChoice& c) {
                               g_chosen[{s, batch}] = c;
                             });
}

// Whether every shape ran the rule (CM4J_TUNING=off's choices).
bool ran_rule(const Chosen& rule) { return g_chosen == rule; }

ConvShape shape_of(const Case& k) {
  kernels::Conv2dNhwcParams p;
  p.type = g_dtype == CM4J_BF16 ? kernels::HalfType::kBF16 : kernels::HalfType::kF16;
  p.c_in1 = k.c1;
  p.c_in2 = k.c2;
  p.c_out = k.c_out;
  p.kernel = k.kernel;
  p.stride = k.stride;
  p.pad = k.pad;
  p.upsample = k.up;
  p.h_in = k.h;
  p.w_in = k.w;
  return conv_shape_of(p);
}

// The choice a cache file's entries make for a shape at a batch (the mma order's tile as
// written there: every full run writes one per batch; the wgmma kernel's one tile).
ConvChoice from_file(const TuningEntries& e, const ConvAtBatch& at) {
  auto order = e.orders.find(at.first);
  if (order == e.orders.end()) return ConvChoice{ConvChoice::kWmma, {-1, -1}, -1};  // no match
  const ConvChoice::Kernel kernel = order->second.kernel;
  ConvChoice c{kernel,
               kernel == ConvChoice::kWmma    ? ConvTile{64, 64}
               : kernel == ConvChoice::kWgmma ? ConvTile{128, 128}
                                              : ConvTile{0, 0},
               order->second.splits};
  auto tile = e.tiles.find(at);
  if (c.kernel == ConvChoice::kMma) c.tile = tile == e.tiles.end() ? ConvTile{-1, -1} : tile->second;
  return c;
}

std::unique_ptr<Backend> gpu(const char* tuning) {
  g_chosen.clear();
  setenv("CM4J_TUNING", tuning, 1);
  std::string error;
  auto b = make_cuda_backend_with(0, g_dtype, CudaKernels::kCandidate, &error);
  unsetenv("CM4J_TUNING");
  CHECK(b, "backend with CM4J_TUNING=%s: %s", tuning, error.c_str());
  return b;
}

// The conv of case k on `be` for its first `images` images (the inputs are made for k.batch
// images, so image 0's are the same at every count); the output as fp32 NCHW.
std::vector<float> run_case(Backend* be, const Case& k, size_t act_bytes, int images) {
  g_rng.seed(7);  // the same inputs on every backend
  const ActShape full_out{k.batch, k.c_out, conv_params(k).h_out(), conv_params(k).w_out()};
  const int fan_in = (k.c1 + k.c2) * k.kernel * k.kernel;
  auto wt = uniform(static_cast<size_t>(k.c_out) * fan_in, -1.0f / std::sqrt(fan_in),
                    1.0f / std::sqrt(fan_in));
  auto s1 = randn(static_cast<size_t>(k.batch) * k.c1 * k.h * k.w);
  auto s2 = randn(static_cast<size_t>(k.batch) * k.c2 * k.h * k.w);
  auto bias = randn(k.c_out, 0.1f);
  auto res = randn(full_out.numel());
  Case at = k;
  at.batch = images;
  const ConvParams p = conv_params(at);
  const ActShape out_shape{images, k.c_out, p.h_out(), p.w_out()};
  s1.resize(static_cast<size_t>(images) * k.c1 * k.h * k.w);
  s2.resize(static_cast<size_t>(images) * k.c2 * k.h * k.w);
  res.resize(out_shape.numel());
  std::unique_ptr<Weight> weight;
  Status s = be->prepare_conv(wt.data(), k.c_out, k.c1 + k.c2, k.kernel, &weight);
  Buf b1(be, ActShape{images, k.c1, k.h, k.w}, s1, act_bytes);
  std::unique_ptr<Buf> b2;
  if (k.c2) b2 = std::make_unique<Buf>(be, ActShape{images, k.c2, k.h, k.w}, s2, act_bytes);
  Buf bb(be, bias), dst(be, out_shape, act_bytes), br(be, out_shape, res, act_bytes);
  dst.poison();
  ConvArgs a;
  a.src1 = b1.p;
  a.src2 = b2 ? b2->p : nullptr;
  a.weight = weight.get();
  a.bias = bb.p;
  a.residual = k.residual ? br.p : nullptr;
  a.dst = dst.p;
  if (s.ok()) s = be->conv2d(p, a);
  if (s.ok()) s = be->synchronize();
  CHECK(s.ok(), "%s on %s: %s", k.name, be->name(), s.message.c_str());
  return dst.get();
}

// One conv of each case on `be`; the outputs as fp32 NCHW.
std::vector<std::vector<float>> run_cases(Backend* be, size_t act_bytes) {
  std::vector<std::vector<float>> outs;
  for (const Case& k : kCases) outs.push_back(run_case(be, k, act_bytes, k.batch));
  return outs;
}

bool identical(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (first_difference(a[i].data(), b[i].data(), a[i].size()) != -1) return false;
  return true;
}

// Each case's output within the dtype's bound of the CPU backend's.
void check_against_cpu(const char* what, const std::vector<std::vector<float>>& got,
                       const std::vector<std::vector<float>>& ref) {
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = rel_l2(got[i].data(), ref[i].data(), ref[i].size());
    std::printf("  %-28s %s rel_l2 %.3e vs the cpu (bound %.1e)\n", kCases[i].name, what, e, g_bound);
    CHECK(e <= g_bound, "%s: %s conv rel_l2 %.3e > %.1e", kCases[i].name, what, e, g_bound);
  }
}

// A backend with CM4J_TUNING=cached reading the file a full run wrote: nothing timed, the
// full run's choices and bits.
void check_cached(const char* what, const Chosen& tuned, const std::vector<std::vector<float>>& full) {
  g_timings = 0;
  std::vector<std::vector<float>> cached;
  if (auto b = gpu("cached")) cached = run_cases(b.get(), 2);
  CHECK(g_timings == 0 && g_chosen == tuned && identical(cached, full),
        "%s, cached: %d candidates timed, choices %s the file's, outputs %s the full run's", what,
        g_timings, g_chosen == tuned ? "equal" : "differ from",
        identical(cached, full) ? "equal" : "differ from");
}

// The tuning file of device 0 (wgmma: the one kept where the wgmma kernel is a candidate).
std::string cache_file(bool wgmma = false) {
  return tuning_cache_dir() + "/" + tuning_file_name(tuning_identity(0, wgmma));
}

TuningEntries read_cache(bool wgmma = false) {
  TuningEntries e;
  std::string error;
  CHECK(load_tuning_file(cache_file(wgmma), tuning_identity(0, wgmma), &e, &error) == TuningLoad::kLoaded,
        "cache file %s: %s", cache_file(wgmma).c_str(), error.c_str());
  return e;
}

void test_ops(const std::string& dir) {
  auto cpu = make_cpu_backend(0, CM4J_F32);
  const auto ref = run_cases(cpu.get(), sizeof(float));
  std::vector<std::vector<float>> off, full, cached;

  // A candidate that disagrees with the rule is dropped: mma 64 2 made wrong loses to WMMA.
  setenv("CM4J_TUNING_CACHE", (dir + "/dropped").c_str(), 1);
  hooks(cost, [](const ConvChoice& c, std::vector<float>* out) {
    if (c.kernel == ConvChoice::kCublas || (c.kernel == ConvChoice::kMma && c.splits == 2))
      (*out)[out->size() / 2] += 100.0f;
  });
  if (auto b = gpu("full")) run_cases(b.get(), 2);
  for (const auto& [shape, order] : read_cache().orders)
    CHECK(order.kernel == ConvChoice::kWmma, "%d>%d: %s chosen, a wrong candidate", shape.c_in1,
          shape.c_out, order.text().c_str());

  setenv("CM4J_TUNING_CACHE", dir.c_str(), 1);
  hooks();
  g_timings = 0;
  if (auto b = gpu("off")) off = run_cases(b.get(), 2);
  const Chosen rule = g_chosen;
  CHECK(g_timings == 0 && rule.size() == kCaseCount, "CM4J_TUNING=off: %d candidates timed, %zu shapes",
        g_timings, rule.size());
  g_timings = 0;
  if (auto b = gpu("full")) full = run_cases(b.get(), 2);
  const Chosen tuned = g_chosen;
  const TuningEntries entries = read_cache();
  CHECK(entries.orders.size() == kCaseCount && g_timings > 0, "full: %zu orders, %d candidates timed",
        entries.orders.size(), g_timings);
  for (const auto& [shape, order] : entries.orders)
    std::printf("  %s %d+%d>%d k%d %dx%d: %s\n", shape.dtype.c_str(), shape.c_in1, shape.c_in2,
                shape.c_out, shape.kernel, shape.h_in, shape.w_in, order.text().c_str());
  for (const auto& [at, tile] : entries.tiles)
    std::printf("  %s %d+%d>%d k%d %dx%d b%d: tile %s\n", at.first.dtype.c_str(), at.first.c_in1,
                at.first.c_in2, at.first.c_out, at.first.kernel, at.first.h_in, at.first.w_in,
                at.second, tile.text().c_str());
  for (const auto& [shape, order] : entries.orders) {
    const bool cublas = g_cublas && shape.kernel == 1;
    CHECK(cublas ? order.text() == "cublas 1" : (order.text() == "mma 2" || order.text() == "wmma 1"),
          "%d>%d k%d: %s, not the hook's choice", shape.c_in1, shape.c_out, shape.kernel,
          order.text().c_str());
  }
  for (const auto& [at, choice] : tuned)
    CHECK(choice == from_file(entries, at) && (choice.kernel != ConvChoice::kMma || choice.tile == ConvTile{64, 64}),
          "full: %d>%d b%d ran %s, the file says %s", at.first.c_in1, at.first.c_out, at.second,
          choice.text().c_str(), from_file(entries, at).text().c_str());
  check_against_cpu("tuned", full, ref);

  check_cached("tuned", tuned, full);

  std::FILE* f = std::fopen(cache_file().c_str(), "w");
  if (f) {
    std::fputs("cm4j-tuning 3\ngpu \x01\x02\norder fp16 -1 nonsense\n", f);
    std::fclose(f);
  }
  if (auto b = gpu("cached")) cached = run_cases(b.get(), 2);
  CHECK(ran_rule(rule) && identical(cached, off), "a garbage cache file: not the fixed rule");

  setenv("CM4J_TUNING", "sometimes", 1);
  std::string error;
  auto bad = make_cuda_backend_with(0, g_dtype, CudaKernels::kCandidate, &error);
  unsetenv("CM4J_TUNING");
  CHECK(!bad && error.find("CM4J_TUNING=sometimes") != std::string::npos, "a bad CM4J_TUNING: %s",
        error.c_str());
}

// Batch invariance: two shapes (a 3x3 conv whose rule takes 3 splits, a 1x1 conv taking 1)
// tuned at batch 3 and at batch 1. At batch 1 the hook's costs are cost()'s (cuBLAS, else
// mma 64x64 2); at batch 3 the 128-row tiles are cheaper (128x128 the cheapest), with 1
// split cheapest of all, so a choice made per batch would sum image 0 in another order at
// batch 3. The order must come from batch 1 (mma 2 or cuBLAS), only the tile from batch 3
// (mma 128x128 2: image 0 through the wide tile at batch 3 and the 64x64 one alone, the
// same bits).
const Case kBatchCases[] = {
    {"b3 64+32>32 8x8 k3 res", 3, 64, 32, 8, 8, 32, 3, 1, 1, false, true},
    {"b3 128>32 8x8 k1 res", 3, 128, 0, 8, 8, 32, 1, 1, 0, false, true},
};

double batch_cost(const ConvShape& s, int batch, const ConvChoice& c) {
  if (batch == 1) return cost(s, batch, c);
  ++g_timings;
  if (c.kernel == ConvChoice::kMma && c.tile.m == 128) {  // 128x128 cheapest, then 128x64
    const double wide = c.tile.n == 128 ? 0.5 : 1;
    return c.splits == 1 ? 0.25 * wide : c.splits == 2 ? 0.5 * wide : -1;
  }
  if (c.kernel == ConvChoice::kMma && c.tile.m == 64 && c.splits == 2) return 1;
  return c.kernel == ConvChoice::kWmma ? 2 : -1;
}

// Image 0 of each batch case at batch 3 and at batch 1 on a backend of `tuning`, first at
// the batch `first`; checks the choices and the bits, and returns image 0's outputs.
std::vector<std::vector<float>> batch_images(const char* tuning, int first) {
  std::vector<std::vector<float>> image0;
  auto b = gpu(tuning);
  if (!b) return image0;
  for (const Case& k : kBatchCases) {
    std::vector<float> out[2];
    for (int images : {first, 4 - first}) out[images == 3] = run_case(b.get(), k, 2, images);
    const ConvShape s = shape_of(k);
    const bool cublas = g_cublas && k.kernel == 1;
    const ConvChoice at1 = g_chosen[{s, 1}], at3 = g_chosen[{s, 3}];
    CHECK(cublas ? at1.text() == "cublas 1" && at3.text() == "cublas 1"
                 : at1.text() == "mma 64x64 2" && at3.text() == "mma 128x128 2",
          "%s (%s, batch %d first): ran %s at batch 1, %s at batch 3", k.name, tuning, first,
          at1.text().c_str(), at3.text().c_str());
    const int64_t d = first_difference(out[0].data(), out[1].data(), out[0].size());
    CHECK(d == -1, "%s (%s, batch %d first): image 0 differs batched and alone at %lld (%g, %g)",
          k.name, tuning, first, static_cast<long long>(d), d < 0 ? 0.0 : out[1][d],
          d < 0 ? 0.0 : out[0][d]);
    std::printf("  %-24s %s: batch 1 %s, batch 3 %s, image 0 %s\n", k.name, tuning,
                at1.text().c_str(), at3.text().c_str(), d == -1 ? "identical" : "DIFFERS");
    image0.push_back(out[0]);
  }
  return image0;
}

void test_batch_invariance(const std::string& dir) {
  hooks(batch_cost);
  setenv("CM4J_TUNING_CACHE", (dir + "/batch3-first").c_str(), 1);
  const auto tuned3 = batch_images("full", 3);
  const TuningEntries file3 = read_cache();
  g_timings = 0;
  const auto cached = batch_images("cached", 1);
  CHECK(g_timings == 0 && tuned3 == cached, "read back: %d timed, image 0 %s", g_timings,
        tuned3 == cached ? "identical" : "differs");
  setenv("CM4J_TUNING_CACHE", (dir + "/batch1-first").c_str(), 1);
  const auto tuned1 = batch_images("full", 1);
  CHECK(read_cache() == file3 && tuned1 == tuned3,
        "tuned at batch 1 first: %s file, image 0 %s", read_cache() == file3 ? "the same" : "another",
        tuned1 == tuned3 ? "identical" : "differs");
  // Another split count does change fp16 bits here, so a per-batch order would have been
  // seen: the rule's 3 splits against the tuned 2 (bf16's coarser rounding hides it at this
  // size).
  auto b = g_dtype == CM4J_F16 ? gpu("off") : nullptr;
  if (b) {
    const auto rule = run_case(b.get(), kBatchCases[0], 2, 1);
    CHECK(!tuned3.empty() && first_difference(rule.data(), tuned3[0].data(), rule.size()) != -1,
          "%s: 3 splits give the bits of 2", kBatchCases[0].name);
  }
  hooks();
}

// A fused group norm is a shape of its own: the same conv with a norm, and with norm + SiLU,
// looked up apart (cached mode, nothing run: the pointers need only be aligned). A cached
// order naming a kernel that refuses the norm (WMMA, cuBLAS) gives the rule. Four threads
// choose at once, each shape many times (the tuner's memo).
void test_norm_choice(const std::string& dir) {
  setenv("CM4J_TUNING_CACHE", (dir + "/norm").c_str(), 1);
  alignas(16) static float arena[16];
  kernels::Conv2dNhwcParams conv3;
  conv3.batch = 2;
  conv3.type = g_dtype == CM4J_BF16 ? kernels::HalfType::kBF16 : kernels::HalfType::kF16;
  conv3.c_in1 = 32;  // 9 k slices: the rule takes 1 split
  conv3.c_out = 64;
  conv3.h_in = conv3.w_in = conv3.h_out = conv3.w_out = 8;
  conv3.src1 = conv3.weight = conv3.dst = arena;
  kernels::Conv2dNhwcParams norm3 = conv3, silu3 = conv3, conv1 = conv3, norm1;
  norm3.norm = silu3.norm = arena;
  silu3.norm_silu = true;
  conv1.kernel = 1;
  conv1.pad = 0;
  norm1 = conv1;
  norm1.norm = arena;
  TuningEntries e;
  e.orders[conv_shape_of(conv3)] = {ConvChoice::kMma, 2};
  e.orders[conv_shape_of(norm3)] = {ConvChoice::kWmma, 1};
  e.orders[conv_shape_of(silu3)] = {ConvChoice::kMma, 3};
  e.orders[conv_shape_of(conv1)] = {ConvChoice::kCublas, 1};
  e.orders[conv_shape_of(norm1)] = {ConvChoice::kCublas, 1};
  std::string error;
  CHECK(e.orders.size() == 5 && write_tuning_file(cache_file(), tuning_identity(0), e, &error),
        "norm cache file: %zu orders, %s", e.orders.size(), error.c_str());
  const kernels::Conv2dNhwcParams convs[] = {conv3, norm3, silu3, conv1, norm1};
  auto mma = [](const kernels::Conv2dNhwcParams& p, int splits) {
    return ConvChoice{ConvChoice::kMma, {kernels::conv2d_nhwc_mma_tile_m(p), 64}, splits};
  };
  const ConvChoice want[] = {
      mma(conv3, 2),
      conv_rule(norm3),  // WMMA refuses the norm
      kernels::conv2d_nhwc_mma_supports(silu3) ? mma(silu3, 3) : conv_rule(silu3),
      g_cublas ? ConvChoice{ConvChoice::kCublas, {0, 0}, 1} : conv_rule(conv1),
      conv_rule(norm1),  // so does cuBLAS
  };
  CHECK(!(want[1] == want[0]), "the plain conv's order differs from the norm's rule");
  ConvTuner tuner(TuningMode::kCached, 0);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const int k = (i + t) % 5;
        if (!(tuner.choose(convs[k], nullptr, false) == want[k])) ++wrong;
      }
    });
  for (auto& t : threads) t.join();
  for (int k = 0; k < 5; ++k) {
    const ConvChoice got = tuner.choose(convs[k], nullptr, false);
    CHECK(got == want[k], "norm case %d: %s, expected %s", k, got.text().c_str(), want[k].text().c_str());
  }
  CHECK(wrong == 0, "%d choices made from several threads differ", wrong.load());
}

// CM4J_CUDA_WGMMA=on on a compute capability 9.0 card (the emulator reports 9.0), with the
// hook making the wgmma kernel with 1 split cheapest: full mode chooses it for every shape
// the mma kernel takes and writes "wgmma 1" (no tile) to a file of its own (the identity's
// version marked "+wgmma"), within the bound of the CPU; cached mode with the switch on gives
// the same bits; with it off, the file without the mark is read (none here: the rule), and
// where that file names the wgmma kernel (written by hand), the rule runs too. Without the
// switch (test_ops) it is never a candidate. A bad value is refused by name. On another card
// only that is checked.
void test_wgmma_choice(const std::string& dir) {
  setenv("CM4J_CUDA_WGMMA", "sometimes", 1);
  std::string error;
  auto bad = make_cuda_backend_with(0, g_dtype, CudaKernels::kCandidate, &error);
  unsetenv("CM4J_CUDA_WGMMA");
  CHECK(!bad && error.find("CM4J_CUDA_WGMMA=sometimes") != std::string::npos,
        "a bad CM4J_CUDA_WGMMA: %s", error.c_str());
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess ||
      !kernels::conv2d_nhwc_wgmma_device_ok(prop.major, prop.minor)) {
    std::printf("  the wgmma choice: skipped, the card is not compute capability 9.0\n");
    return;
  }
  setenv("CM4J_TUNING_CACHE", (dir + "/wgmma").c_str(), 1);
  auto cpu = make_cpu_backend(0, CM4J_F32);
  const auto ref = run_cases(cpu.get(), sizeof(float));
  hooks([](const ConvShape&, int, const ConvChoice& c) {
    ++g_timings;
    return c.kernel == ConvChoice::kWgmma && c.splits == 1 ? 0.5 : -1.0;
  });
  std::vector<std::vector<float>> off, full, cached_off;
  if (auto b = gpu("off")) off = run_cases(b.get(), 2);
  const Chosen rule = g_chosen;
  setenv("CM4J_CUDA_WGMMA", "on", 1);
  if (auto b = gpu("full")) full = run_cases(b.get(), 2);
  const Chosen tuned = g_chosen;
  const TuningEntries entries = read_cache(true);
  for (const auto& [shape, order] : entries.orders)
    CHECK(order.text() == "wgmma 1" && entries.tiles.empty(),
          "wgmma on: %d>%d k%d chose %s (%zu tiles written)", shape.c_in1, shape.c_out,
          shape.kernel, order.text().c_str(), entries.tiles.size());
  for (const auto& [at, choice] : tuned)
    CHECK(choice.text() == "wgmma 128x128 1", "wgmma on: %d>%d b%d ran %s",
          at.first.c_in1, at.first.c_out, at.second, choice.text().c_str());
  check_against_cpu("wgmma", full, ref);
  check_cached("wgmma", tuned, full);
  unsetenv("CM4J_CUDA_WGMMA");
  CHECK(cache_file(true) != cache_file(false), "one file name with and without the wgmma kernel");
  if (auto b = gpu("cached")) cached_off = run_cases(b.get(), 2);
  CHECK(ran_rule(rule) && identical(cached_off, off) && read_cache(true) == entries,
        "wgmma off: %s, the wgmma file %s", ran_rule(rule) ? "the rule" : "not the rule",
        read_cache(true) == entries ? "unchanged" : "changed");
  std::string written;
  CHECK(write_tuning_file(cache_file(), tuning_identity(0), entries, &written),
        "the wgmma choices under the plain identity: %s", written.c_str());
  if (auto b = gpu("cached")) cached_off = run_cases(b.get(), 2);
  CHECK(ran_rule(rule) && identical(cached_off, off),
        "wgmma off, a file naming it: %s", ran_rule(rule) ? "the rule" : "not the rule");
}

// CM4J_CUBLAS_LIB names a missing library: a cache file choosing cuBLAS for the 1x1 convs
// runs the fixed rule (with a warning), with its bits, in cached mode; full mode measures
// those shapes again for the process, and leaves the file's choice as it was.
void test_cublas_missing(const std::string& dir) {
  setenv("CM4J_TUNING_CACHE", (dir + "/no-cublas").c_str(), 1);
  hooks();
  std::vector<std::vector<float>> off, cached, full;
  if (auto b = gpu("off")) off = run_cases(b.get(), 2);
  const Chosen rule = g_chosen;
  TuningEntries e;
  for (const Case& k : kCases)
    if (k.kernel == 1) e.orders[shape_of(k)] = {ConvChoice::kCublas, 1};
  std::string error;
  CHECK(e.orders.size() == 2 && write_tuning_file(cache_file(), tuning_identity(0), e, &error),
        "cache file: %s", error.c_str());
  g_timings = 0;
  if (auto b = gpu("cached")) cached = run_cases(b.get(), 2);
  CHECK(g_timings == 0 && ran_rule(rule) && identical(cached, off),
        "cached cuBLAS without cuBLAS: %d timed, choices %s, outputs %s the rule's", g_timings,
        ran_rule(rule) ? "the rule's" : "not the rule's", identical(cached, off) ? "equal" : "differ from");
  for (const auto& [at, choice] : g_chosen)
    CHECK(choice.kernel != ConvChoice::kCublas, "%d>%d ran cuBLAS", at.first.c_in1, at.first.c_out);
  // Full mode measures those shapes anew among what runs here (the hook's mma 2 or WMMA),
  // for this process alone: the file keeps its cuBLAS orders, and gains no tile for them,
  // at their batch or another (the 2-image 1x1 case again with 1 image).
  g_timings = 0;
  if (auto b = gpu("full")) {
    full = run_cases(b.get(), 2);
    run_case(b.get(), kCases[kCaseCount - 1], 2, 1);
  }
  const TuningEntries after = read_cache();
  for (size_t i = 0; i < kCaseCount; ++i) {
    if (kCases[i].kernel != 1) continue;
    const ConvShape shape = shape_of(kCases[i]);
    const auto chosen = g_chosen.find({shape, kCases[i].batch});
    const std::string text = chosen == g_chosen.end() ? "nothing" : chosen->second.text();
    CHECK(text == "mma 64x64 2" || text == "wmma 64x64 1", "%s, full mode: ran %s, not the hook's choice",
          kCases[i].name, text.c_str());
    auto order = after.orders.find(shape);
    CHECK(order != after.orders.end() && order->second.text() == "cublas 1",
          "%s, full mode: the file's order became %s", kCases[i].name,
          order == after.orders.end() ? "nothing" : order->second.text().c_str());
    for (const auto& [at, tile] : after.tiles)
      CHECK(!(at.first == shape), "%s, full mode: a tile for b%d written", kCases[i].name, at.second);
    const double e = rel_l2(full[i].data(), off[i].data(), off[i].size());
    CHECK(e <= g_bound, "%s, full mode: rel_l2 %.3e from the rule's > %.1e", kCases[i].name, e, g_bound);
  }
  CHECK(g_timings > 0, "full mode without cuBLAS: nothing measured");
}

// The tiny model's forward pass (batch 2) on an engine of `device` with CM4J_TUNING=tuning
// (candidate kernels).
std::vector<float> tiny_forward(const std::string& config, const char* device, int dtype,
                                const char* tuning) {
  setenv("CM4J_TUNING", tuning, 1);
  setenv("CM4J_CUDA_KERNELS", "candidate", 1);
  cm4j_unet* u = nullptr;
  bool ok = cm4j_unet_create(config.c_str(), device, dtype, &u) == CM4J_OK &&
            cm4j_unet_bind_synth(u, 5) == CM4J_OK && cm4j_unet_finalize(u) == CM4J_OK;
  unsetenv("CM4J_TUNING");
  unsetenv("CM4J_CUDA_KERNELS");
  const int batch = 2, s = ok ? cm4j_unet_sample_size(u) : 0, c = ok ? cm4j_unet_in_channels(u) : 0;
  std::vector<float> sample(static_cast<size_t>(batch) * c * s * s), out(sample.size());
  for (size_t i = 0; i < sample.size(); ++i) sample[i] = static_cast<float>(i % 23) / 11.0f - 1.0f;
  const float t[2] = {4.0f, 700.0f};
  const int64_t labels[2] = {3, 990};
  // Three passes: with CUDA graphs (on in the candidate set) the first runs plainly and
  // measures, the second is captured (no measuring there), the third replays.
  std::vector<float> first(out.size());
  ok = ok && cm4j_unet_forward(u, batch, sample.data(), t, labels, first.data()) == CM4J_OK;
  for (int pass = 1; ok && pass < 3; ++pass) {
    ok = cm4j_unet_forward(u, batch, sample.data(), t, labels, out.data()) == CM4J_OK;
    CHECK(first_difference(first.data(), out.data(), out.size()) == -1,
          "tiny on %s with CM4J_TUNING=%s: pass %d differs from the first", device, tuning, pass + 1);
  }
  CHECK(ok, "tiny on %s with CM4J_TUNING=%s: %s", device, tuning, cm4j_last_error());
  cm4j_unet_destroy(u);
  return out;
}

// wgmma: with CM4J_CUDA_WGMMA=on and the hook making the wgmma kernel (1 split) cheapest,
// so that every conv the mma kernel takes runs it (on a compute capability 9.0 card).
void test_golden(const std::string& dir, bool wgmma) {
  const std::string config = read_text(golden_dir() + "/tiny/pipeline/unet/config.json");
  CHECK(!config.empty(), "no tiny config under %s", golden_dir().c_str());
  if (config.empty()) return;
  const char* what = wgmma ? "tiny with wgmma" : "tiny";
  setenv("CM4J_TUNING_CACHE", (dir + (wgmma ? "/engine-wgmma" : "/engine")).c_str(), 1);
  if (wgmma) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess ||
        !kernels::conv2d_nhwc_wgmma_device_ok(prop.major, prop.minor)) {
      std::printf("  %s: skipped, the card is not compute capability 9.0\n", what);
      return;
    }
    setenv("CM4J_CUDA_WGMMA", "on", 1);
    hooks([](const ConvShape& s, int batch, const ConvChoice& c) {
      return c.kernel == ConvChoice::kWgmma ? (c.splits == 1 ? 0.25 : -1.0) : cost(s, batch, c);
    });
  } else {
    hooks();
  }
  g_timings = 0;
  g_chosen.clear();
  const auto full = tiny_forward(config, "cuda", g_dtype, "full");
  const TuningEntries written = read_cache(wgmma);
  const size_t entries = written.orders.size();
  CHECK(entries > 0 && g_timings > 0, "%s, full: %zu orders, %d candidates timed", what, entries, g_timings);
  const Chosen tuned = g_chosen;
  for (const auto& [at, choice] : tuned)
    CHECK(!wgmma || !written.orders.count(at.first) || choice.text() == "wgmma 128x128 1",
          "%s: %d>%d ran %s", what, at.first.c_in1, at.first.c_out, choice.text().c_str());
  g_timings = 0;
  g_chosen.clear();
  const auto cached = tiny_forward(config, "cuda", g_dtype, "cached");
  for (const auto& [at, choice] : tuned) {
    auto it = g_chosen.find(at);
    const bool rule_shape = !written.orders.count(at.first);  // WMMA alone: nothing to measure
    CHECK(it != g_chosen.end() && it->second == choice && (rule_shape || choice == from_file(written, at)),
          "%s, cached: %d>%d ran %s, the full run %s, the file says %s", what, at.first.c_in1,
          at.first.c_out, it == g_chosen.end() ? "nothing" : it->second.text().c_str(),
          choice.text().c_str(), from_file(written, at).text().c_str());
  }
  CHECK(g_timings == 0 && first_difference(full.data(), cached.data(), full.size()) == -1,
        "%s, cached: %d timed, output %s", what, g_timings,
        first_difference(full.data(), cached.data(), full.size()) == -1 ? "identical" : "differs");
  const auto cpu = tiny_forward(config, "cpu", CM4J_F32, "off");
  const double e = rel_l2(full.data(), cpu.data(), cpu.size());
  const double bound = g_dtype == CM4J_BF16 ? 6e-2 : 2e-2;  // the golden README's
  std::printf("  %s forward: %zu shapes tuned, cached identical, rel_l2 %.3e vs the cpu (bound %.0e)\n",
              what, entries, e, bound);
  CHECK(e <= bound, "%s tuned rel_l2 %.3e > %.0e", what, e, bound);
  unsetenv("CM4J_CUDA_WGMMA");
}

}  // namespace

int main(int argc, char** argv) {
  bool golden = false, cublas_missing = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--dtype=bf16") == 0) g_dtype = CM4J_BF16, g_bound = 1.5e-2;
    else if (std::strcmp(argv[i], "--golden") == 0) golden = true;
    else if (std::strcmp(argv[i], "--cublas-missing") == 0) cublas_missing = true;
    else if (std::strcmp(argv[i], "--dtype=fp16") != 0) {
      std::fprintf(stderr, "usage: %s [--dtype=fp16|bf16] [--golden] [--cublas-missing]\n", argv[0]);
      return 2;
    }
  }
  std::string why;
  if (cuda_device_count(&why) == 0) {
    std::printf("test_cuda_tuning: skipped: %s\n", why.c_str());
    return 77;
  }
  {
    std::unique_ptr<CublasGemm> cublas(CublasGemm::open(&why));
    g_cublas = cublas != nullptr;
    const char* lib = std::getenv("CM4J_CUBLAS_LIB");
    std::printf("cuBLAS: %s\n", g_cublas ? "loaded" : why.c_str());
    if (cublas_missing)
      CHECK(!g_cublas && lib && *lib, "--cublas-missing needs CM4J_CUBLAS_LIB naming a missing library");
    else
      CHECK(g_cublas || !lib || !*lib, "CM4J_CUBLAS_LIB=%s does not load: %s", lib, why.c_str());
  }
  char tmpl[] = "/tmp/cm4j-tuning-XXXXXX";
  const std::string dir = mkdtemp(tmpl) ? tmpl : "";
  CHECK(!dir.empty(), "mkdtemp");
  if (dir.empty()) return 1;
  if (cublas_missing) {
    test_cublas_missing(dir);
  } else {
    test_ops(dir);
    test_batch_invariance(dir);
    test_norm_choice(dir);
    test_wgmma_choice(dir);
    if (golden) {
      test_golden(dir, false);
      test_golden(dir, true);
    }
  }
  conv_tuner_test::set_hooks(nullptr, nullptr, nullptr);
  std::system(("rm -rf '" + dir + "'").c_str());
  std::printf("test_cuda_tuning (%s): %s\n", g_dtype == CM4J_BF16 ? "bf16" : "fp16",
              failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}
#else
int main() {
  std::printf("test_cuda_tuning: skipped: built without CUDA\n");
  return 77;
}
#endif

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
//   - a bad CM4J_TUNING is refused by name;
//   - with --golden, the tiny model's forward pass the same way through the engine (full,
//     then cached: the file's choices, identical outputs, within the golden bound of the
//     CPU), three passes each: measured in the plain first pass, never in the CUDA graph
//     capture of the second, the same bits in all three.
// Where cuBLAS loads (the emulator's stand-in through CM4J_CUBLAS_LIB, which then must load,
// or a GPU's libcublas), the 1x1 convs must choose it (the hook makes it cheapest) and stay
// within the bound.
// Skips (77) without a CUDA device. Options: --dtype=fp16|bf16 (default fp16), --golden.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "cm4j.h"
#include "cuda_test_util.h"
#include "test_util.h"
#ifdef CM4J_HAVE_CUDA
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
TuningEntries g_chosen;  // the last choice per shape, as the tuner reports it

void hooks(std::function<void(const ConvChoice&, std::vector<float>*)> alter = nullptr);

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
double cost(const ConvShape&, const ConvChoice& c) {
  ++g_timings;
  if (c.kernel == ConvChoice::kCublas) return 0.5;
  if (c.kernel == ConvChoice::kMma && c.tile_m == 64 && c.splits == 2) return 1;
  return c.kernel == ConvChoice::kWmma ? 2 : -1;
}

bool g_cublas = false;  // whether cuBLAS loads, so that the 1x1 convs choose it

void hooks(std::function<void(const ConvChoice&, std::vector<float>*)> alter) {
  conv_tuner_test::set_hooks(cost, std::move(alter), [](const ConvShape& s, const ConvChoice& c) {
    g_chosen[s] = c;
  });
}

// Whether every shape ran the rule (CM4J_TUNING=off's choices).
bool ran_rule(const TuningEntries& rule) { return g_chosen == rule; }

std::unique_ptr<Backend> gpu(const char* tuning) {
  g_chosen.clear();
  setenv("CM4J_TUNING", tuning, 1);
  std::string error;
  auto b = make_cuda_backend_with(0, g_dtype, CudaKernels::kCandidate, &error);
  unsetenv("CM4J_TUNING");
  CHECK(b, "backend with CM4J_TUNING=%s: %s", tuning, error.c_str());
  return b;
}

// One conv of each case on `be`; the outputs as fp32 NCHW.
std::vector<std::vector<float>> run_cases(Backend* be, size_t act_bytes) {
  std::vector<std::vector<float>> outs;
  g_rng.seed(7);  // the same inputs on every backend
  for (const Case& k : kCases) {
    const ConvParams p = conv_params(k);
    const ActShape out_shape{k.batch, k.c_out, p.h_out(), p.w_out()};
    const int fan_in = (k.c1 + k.c2) * k.kernel * k.kernel;
    auto wt = uniform(static_cast<size_t>(k.c_out) * fan_in, -1.0f / std::sqrt(fan_in),
                      1.0f / std::sqrt(fan_in));
    auto s1 = randn(static_cast<size_t>(k.batch) * k.c1 * k.h * k.w);
    auto s2 = randn(static_cast<size_t>(k.batch) * k.c2 * k.h * k.w);
    auto bias = randn(k.c_out, 0.1f);
    auto res = randn(out_shape.numel());
    std::unique_ptr<Weight> weight;
    Status s = be->prepare_conv(wt.data(), k.c_out, k.c1 + k.c2, k.kernel, &weight);
    Buf b1(be, ActShape{k.batch, k.c1, k.h, k.w}, s1, act_bytes);
    std::unique_ptr<Buf> b2;
    if (k.c2) b2 = std::make_unique<Buf>(be, ActShape{k.batch, k.c2, k.h, k.w}, s2, act_bytes);
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
    outs.push_back(dst.get());
  }
  return outs;
}

bool identical(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (first_difference(a[i].data(), b[i].data(), a[i].size()) != -1) return false;
  return true;
}

std::string cache_file() { return tuning_cache_dir() + "/" + tuning_file_name(tuning_identity(0)); }

TuningEntries read_cache() {
  TuningEntries e;
  std::string error;
  CHECK(load_tuning_file(cache_file(), tuning_identity(0), &e, &error) == TuningLoad::kLoaded,
        "cache file %s: %s", cache_file().c_str(), error.c_str());
  return e;
}

void test_ops(const std::string& dir) {
  auto cpu = make_cpu_backend(0, CM4J_F32);
  const auto ref = run_cases(cpu.get(), sizeof(float));
  std::vector<std::vector<float>> off, full, cached;

  // A candidate that disagrees with the rule is dropped: mma 64 2 made wrong loses to WMMA.
  setenv("CM4J_TUNING_CACHE", (dir + "/dropped").c_str(), 1);
  hooks([](const ConvChoice& c, std::vector<float>* out) {
    if (c.kernel == ConvChoice::kCublas || (c.kernel == ConvChoice::kMma && c.splits == 2))
      (*out)[out->size() / 2] += 100.0f;
  });
  if (auto b = gpu("full")) run_cases(b.get(), 2);
  for (const auto& [shape, choice] : read_cache())
    CHECK(choice.kernel == ConvChoice::kWmma, "%d>%d: %s chosen, a wrong candidate", shape.c_in1,
          shape.c_out, choice.text().c_str());

  setenv("CM4J_TUNING_CACHE", dir.c_str(), 1);
  hooks();
  g_timings = 0;
  if (auto b = gpu("off")) off = run_cases(b.get(), 2);
  const TuningEntries rule = g_chosen;
  CHECK(g_timings == 0 && rule.size() == kCaseCount, "CM4J_TUNING=off: %d candidates timed, %zu shapes",
        g_timings, rule.size());
  g_timings = 0;
  if (auto b = gpu("full")) full = run_cases(b.get(), 2);
  const TuningEntries entries = read_cache();
  CHECK(entries.size() == kCaseCount && g_timings > 0, "full: %zu cache entries, %d candidates timed",
        entries.size(), g_timings);
  for (const auto& [shape, choice] : entries)
    std::printf("  %s %d+%d>%d k%d %dx%d b%d: %s\n", shape.dtype.c_str(), shape.c_in1, shape.c_in2,
                shape.c_out, shape.kernel, shape.h_in, shape.w_in, shape.batch, choice.text().c_str());
  for (const auto& [shape, choice] : entries) {
    const bool cublas = g_cublas && shape.kernel == 1;
    CHECK(cublas ? choice.text() == "cublas 0 1" : (choice.text() == "mma 64 2" || choice.text() == "wmma 64 1"),
          "%d>%d k%d: %s, not the hook's choice", shape.c_in1, shape.c_out, shape.kernel,
          choice.text().c_str());
  }
  CHECK(g_chosen == entries, "full: the choices run are not the ones written");
  for (size_t i = 0; i < full.size(); ++i) {
    const double e = rel_l2(full[i].data(), ref[i].data(), ref[i].size());
    std::printf("  %-28s tuned rel_l2 %.3e vs the cpu (bound %.1e)\n", kCases[i].name, e, g_bound);
    CHECK(e <= g_bound, "%s: tuned conv rel_l2 %.3e > %.1e", kCases[i].name, e, g_bound);
  }

  g_timings = 0;
  if (auto b = gpu("cached")) cached = run_cases(b.get(), 2);
  CHECK(g_timings == 0 && g_chosen == entries && identical(cached, full),
        "cached: %d candidates timed, choices %s the file's, outputs %s the full run's", g_timings,
        g_chosen == entries ? "equal" : "differ from", identical(cached, full) ? "equal" : "differ from");

  std::FILE* f = std::fopen(cache_file().c_str(), "w");
  if (f) {
    std::fputs("cm4j-tuning 1\ngpu \x01\x02\nconv fp16 1 -1 nonsense\n", f);
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

void test_golden(const std::string& dir) {
  const std::string config = read_text(golden_dir() + "/tiny/pipeline/unet/config.json");
  CHECK(!config.empty(), "no tiny config under %s", golden_dir().c_str());
  if (config.empty()) return;
  setenv("CM4J_TUNING_CACHE", (dir + "/engine").c_str(), 1);
  hooks();
  g_timings = 0;
  g_chosen.clear();
  const auto full = tiny_forward(config, "cuda", g_dtype, "full");
  const TuningEntries written = read_cache();
  const size_t entries = written.size();
  CHECK(entries > 0 && g_timings > 0, "tiny, full: %zu entries, %d candidates timed", entries, g_timings);
  g_timings = 0;
  g_chosen.clear();
  const auto cached = tiny_forward(config, "cuda", g_dtype, "cached");
  for (const auto& [shape, choice] : written) {
    auto it = g_chosen.find(shape);
    CHECK(it != g_chosen.end() && it->second == choice, "tiny, cached: %d>%d ran %s, the file says %s",
          shape.c_in1, shape.c_out, it == g_chosen.end() ? "nothing" : it->second.text().c_str(),
          choice.text().c_str());
  }
  CHECK(g_timings == 0 && first_difference(full.data(), cached.data(), full.size()) == -1,
        "tiny, cached: %d timed, output %s", g_timings,
        first_difference(full.data(), cached.data(), full.size()) == -1 ? "identical" : "differs");
  const auto cpu = tiny_forward(config, "cpu", CM4J_F32, "off");
  const double e = rel_l2(full.data(), cpu.data(), cpu.size());
  const double bound = g_dtype == CM4J_BF16 ? 6e-2 : 2e-2;  // the golden README's
  std::printf("  tiny forward: %zu shapes tuned, cached identical, rel_l2 %.3e vs the cpu (bound %.0e)\n",
              entries, e, bound);
  CHECK(e <= bound, "tiny tuned rel_l2 %.3e > %.0e", e, bound);
}

}  // namespace

int main(int argc, char** argv) {
  bool golden = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--dtype=bf16") == 0) g_dtype = CM4J_BF16, g_bound = 1.5e-2;
    else if (std::strcmp(argv[i], "--golden") == 0) golden = true;
    else if (std::strcmp(argv[i], "--dtype=fp16") != 0) {
      std::fprintf(stderr, "usage: %s [--dtype=fp16|bf16] [--golden]\n", argv[0]);
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
    CHECK(g_cublas || !lib || !*lib, "CM4J_CUBLAS_LIB=%s does not load: %s", lib, why.c_str());
  }
  char tmpl[] = "/tmp/cm4j-tuning-XXXXXX";
  const std::string dir = mkdtemp(tmpl) ? tmpl : "";
  CHECK(!dir.empty(), "mkdtemp");
  if (dir.empty()) return 1;
  test_ops(dir);
  if (golden) test_golden(dir);
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

// Group norms fused into the convs they feed (Backend::conv_fuses_norm), in whole UNets:
// the plan built for a backend against the plan built without fusion (no backend in
// GraphOptions) for tiny and lsun_mini with synth-v1 weights, batch 2, on every bf16 path
// this CPU has (CM4J_CPU_ISA), and on a CUDA device's NHWC mode (CM4J_CUDA_KERNELS=candidate,
// fp16 and bf16; the CPU emulator's build runs it, kernels/dev/emu/run.sh). Where the path
// fuses (avx512bf16, amx, CUDA NHWC) the outputs are bit for bit those of the unfused plan,
// and group norms write only their coefficients; on the generic path, in fp32 and with
// CM4J_CUDA_NORM_FUSION=off nothing fuses.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "cm4j.h"
#include "forwarding_backend.h"
#include "plan.h"
#include "synth_unet.h"
#include "test_util.h"
#include "unet_graph.h"

using namespace cm4j;
using namespace cm4j_test;

namespace {

// Forwards to a backend, counting the group norms that write coefficients for a conv
// instead of a normalized tensor.
class NormCounting : public ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;
  int coeff_norms = 0, plain_norms = 0;
  Status group_norm(const GroupNormParams& p, const GroupNormArgs& a) override {
    ++(a.coeffs ? coeff_norms : plain_norms);
    return ForwardingBackend::group_norm(p, a);
  }
};

struct Pass {
  std::vector<float> out;
  size_t arena_floats = 0;
  size_t ops = 0;
  int coeff_norms = 0, plain_norms = 0;
};

// One forward pass of the plan built with `opts` (fusing as opts.backend says).
bool forward(Backend* inner, const SynthUNet& m, const GraphOptions& opts, Pass* pass) {
  NormCounting counting(inner);
  Backend* backend = &counting;
  Plan plan;
  std::vector<ParamSpec> specs;
  std::vector<Tap> taps;
  Status s = build_unet(m.cfg, m.weights.get(), opts, &specs, &plan, &taps);
  CHECK(s.ok(), "plan: %s", s.message.c_str());
  if (!s.ok()) return false;
  float* arena = nullptr;
  s = backend->alloc(plan.arena_floats() * sizeof(float), &arena);
  CHECK(s.ok(), "arena: %s", s.message.c_str());
  if (!s.ok()) return false;
  const size_t pixels = static_cast<size_t>(opts.batch) * m.cfg.sample_size * m.cfg.sample_size;
  std::vector<float> sample(pixels * m.cfg.in_channels);
  for (size_t i = 0; i < sample.size(); ++i) sample[i] = static_cast<float>(i % 97) / 48.0f - 1.0f;
  std::vector<float> t = {40.0f, -120.0f};
  std::vector<int64_t> labels = {3, 145};
  pass->out.assign(pixels * m.cfg.out_channels, 0.0f);
  ExecContext ctx;
  ctx.backend = backend;
  ctx.arena = arena;
  ctx.offsets = &plan.offsets();
  ctx.sample = sample.data();
  ctx.timestep = t.data();
  ctx.class_labels = m.cfg.num_class_embeds > 0 ? labels.data() : nullptr;
  ctx.output = pass->out.data();
  ctx.taps = &taps;
  s = plan.run(ctx);
  CHECK(s.ok(), "forward: %s", s.message.c_str());
  backend->free(arena);
  pass->arena_floats = plan.arena_floats();
  pass->ops = plan.op_count();
  pass->coeff_norms = counting.coeff_norms;
  pass->plain_norms = counting.plain_norms;
  return s.ok();
}

// The plan with fusion (if the backend fuses) against the plan without.
void check(const std::string& model, Backend* backend, const std::string& label, bool expect_fusion) {
  SynthUNet m;
  if (!load_synth_unet(model, backend, 1, &m)) return;
  Pass plain, fused;
  if (!forward(backend, m, {2, false, nullptr}, &plain) ||
      !forward(backend, m, {2, false, backend}, &fused))
    return;
  const char* name = label.c_str();
  const size_t n = plain.out.size();
  const int64_t first = first_difference(fused.out.data(), plain.out.data(), n);
  std::printf("%-10s %-26s %d of %d group norms fused, arena %zu -> %zu floats, first differing "
              "output %lld of %zu\n", model.c_str(), name, fused.coeff_norms,
              fused.coeff_norms + fused.plain_norms, plain.arena_floats, fused.arena_floats,
              static_cast<long long>(first), n);
  CHECK(first < 0, "%s %s: the fused plan's output differs from the unfused one at %lld",
        model.c_str(), name, static_cast<long long>(first));
  CHECK(plain.coeff_norms == 0, "%s %s: a plan without fusion fused", model.c_str(), name);
  CHECK(fused.coeff_norms + fused.plain_norms == plain.plain_norms,
        "%s %s: fusing changed the number of group norms", model.c_str(), name);
  if (expect_fusion)  // every norm but those a pool or conv_out follows
    CHECK(fused.coeff_norms > 0 && fused.plain_norms <= fused.coeff_norms / 4,
          "%s %s: %d group norms fused, %d not", model.c_str(), name, fused.coeff_norms,
          fused.plain_norms);
  else
    CHECK(fused.coeff_norms == 0 && fused.arena_floats == plain.arena_floats,
          "%s %s: a path without fusion fused", model.c_str(), name);
  CHECK(fused.ops == plain.ops, "%s %s: fusing changed the op count (%zu, %zu)", model.c_str(),
        name, fused.ops, plain.ops);
}

}  // namespace

int main() {
  const struct {
    const char* isa;
    int dtype;
    bool fuses;
  } paths[] = {{"amx", CM4J_BF16, true},
               {"avx512bf16", CM4J_BF16, true},
               {"generic", CM4J_BF16, false},
               {"avx512", CM4J_F32, false}};
  for (const auto& path : paths) {
    setenv("CM4J_CPU_ISA", path.isa, 1);
    auto probe = make_cpu_backend(1, path.dtype);
    const std::string name = probe ? probe->name() : "";
    const std::string suffix = path.dtype == CM4J_BF16 ? std::string("-bf16-") + path.isa
                                                       : std::string("cpu-") + path.isa;
    if (name.size() < suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      std::printf("skip %s: this CPU lacks it (got %s)\n", path.isa, name.c_str());
      continue;
    }
    for (const char* model : {"tiny", "lsun_mini"})
      check(model, make_cpu_backend(2, path.dtype).get(), name, path.fuses);
  }
  unsetenv("CM4J_CPU_ISA");
  setenv("CM4J_CUDA_KERNELS", "candidate", 1);
  // The fixed rule's conv kernels: a tuning file (the user's cache) could time a fused conv,
  // a shape of its own, into another split count than its unfused twin.
  setenv("CM4J_TUNING", "off", 1);
  for (int dtype : {CM4J_F16, CM4J_BF16}) {
    std::string error;
    const std::string label = std::string("cuda-nhwc-") + (dtype == CM4J_F16 ? "fp16" : "bf16");
    auto cuda = make_cuda_backend(0, dtype, &error);
    if (!cuda) {
      std::printf("skip %s: %s\n", label.c_str(), error.c_str());
      continue;
    }
    for (const char* model : {"tiny", "lsun_mini"}) check(model, cuda.get(), label, true);
    // CM4J_CUDA_NORM_FUSION=off (to time one against the other): every norm a kernel of its
    // own; anything but on/off refused by name.
    setenv("CM4J_CUDA_NORM_FUSION", "off", 1);
    auto unfused = make_cuda_backend(0, dtype, &error);
    CHECK(unfused != nullptr, "%s with CM4J_CUDA_NORM_FUSION=off: %s", label.c_str(), error.c_str());
    if (unfused) check("tiny", unfused.get(), label + " fusion off", false);
    setenv("CM4J_CUDA_NORM_FUSION", "sometimes", 1);
    error.clear();
    CHECK(!make_cuda_backend(0, dtype, &error) &&
              error.find("CM4J_CUDA_NORM_FUSION=sometimes") != std::string::npos,
          "a bad CM4J_CUDA_NORM_FUSION: %s", error.c_str());
    unsetenv("CM4J_CUDA_NORM_FUSION");
  }
  unsetenv("CM4J_CUDA_KERNELS");
  unsetenv("CM4J_TUNING");
  std::printf(failures == 0 ? "PASS\n" : "FAILED: %d checks\n", failures);
  return failures == 0 ? 0 : 1;
}

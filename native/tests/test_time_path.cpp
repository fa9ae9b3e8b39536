// The time path's launches: the plan runs it as exactly two backend calls before conv_in,
// time_embedding (sinusoid, MLP and class embedding) and one linear for every resnet's
// time_emb_proj. On the CUDA backend with CM4J_CUDA_KERNELS=candidate each call is one
// kernel launch (plus the class labels' copy); the default set composes time_embedding from
// four launches. Checked on the plans of tiny, lsun_mini and imagenet64 (batch 2), and by
// counting the calls a CPU backend receives in whole forward passes of tiny and lsun_mini
// with synth-v1 weights. No GPU needed.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "cm4j.h"
#include "forwarding_backend.h"
#include "plan.h"
#include "synth_unet.h"
#include "test_util.h"
#include "unet_config.h"
#include "unet_graph.h"
#include "weights.h"

using namespace cm4j;
using namespace cm4j_test;

namespace {

// Forwards every call to `inner` and records the name of each compute call.
class CountingBackend : public ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;
  std::vector<std::string> calls;

 protected:
  Status compute(const char* name, std::function<Status()> call) override {
    calls.push_back(name);
    return call();
  }
};

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// The plan's ops between the inputs' upload and conv_in, and every op of the time path.
void check_plan(const std::string& model) {
  UNetConfig cfg;
  if (!load_unet_config(model, &cfg)) return;
  std::vector<ParamSpec> specs;
  Status s = build_unet(cfg, nullptr, {}, &specs, nullptr, nullptr);
  CHECK(s.ok(), "%s: declare: %s", model.c_str(), s.message.c_str());
  auto cpu = make_cpu_backend(1, CM4J_F32);
  WeightStore weights(cpu.get(), specs);  // nothing bound: the plan's structure is enough
  Plan plan;
  std::vector<ParamSpec> again;
  std::vector<Tap> taps;
  s = build_unet(cfg, &weights, {2, false}, &again, &plan, &taps);
  CHECK(s.ok(), "%s: plan: %s", model.c_str(), s.message.c_str());
  std::vector<std::string> before_conv_in, time_ops;
  bool inputs_seen = false, conv_in_seen = false;
  for (size_t i = 0; i < plan.op_count(); ++i) {
    const std::string& op = plan.op_name(i);
    if (op == "conv_in") conv_in_seen = true;
    if (inputs_seen && !conv_in_seen) before_conv_in.push_back(op);
    if (op == "inputs") inputs_seen = true;
    if (op.find("time_") != std::string::npos || op.find("class_emb") != std::string::npos)
      time_ops.push_back(op);
  }
  const std::vector<std::string> want = {"time_embedding", "time_emb_proj"};
  std::printf("%-10s plan: %zu ops; between inputs and conv_in: %s\n", model.c_str(),
              plan.op_count(), joined(before_conv_in).c_str());
  CHECK(before_conv_in == want, "%s: ops between inputs and conv_in: [%s], expected [%s]",
        model.c_str(), joined(before_conv_in).c_str(), joined(want).c_str());
  CHECK(time_ops == want, "%s: time-path ops in the plan: [%s], expected [%s]", model.c_str(),
        joined(time_ops).c_str(), joined(want).c_str());
}

// A whole forward pass with synth-v1 weights: the backend calls it makes.
void check_calls(const std::string& model) {
  auto cpu = make_cpu_backend(0, CM4J_F32);
  CountingBackend counting(cpu.get());
  SynthUNet net;
  if (!load_synth_unet(model, &counting, 1, &net)) return;
  const UNetConfig& cfg = net.cfg;

  const int batch = 2;
  Plan plan;
  std::vector<ParamSpec> again;
  std::vector<Tap> taps;
  Status s = build_unet(cfg, net.weights.get(), {batch, false}, &again, &plan, &taps);
  CHECK(s.ok(), "%s: plan: %s", model.c_str(), s.message.c_str());
  if (!s.ok()) return;
  float* arena = nullptr;
  s = counting.alloc(plan.arena_floats() * sizeof(float), &arena);
  CHECK(s.ok(), "%s: arena: %s", model.c_str(), s.message.c_str());
  if (!s.ok()) return;
  const size_t pixels = static_cast<size_t>(batch) * cfg.sample_size * cfg.sample_size;
  std::vector<float> sample(pixels * cfg.in_channels, 0.25f), out(pixels * cfg.out_channels);
  std::vector<float> t = {12.5f, -3.0f};
  std::vector<int64_t> labels = {1, 7};
  ExecContext ctx;
  ctx.backend = &counting;
  ctx.arena = arena;
  ctx.offsets = &plan.offsets();
  ctx.sample = sample.data();
  ctx.timestep = t.data();
  ctx.class_labels = cfg.num_class_embeds > 0 ? labels.data() : nullptr;
  ctx.output = out.data();
  ctx.taps = &taps;
  s = plan.run(ctx);
  CHECK(s.ok(), "%s: forward: %s", model.c_str(), s.message.c_str());
  counting.free(arena);

  std::vector<std::string> before_conv;
  int linear = 0, embeddings = 0, time_embedding = 0;
  bool conv_seen = false;
  for (const std::string& c : counting.calls) {
    if (c == "conv2d") conv_seen = true;
    if (!conv_seen) before_conv.push_back(c);
    linear += c == "linear";
    embeddings += c == "timestep_embedding" || c == "embedding_lookup";
    time_embedding += c == "time_embedding";
  }
  std::printf("%-10s forward: %zu backend calls; before the first conv: %s\n", model.c_str(),
              counting.calls.size(), joined(before_conv).c_str());
  const std::vector<std::string> want = {"time_embedding", "linear"};
  CHECK(before_conv == want, "%s: calls before the first conv: [%s], expected [%s]",
        model.c_str(), joined(before_conv).c_str(), joined(want).c_str());
  CHECK(linear == 1 && time_embedding == 1 && embeddings == 0,
        "%s: %d linear, %d time_embedding, %d other embedding calls in a forward; expected 1, 1, 0",
        model.c_str(), linear, time_embedding, embeddings);
}

}  // namespace

int main() {
  for (const char* model : {"tiny", "lsun_mini", "imagenet64"}) check_plan(model);
  for (const char* model : {"tiny", "lsun_mini"}) check_calls(model);
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}

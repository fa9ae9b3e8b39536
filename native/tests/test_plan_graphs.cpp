// PlanGraphs (plan_graphs.h) on the CPU: a backend that captures as a CUDA stream does
// (every call in the capturable ops recorded with its arguments' values, any copy or wait
// meanwhile refused) replays the tiny model's passes bit for bit as plain passes give them,
// with the inputs changed between passes; the sampling loop likewise; a plan with taps
// captures nothing; the cache stays bounded. The CUDA backend's capture is checked the
// same way by test_cuda_graphs (emulator and GPU).
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "cm4j.h"
#include "forwarding_backend.h"
#include "plan.h"
#include "plan_graphs.h"
#include "sample_loop.h"
#include "synth_unet.h"
#include "test_util.h"
#include "unet_graph.h"

using namespace cm4j;
using namespace cm4j_test;

namespace {

struct Recorded : CapturedWork {
  std::vector<std::function<Status()>> calls;
};

// Runs every call on `inner`, except while capturing: then compute calls are recorded
// (arguments by value) and copies, allocations and waits fail, as in a CUDA stream capture.
class RecordingBackend : public ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;
  size_t recorded = 0, replayed = 0;

  const char* name() const override { return "recording"; }
  Status alloc(size_t bytes, float** out) override {
    return refused("alloc") ? refusal() : inner_->alloc(bytes, out);
  }
  Status upload(float* dst, const float* src, size_t count) override {
    return refused("upload") ? refusal() : inner_->upload(dst, src, count);
  }
  Status download(float* dst, const float* src, size_t count) override {
    return refused("download") ? refusal() : inner_->download(dst, src, count);
  }
  Status synchronize() override {
    return refused("synchronize") ? refusal() : inner_->synchronize();
  }

  bool can_capture() const override { return true; }
  Status capture(const std::function<Status()>& work, std::unique_ptr<CapturedWork>* out) override {
    auto rec = std::make_unique<Recorded>();
    recording_ = rec.get();
    refused_ = nullptr;
    Status s = work();
    recording_ = nullptr;
    if (s.ok() && refused_) s = {CM4J_ERR_INTERNAL, std::string(refused_) + " while capturing"};
    if (!s.ok()) return s;
    recorded += rec->calls.size();
    *out = std::move(rec);
    return Status::Ok();
  }
  Status replay(const CapturedWork& work) override {
    for (const auto& call : static_cast<const Recorded&>(work).calls) {
      Status s = call();
      if (!s.ok()) return s;
      ++replayed;
    }
    return Status::Ok();
  }

 private:
  Status compute(const char* /*name*/, std::function<Status()> call) override {
    if (!recording_) return call();
    recording_->calls.push_back(std::move(call));
    return Status::Ok();
  }
  bool refused(const char* what) {
    if (recording_ && !refused_) refused_ = what;
    return recording_ != nullptr;
  }
  static Status refusal() { return {CM4J_ERR_INTERNAL, "not permitted while capturing"}; }

  Recorded* recording_ = nullptr;
  const char* refused_ = nullptr;
};

struct Model {
  std::unique_ptr<Backend> cpu;
  std::unique_ptr<RecordingBackend> rec;
  SynthUNet net;  // last: its weights go before the backends they live on
};

bool open_tiny(Model* m) {
  m->cpu = make_cpu_backend(1, CM4J_F32);
  m->rec = std::make_unique<RecordingBackend>(m->cpu.get());
  return load_synth_unet("tiny", m->rec.get(), 2, &m->net);
}

// Five forward passes with new inputs each: graphs (plain, capture, three replays) against
// plain plan runs on the same arena.
void forward_passes(Model& m, bool taps) {
  const int batch = 2;
  Plan plan;
  std::vector<ParamSpec> specs;
  std::vector<Tap> tap_list;
  Status s = build_unet(m.net.cfg, m.net.weights.get(), {batch, taps}, &specs, &plan, &tap_list);
  CHECK(s.ok(), "plan: %s", s.message.c_str());
  const auto [first, last] = plan.capturable();
  CHECK(taps ? first == last : last > first + 20, "capturable ops [%zu, %zu) of %zu", first,
        last, plan.op_count());
  float* arena = nullptr;
  if (s.ok()) s = m.rec->alloc(plan.arena_floats() * sizeof(float), &arena);
  if (!s.ok()) return;
  const size_t image = static_cast<size_t>(m.net.cfg.in_channels) * m.net.cfg.sample_size * m.net.cfg.sample_size;
  std::vector<float> sample(batch * image), via_graphs(batch * image), plain(batch * image);
  PlanGraphs graphs;
  const size_t recorded_before = m.rec->recorded;
  // Each pass's host inputs at their own addresses, all alive to the end: a replay that
  // read a host pointer of an earlier pass would see that pass's values.
  std::vector<std::vector<int64_t>> all_labels(5);
  std::vector<std::vector<float>> all_t(5);
  for (int pass = 0; pass < 5; ++pass) {
    for (size_t i = 0; i < sample.size(); ++i) sample[i] = static_cast<float>((i * (pass + 3)) % 17) / 8.0f - 1.0f;
    std::vector<float>& t = all_t[pass] = {3.0f + 100 * pass, 900.0f - 50 * pass};
    std::vector<int64_t>& labels = all_labels[pass] = {pass, 999 - pass};
    ExecContext ctx;
    ctx.backend = m.rec.get();
    ctx.arena = arena;
    ctx.offsets = &plan.offsets();
    ctx.sample = sample.data();
    ctx.timestep = t.data();
    ctx.class_labels = labels.data();
    ctx.taps = &tap_list;
    ctx.output = via_graphs.data();
    s = graphs.run(plan, ctx);
    CHECK(s.ok(), "pass %d via graphs: %s", pass, s.message.c_str());
    ctx.backend = m.cpu.get();
    ctx.output = plain.data();
    s = plan.run(ctx);
    CHECK(s.ok(), "pass %d plain: %s", pass, s.message.c_str());
    const int64_t d = first_difference(via_graphs.data(), plain.data(), plain.size());
    CHECK(d == -1, "%s pass %d: graphs differ from a plain pass at %lld", taps ? "taps" : "forward",
          pass, static_cast<long long>(d));
  }
  const size_t captures = taps ? 0 : 1, replays = taps ? 0 : 3;
  CHECK(graphs.captures() == captures && graphs.replays() == replays,
        "%s: %zu captures, %zu replays; expected %zu and %zu", taps ? "taps" : "forward",
        graphs.captures(), graphs.replays(), captures, replays);
  CHECK(taps || m.rec->recorded - recorded_before >= last - first,
        "recorded %zu calls for %zu ops", m.rec->recorded - recorded_before, last - first);
  std::printf("%s: %zu ops captured once, %zu calls recorded, replayed 3 times\n",
              taps ? "with taps" : "forward", last - first, m.rec->recorded - recorded_before);

  // A new key per output buffer: the cache stays at kMaxEntries.
  if (!taps) {
    std::vector<float*> outs(PlanGraphs::kMaxEntries + 4, nullptr);
    for (float*& o : outs) {
      s = m.rec->alloc(batch * image * sizeof(float), &o);
      ExecContext ctx;
      ctx.backend = m.rec.get();
      ctx.arena = arena;
      ctx.offsets = &plan.offsets();
      ctx.sample = sample.data();
      std::vector<float> t = {1.0f, 2.0f};
      std::vector<int64_t> labels = {1, 2};
      ctx.timestep = t.data();
      ctx.class_labels = labels.data();
      ctx.external = {{plan.io().output, o}};
      if (s.ok()) s = graphs.run(plan, ctx);
      CHECK(s.ok(), "bounded cache: %s", s.message.c_str());
    }
    CHECK(graphs.size() == PlanGraphs::kMaxEntries, "cache holds %zu entries", graphs.size());
    for (float* o : outs) m.rec->free(o);
  }
  m.rec->free(arena);
}

// Three two-step sampling loops through graphs against the same loops run plainly.
void sampling_loops(Model& m) {
  const int batch = 2;
  Plan plan;
  std::vector<ParamSpec> specs;
  std::vector<Tap> taps;
  Status s = build_unet(m.net.cfg, m.net.weights.get(), {batch, false}, &specs, &plan, &taps);
  float* arena = nullptr;
  if (s.ok()) s = m.rec->alloc(plan.arena_floats() * sizeof(float), &arena);
  CHECK(s.ok(), "sampling plan: %s", s.message.c_str());
  if (!s.ok()) return;
  const int64_t image = static_cast<int64_t>(m.net.cfg.in_channels) * m.net.cfg.sample_size * m.net.cfg.sample_size;
  SampleTables tables = sample_tables({80.0f, 0.661f}, batch);
  std::vector<int64_t> labels = {3, 4};
  PlanGraphs graphs, plain_graphs;  // plain_graphs: on the CPU backend, which cannot capture
  LoopBuffers buffers(m.rec.get()), plain_buffers(m.cpu.get());
  for (int call = 0; call < 3; ++call) {
    std::vector<float> in(batch * image), noise(2 * batch * image), a(batch * image), b(batch * image);
    for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>((i * (7 + call)) % 13) / 6.0f - 1.0f;
    for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<float>((i * 5 + call) % 11) / 5.0f - 1.0f;
    SampleLoopArgs args;
    args.batch = batch;
    args.steps = 2;
    args.image = image;
    args.shape = {batch, m.net.cfg.in_channels, m.net.cfg.sample_size, m.net.cfg.sample_size};
    args.sample_in = in.data();
    args.timesteps = tables.timesteps.data();
    args.input_scale = tables.input_scale.data();
    args.c_skip = tables.c_skip.data();
    args.c_out = tables.c_out.data();
    args.noise_scale = tables.noise_scale.data();
    args.noise = noise.data();
    args.clip = true;
    ExecContext ctx;
    ctx.arena = arena;
    ctx.offsets = &plan.offsets();
    ctx.class_labels = labels.data();
    ctx.taps = &taps;
    ctx.backend = m.rec.get();
    args.sample_out = a.data();
    s = run_sample_loop(plan, graphs, buffers, ctx, args);
    CHECK(s.ok(), "loop %d via graphs: %s", call, s.message.c_str());
    ctx.backend = m.cpu.get();
    args.sample_out = b.data();
    s = run_sample_loop(plan, plain_graphs, plain_buffers, ctx, args);
    CHECK(s.ok(), "loop %d plain: %s", call, s.message.c_str());
    const int64_t d = first_difference(a.data(), b.data(), a.size());
    CHECK(d == -1, "sampling loop %d: graphs differ at %lld", call, static_cast<long long>(d));
  }
  CHECK(plain_graphs.captures() == 0, "the CPU backend captured");
  // The loop's buffers are the same in every call: call 1 captures each step, call 2 replays.
  CHECK(graphs.captures() == 2 && graphs.replays() == 2,
        "sampling loops: %zu captures, %zu replays; expected 2 and 2", graphs.captures(),
        graphs.replays());
  std::printf("sampling loops: %zu captures, %zu replays, identical to plain loops\n",
              graphs.captures(), graphs.replays());
  buffers.release();
  plain_buffers.release();
  m.rec->free(arena);
}

}  // namespace

int main() {
  Model m;
  if (!open_tiny(&m)) return 1;
  forward_passes(m, false);
  forward_passes(m, true);
  sampling_loops(m);
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}

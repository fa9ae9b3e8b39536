// CPU backend benchmark: GFLOP/s of conv2d at the imagenet64 UNet's shapes (batch 1 and
// 4) and of attention, for every ISA path the machine has; then, for the best path, an
// estimate of a whole forward pass from the time of each of the model's 137 convolutions,
// 22 attentions and group norms (the layer list below reproduces the model's 219.3
// GFLOP per image). Correctness lives in tests/test_cpu_ops.cpp; this only times.
//
//   bench_cpu_ops [--dtype fp32|bf16] [--isa PATH] [--threads N] [--no-model] [--quick] [--layers]
// PATH: avx512|avx2|generic for fp32, amx|avx512bf16|generic for bf16 (the backend's bf16
// mode). --layers prints every conv shape of the model estimate. Rates print as
// "wall (cpu)".
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "backend.h"
#include "cm4j.h"

using namespace cm4j;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double cpu_now() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

int g_threads = 1;  // the backend's pool size, for the CPU-time figure

// Wall seconds and CPU-time seconds (process CPU time / threads) of one call.
struct Timing {
  double wall = 1e30, cpu = 1e30;
};

// Best of several runs after a warm-up. The machine is shared, so next to the wall time
// the CPU time per thread is kept: it is what the run costs while it has the cores, and
// it stays comparable when other jobs take turns on them. It is a relative figure only:
// virtual machines may under-count CPU time (on the 2-core development VM a pure FMA
// loop shows ~1.4x its wall rate), so the wall figure is the one to quote.
Timing best_of(const std::function<void()>& fn, double budget_s) {
  fn();
  Timing best;
  double spent = 0;
  for (int i = 0; i < 10 && (i < 2 || spent < budget_s); ++i) {
    const double t0 = now(), c0 = cpu_now();
    fn();
    const double dt = now() - t0, dc = (cpu_now() - c0) / g_threads;
    best.wall = std::min(best.wall, dt);
    best.cpu = std::min(best.cpu, dc);
    spent += dt;
  }
  return best;
}

std::vector<float> filled(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

struct ConvShape {
  int c1, c2, c_out, side, kernel;  // side: output resolution
  bool upsample;
  bool operator<(const ConvShape& o) const {
    return std::tie(c1, c2, c_out, side, kernel, upsample) <
           std::tie(o.c1, o.c2, o.c_out, o.side, o.kernel, o.upsample);
  }
  double flops(int batch) const {
    return 2.0 * batch * (c1 + c2) * c_out * kernel * kernel * side * side;
  }
};

// Seconds for one conv2d call of this shape.
Timing time_conv(Backend& be, const ConvShape& s, int batch, double budget_s) {
  static std::mt19937 rng(7);
  const int in_side = s.upsample ? s.side / 2 : s.side;
  const int c_in = s.c1 + s.c2;
  auto w = filled(static_cast<size_t>(s.c_out) * c_in * s.kernel * s.kernel, rng);
  auto x1 = filled(static_cast<size_t>(batch) * s.c1 * in_side * in_side, rng);
  auto x2 = filled(static_cast<size_t>(batch) * s.c2 * in_side * in_side, rng);
  auto bias = filled(s.c_out, rng);
  auto bias_bc = filled(static_cast<size_t>(batch) * s.c_out, rng);
  std::vector<float> out(static_cast<size_t>(batch) * s.c_out * s.side * s.side);
  std::unique_ptr<Weight> weight;
  if (!be.prepare_conv(w.data(), s.c_out, c_in, s.kernel, &weight).ok()) return {};
  ConvParams p;
  p.batch = batch;
  p.c_in1 = s.c1;
  p.c_in2 = s.c2;
  p.h_in = p.w_in = in_side;
  p.c_out = s.c_out;
  p.kernel = s.kernel;
  p.pad = s.kernel / 2;
  p.upsample = s.upsample;
  ConvArgs a;
  a.src1 = x1.data();
  a.src2 = s.c2 ? x2.data() : nullptr;
  a.weight = weight.get();
  a.bias = bias.data();
  a.bias_bc = bias_bc.data();
  a.dst = out.data();
  return best_of([&] { be.conv2d(p, a); }, budget_s);
}

double attention_flops(int batch, int channels, int hw) { return 4.0 * batch * hw * hw * channels; }

Timing time_attention(Backend& be, int batch, int channels, int hw, double budget_s) {
  static std::mt19937 rng(8);
  auto qkv = filled(static_cast<size_t>(batch) * 3 * channels * hw, rng);
  std::vector<float> out(static_cast<size_t>(batch) * channels * hw);
  AttentionParams p;
  p.batch = batch;
  p.channels = channels;
  p.hw = hw;
  p.dim_head = 64;
  p.heads = channels / 64;
  p.scale = 0.125f;
  AttentionArgs a;
  a.qkv = qkv.data();
  a.out = out.data();
  return best_of([&] { be.attention(p, a); }, budget_s);
}

Timing time_group_norm(Backend& be, int batch, int channels, int hw, double budget_s) {
  static std::mt19937 rng(9);
  auto x = filled(static_cast<size_t>(batch) * channels * hw, rng);
  auto gamma = filled(channels, rng);
  auto mod = filled(static_cast<size_t>(batch) * 2 * channels, rng);
  GroupNormParams p;
  p.batch = batch;
  p.channels = channels;
  p.hw = hw;
  p.silu = true;
  GroupNormArgs a;
  a.x = x.data();
  a.y = x.data();
  a.gamma = gamma.data();
  a.beta = gamma.data();
  a.scale = mod.data();
  a.shift = mod.data() + channels;
  a.scale_stride = 2 * channels;
  return best_of([&] { be.group_norm(p, a); }, budget_s);
}

// The imagenet64 consistency-model UNet (block_out_channels 192/384/576/768, 3 layers per
// block, attention below 64x64, resnet down/upsamplers), layer by layer as diffusers
// builds it: its convs (concats as c1 + c2), attentions (channels, side) and group norms.
struct ModelLayers {
  std::vector<ConvShape> convs;
  std::vector<std::pair<int, int>> attentions, norms;  // (channels, side)
};

ModelLayers imagenet64() {
  ModelLayers m;
  const auto resnet = [&m](int c1, int c2, int c_out, int side, int out_side) {
    m.norms.push_back({c1 + c2, side});
    m.convs.push_back({c1, c2, c_out, out_side, 3, out_side > side});  // conv1
    m.norms.push_back({c_out, out_side});
    m.convs.push_back({c_out, 0, c_out, out_side, 3, false});  // conv2
    if (c1 + c2 != c_out) m.convs.push_back({c1, c2, c_out, out_side, 1, false});  // shortcut
  };
  const auto attention = [&m](int c, int side) {
    m.norms.push_back({c, side});
    m.convs.push_back({c, 0, 3 * c, side, 1, false});  // to_q, to_k, to_v
    m.attentions.push_back({c, side});
    m.convs.push_back({c, 0, c, side, 1, false});  // to_out
  };
  const int blocks[4] = {192, 384, 576, 768};
  m.convs.push_back({3, 0, 192, 64, 3, false});  // conv_in
  std::vector<int> skips = {192};
  int side = 64, prev = 192;
  for (int i = 0; i < 4; ++i) {
    for (int l = 0; l < 3; ++l) {
      resnet(prev, 0, blocks[i], side, side);
      prev = blocks[i];
      if (i > 0) attention(prev, side);
      skips.push_back(prev);
    }
    if (i < 3) {
      resnet(prev, 0, prev, side, side / 2);  // the downsampling resnet (avg pool inside)
      side /= 2;
      skips.push_back(prev);
    }
  }
  resnet(768, 0, 768, 8, 8);  // mid block
  attention(768, 8);
  resnet(768, 0, 768, 8, 8);
  for (int i = 3; i >= 0; --i) {
    for (int l = 0; l < 4; ++l) {
      const int skip = skips.back();
      skips.pop_back();
      resnet(prev, skip, blocks[i], side, side);
      prev = blocks[i];
      if (i > 0) attention(prev, side);
    }
    if (i > 0) {
      resnet(prev, 0, prev, side, side * 2);  // the upsampling resnet (conv1 reads 2x)
      side *= 2;
    }
  }
  m.norms.push_back({192, 64});
  m.convs.push_back({192, 0, 3, 64, 3, false});  // conv_out
  return m;
}

// "wall (cpu)" GFLOP/s: from the best wall time, and from the best CPU time per thread.
std::string rate(double flops, const Timing& t) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%6.1f (%6.1f)", flops / t.wall * 1e-9, flops / t.cpu * 1e-9);
  return buf;
}

void bench_shapes(Backend& be, bool quick) {
  // The shapes that carry most of the model's arithmetic (out side; concats as c1 + c2).
  const ConvShape shapes[] = {
      {192, 0, 192, 64, 3, false},   {192, 192, 192, 64, 3, false}, {384, 192, 192, 64, 3, false},
      {384, 0, 384, 64, 3, true},    {384, 0, 384, 32, 3, false},   {384, 384, 384, 32, 3, false},
      {576, 384, 384, 32, 3, false}, {576, 0, 576, 16, 3, false},   {1152, 576, 576, 16, 3, false},
      {768, 0, 768, 8, 3, false},    {768, 768, 768, 8, 3, false},  {384, 0, 1152, 32, 1, false},
  };
  const double budget = quick ? 0.05 : 0.3;
  std::printf("GFLOP/s, wall (cpu)                batch 1          batch 4\n");
  for (const auto& s : shapes) {
    char label[64];
    std::snprintf(label, sizeof label, "conv %d%s%s -> %d @ %dx%d k%d%s", s.c1, s.c2 ? "+" : "",
                  s.c2 ? std::to_string(s.c2).c_str() : "", s.c_out, s.side, s.side, s.kernel,
                  s.upsample ? " up" : "");
    std::printf("%-34s %s  %s\n", label, rate(s.flops(1), time_conv(be, s, 1, budget)).c_str(),
                rate(s.flops(4), time_conv(be, s, 4, budget)).c_str());
  }
  const int attn[3][2] = {{384, 32}, {576, 16}, {768, 8}};
  for (const auto& a : attn) {
    const int hw = a[1] * a[1];
    char label[64];
    std::snprintf(label, sizeof label, "attention %d ch %d heads hw %d", a[0], a[0] / 64, hw);
    std::printf("%-34s %s  %s\n", label,
                rate(attention_flops(1, a[0], hw), time_attention(be, 1, a[0], hw, budget)).c_str(),
                rate(attention_flops(4, a[0], hw), time_attention(be, 4, a[0], hw, budget)).c_str());
  }
}

void bench_model(Backend& be, int batch, bool per_layer) {
  const ModelLayers m = imagenet64();
  std::map<ConvShape, int> conv_count;
  for (const auto& c : m.convs) ++conv_count[c];
  std::map<std::pair<int, int>, int> attn_count, norm_count;
  for (const auto& a : m.attentions) ++attn_count[a];
  for (const auto& n : m.norms) ++norm_count[n];
  Timing conv, attn, norm;  // summed over the layers
  conv.wall = conv.cpu = attn.wall = attn.cpu = norm.wall = norm.cpu = 0;
  double conv_flops = 0, attn_flops = 0;
  const auto add = [](Timing& sum, const Timing& t, int count) {
    sum.wall += count * t.wall;
    sum.cpu += count * t.cpu;
  };
  for (const auto& [shape, count] : conv_count) {
    const Timing t = time_conv(be, shape, batch, 0.1);
    add(conv, t, count);
    conv_flops += count * shape.flops(batch);
    if (per_layer)
      std::printf("  %2d x conv %d+%d -> %d @ %dx%d k%d%s: %s GFLOP/s\n", count, shape.c1, shape.c2,
                  shape.c_out, shape.side, shape.side, shape.kernel, shape.upsample ? " up" : "",
                  rate(shape.flops(batch), t).c_str());
  }
  for (const auto& [a, count] : attn_count) {
    add(attn, time_attention(be, batch, a.first, a.second * a.second, 0.1), count);
    attn_flops += count * attention_flops(batch, a.first, a.second * a.second);
  }
  for (const auto& [n, count] : norm_count)
    add(norm, time_group_norm(be, batch, n.first, n.second * n.second, 0.05), count);
  const double wall = conv.wall + attn.wall + norm.wall, cpu = conv.cpu + attn.cpu + norm.cpu;
  std::printf("model estimate, batch %d (%.1f GFLOP/image):\n", batch, (conv_flops + attn_flops) / batch * 1e-9);
  std::printf("  %3zu convs        wall %6.2f s  cpu %6.2f s  GFLOP/s %s\n", m.convs.size(), conv.wall,
              conv.cpu, rate(conv_flops, conv).c_str());
  std::printf("  %3zu attentions   wall %6.2f s  cpu %6.2f s  GFLOP/s %s\n", m.attentions.size(),
              attn.wall, attn.cpu, rate(attn_flops, attn).c_str());
  std::printf("  %3zu group norms  wall %6.2f s  cpu %6.2f s\n", m.norms.size(), norm.wall, norm.cpu);
  std::printf("  total            wall %6.2f s  cpu %6.2f s  per image: wall %.2f s, cpu %.2f s\n", wall,
              cpu, wall / batch, cpu / batch);
}

}  // namespace

int main(int argc, char** argv) {
  std::string only_isa, dtype = "fp32";
  int threads = 0;
  bool model = true, quick = false, per_layer = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--isa") && i + 1 < argc) only_isa = argv[++i];
    else if (!std::strcmp(argv[i], "--dtype") && i + 1 < argc) dtype = argv[++i];
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--no-model")) model = false;
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--layers")) per_layer = true;
    else {
      std::fprintf(stderr, "usage: %s [--dtype fp32|bf16] [--isa PATH] [--threads N] [--no-model] [--quick] [--layers]\n",
                   argv[0]);
      return 2;
    }
  }
  if (dtype != "fp32" && dtype != "bf16") {
    std::fprintf(stderr, "bench_cpu_ops: --dtype takes fp32 or bf16, found '%s'\n", dtype.c_str());
    return 2;
  }
  const bool bf16 = dtype == "bf16";
  const std::vector<std::string> isas = bf16 ? std::vector<std::string>{"amx", "avx512bf16", "generic"}
                                             : std::vector<std::string>{"avx512", "avx2", "generic"};
  bool first = true;
  for (const std::string& isa : isas) {
    if (!only_isa.empty() && only_isa != isa) continue;
    setenv("CM4J_CPU_ISA", isa.c_str(), 1);
    auto be = make_cpu_backend(threads, bf16 ? CM4J_BF16 : CM4J_F32);
    const std::string name = be ? be->name() : "";
    const std::string want = bf16 ? "-bf16-" + isa : "cpu-" + isa;  // else the CPU lacks it
    if (name.size() < want.size() || name.compare(name.size() - want.size(), want.size(), want) != 0)
      continue;
    g_threads = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
    std::printf("== %s, %d threads\n", be->name(), g_threads);
    bench_shapes(*be, quick);
    // The whole-model estimate for the best path only: generic would take minutes.
    if (model && first) {
      bench_model(*be, 1, per_layer);
      bench_model(*be, 4, per_layer);
    }
    first = false;
  }
  return 0;
}

// Every CPU backend op against a naive double-precision reference, on every ISA path this
// machine has (forced through CM4J_CPU_ISA), the convs also with each Winograd variant
// (CM4J_CPU_CONV), at odd shapes that hit the blocking edges and
// at the real imagenet64 shapes. Outputs are NaN-poisoned before each run so an unwritten
// element fails. Large convs and attention are checked on a random sample of outputs (the
// full reference would take minutes); the whole output is still checked for NaN.
//
// Error measure: max |out - ref| / max |ref| over the checked elements, bound 1e-5 for
// every float32 op (observed: <= 1e-6, the K = 15552 conv included; 3e-6 for group norm of
// data with mean 100 and std 0.6, where float32 x - mean itself loses that much). Copies
// (upsample, lookup) must be exact. The double reference is exact to ~1e-15.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend.h"
#include "cm4j.h"
#include "cpu/gemm.h"
#include "cpu/winograd.h"

using namespace cm4j;

namespace {

int g_failures = 0;

std::vector<float> random_vector(size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<float> poisoned(size_t n) {
  return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN());
}

bool require_ok(const Status& st, const std::string& what) {
  if (st.ok()) return true;
  std::printf("FAIL %s: status %d %s\n", what.c_str(), st.code, st.message.c_str());
  ++g_failures;
  return false;
}

// Accumulates (out, ref) pairs and prints one line: max abs error, error / max |ref|.
class Check {
 public:
  Check(std::string name, double bound) : name_(std::move(name)), bound_(bound) {}
  void add(float out, double ref) {
    if (!std::isfinite(out)) ++non_finite_;
    max_abs_ = std::max(max_abs_, std::fabs(out - ref));
    max_ref_ = std::max(max_ref_, std::fabs(ref));
  }
  // Every element must have been written (no NaN left from the poison).
  void all_finite(const std::vector<float>& out) {
    for (float v : out)
      if (!std::isfinite(v)) ++non_finite_;
  }
  void report() {
    const double rel = max_abs_ / std::max(max_ref_, 1e-30);
    const bool ok = non_finite_ == 0 && rel <= bound_;
    std::printf("%s %-58s max_abs %.3e  rel %.3e (bound %.0e)%s\n", ok ? "ok  " : "FAIL", name_.c_str(),
                max_abs_, rel, bound_,
                non_finite_ ? ("  " + std::to_string(non_finite_) + " non-finite").c_str() : "");
    if (!ok) ++g_failures;
  }

 private:
  std::string name_;
  double bound_;
  double max_abs_ = 0, max_ref_ = 0;
  size_t non_finite_ = 0;
};

// ---------------------------------------------------------------- conv2d

struct ConvCase {
  const char* label;
  ConvParams p;
  bool bias, bias_bc, residual;
  int samples;  // 0: check every output element
  // bias_bc rows this far apart, the call reading columns bc_offset.. of each (one resnet's
  // slice of every time_emb_proj output); 0: dense [B, c_out] rows.
  int bc_stride = 0, bc_offset = 0;
};

double conv_ref_at(const ConvParams& p, const std::vector<float>& s1, const std::vector<float>& s2,
                   const std::vector<float>& w, const float* bias, const float* bias_bc,
                   const float* residual, int b, int co, int oy, int ox, int bc_stride = 0) {
  const int c_in = p.c_in1 + p.c_in2;
  const int hv = p.upsample ? 2 * p.h_in : p.h_in;
  const int wv = p.upsample ? 2 * p.w_in : p.w_in;
  double acc = 0;
  for (int c = 0; c < c_in; ++c)
    for (int ky = 0; ky < p.kernel; ++ky)
      for (int kx = 0; kx < p.kernel; ++kx) {
        const int iy = oy * p.stride + ky - p.pad;
        const int ix = ox * p.stride + kx - p.pad;
        if (iy < 0 || iy >= hv || ix < 0 || ix >= wv) continue;
        const int sy = p.upsample ? iy / 2 : iy;
        const int sx = p.upsample ? ix / 2 : ix;
        const double v =
            c < p.c_in1
                ? s1[((static_cast<size_t>(b) * p.c_in1 + c) * p.h_in + sy) * p.w_in + sx]
                : s2[((static_cast<size_t>(b) * p.c_in2 + c - p.c_in1) * p.h_in + sy) * p.w_in + sx];
        acc += v * w[((static_cast<size_t>(co) * c_in + c) * p.kernel + ky) * p.kernel + kx];
      }
  if (bias) acc += bias[co];
  if (bias_bc) acc += bias_bc[b * (bc_stride > 0 ? bc_stride : p.c_out) + co];
  const size_t at = ((static_cast<size_t>(b) * p.c_out + co) * p.h_out() + oy) * p.w_out() + ox;
  if (residual) acc += residual[at];
  return acc * p.out_scale;
}

void test_conv(Backend& be, const ConvCase& cc, std::mt19937& rng) {
  const ConvParams& p = cc.p;
  const int c_in = p.c_in1 + p.c_in2;
  const size_t out_n = static_cast<size_t>(p.batch) * p.c_out * p.h_out() * p.w_out();
  auto s1 = random_vector(static_cast<size_t>(p.batch) * p.c_in1 * p.h_in * p.w_in, rng);
  auto s2 = random_vector(static_cast<size_t>(p.batch) * p.c_in2 * p.h_in * p.w_in, rng);
  // Weights scaled like a trained layer's (~1/sqrt(fan_in)) keep outputs O(1).
  const float ws = 1.0f / std::sqrt(static_cast<float>(c_in * p.kernel * p.kernel));
  auto w = random_vector(static_cast<size_t>(p.c_out) * c_in * p.kernel * p.kernel, rng, -ws, ws);
  auto bias = random_vector(p.c_out, rng);
  const int bc_row = cc.bc_stride > 0 ? cc.bc_stride : p.c_out;
  auto bias_bc = random_vector(static_cast<size_t>(p.batch) * bc_row, rng);
  auto residual = random_vector(out_n, rng);
  auto out = poisoned(out_n);

  std::unique_ptr<Weight> weight;
  if (!require_ok(be.prepare_conv(w.data(), p.c_out, c_in, p.kernel, &weight), cc.label)) return;
  ConvArgs a;
  a.src1 = s1.data();
  a.src2 = p.c_in2 > 0 ? s2.data() : nullptr;
  a.weight = weight.get();
  a.bias = cc.bias ? bias.data() : nullptr;
  a.bias_bc = cc.bias_bc ? bias_bc.data() + cc.bc_offset : nullptr;
  a.bias_bc_stride = cc.bc_stride;
  a.residual = cc.residual ? residual.data() : nullptr;
  a.dst = out.data();
  if (!require_ok(be.conv2d(p, a), cc.label)) return;

  Check check(std::string("conv2d ") + cc.label, 1e-5);
  check.all_finite(out);
  const int ho = p.h_out(), wo = p.w_out();
  const auto at = [&](int b, int co, int oy, int ox) {
    const double ref =
        conv_ref_at(p, s1, s2, w, a.bias, a.bias_bc, a.residual, b, co, oy, ox, cc.bc_stride);
    check.add(out[((static_cast<size_t>(b) * p.c_out + co) * ho + oy) * wo + ox], ref);
  };
  if (cc.samples == 0) {
    for (int b = 0; b < p.batch; ++b)
      for (int co = 0; co < p.c_out; ++co)
        for (int oy = 0; oy < ho; ++oy)
          for (int ox = 0; ox < wo; ++ox) at(b, co, oy, ox);
  } else {
    // Corners and edges of the last image and channel, where padding and tiles end...
    at(p.batch - 1, p.c_out - 1, ho - 1, wo - 1);
    at(0, 0, 0, 0);
    at(p.batch - 1, p.c_out - 1, 0, wo - 1);
    // ...and a random sample of the rest.
    std::uniform_int_distribution<int> db(0, p.batch - 1), dc(0, p.c_out - 1), dy(0, ho - 1),
        dx(0, wo - 1);
    for (int i = 0; i < cc.samples; ++i) at(db(rng), dc(rng), dy(rng), dx(rng));
  }
  check.report();
}

ConvParams conv(int batch, int c1, int c2, int h, int w, int c_out, int kernel, int stride, int pad,
                bool upsample = false, float scale = 1.0f) {
  ConvParams p;
  p.batch = batch;
  p.c_in1 = c1;
  p.c_in2 = c2;
  p.h_in = h;
  p.w_in = w;
  p.c_out = c_out;
  p.kernel = kernel;
  p.stride = stride;
  p.pad = pad;
  p.upsample = upsample;
  p.out_scale = scale;
  return p;
}

void test_convs(Backend& be, std::mt19937& rng, bool large) {
  const ConvCase cases[] = {
      {"odd 5->7 9x11 k3 b2 +bias", conv(2, 5, 0, 9, 11, 7, 3, 1, 1), true, false, false, 0},
      {"concat 13+6->29 10x7 all epilogues b3", conv(3, 13, 6, 10, 7, 29, 3, 1, 1, false, 0.7f), true,
       true, true, 0},
      {"upsample 7+5->17 5x6->10x12 b2", conv(2, 7, 5, 5, 6, 17, 3, 1, 1, true), true, false, false, 0},
      {"stride2 9->12 13x10 k3 p1", conv(2, 9, 0, 13, 10, 12, 3, 2, 1), true, false, false, 0},
      {"stride2 8->8 8x8 k3 p0", conv(1, 8, 0, 8, 8, 8, 3, 2, 0), false, false, false, 0},
      {"k1 20->14 9x9 +residual*0.5", conv(2, 20, 0, 9, 9, 14, 1, 1, 0, false, 0.5f), true, false, true, 0},
      {"k1 concat 12+4->24 6x6 +bias_bc", conv(2, 12, 4, 6, 6, 24, 1, 1, 0), false, true, false, 0},
      {"bias_bc cols 9..26 of 40 b3", conv(3, 5, 0, 7, 6, 17, 3, 1, 1), true, true, false, 0, 40, 9},
      {"k1 upsample 6->10 3x5", conv(1, 6, 0, 3, 5, 10, 1, 1, 0, true), true, false, false, 0},
      {"hw=1 17->25 k3", conv(3, 17, 0, 1, 1, 25, 3, 1, 1), true, true, false, 0},
      {"conv_in 3->32 16x16", conv(2, 3, 0, 16, 16, 32, 3, 1, 1), true, false, false, 0},
      {"conv_out 32->3 16x16", conv(2, 32, 0, 16, 16, 3, 3, 1, 1), true, false, false, 0},
      {"tall (M split) 96->120 4x4", conv(1, 96, 0, 4, 4, 120, 3, 1, 1), true, true, true, 0},
      {"multi k-block 64+64->48 8x8", conv(2, 64, 64, 8, 8, 48, 3, 1, 1), true, true, true, 0},
      // Winograd edges: one channel in and out, tiles of one group straddling five images,
      // and more tiles than one chunk holds (F(4x4): 448 of 512, F(2x2): 1024 of 2048).
      {"1 channel 1->1 7x5 b2 all epilogues", conv(2, 1, 0, 7, 5, 1, 3, 1, 1, false, 0.5f), true,
       true, true, 0},
      {"6x6 tiles across images 3->5 b5", conv(5, 3, 0, 6, 6, 5, 3, 1, 1), true, true, false, 0},
      {"two chunks 64->64 64x64 b2", conv(2, 64, 0, 64, 64, 64, 3, 1, 1), true, true, true, 2000},
  };
  for (const auto& c : cases) test_conv(be, c, rng);
  if (!large) return;
  const ConvCase real[] = {
      {"real 384->384 32x32 b1 resnet epilogue", conv(1, 384, 0, 32, 32, 384, 3, 1, 1, false, 1.0f), true,
       true, true, 3000},
      {"real 1152+576->576 16x16 b1", conv(1, 1152, 576, 16, 16, 576, 3, 1, 1), true, false, false, 3000},
      {"real 768->768 8x8 upsample b2", conv(2, 768, 0, 8, 8, 768, 3, 1, 1, true), true, false, false, 3000},
      {"real 192->192 64x64 stride2 b2", conv(2, 192, 0, 64, 64, 192, 3, 2, 1), true, false, false, 3000},
      {"real 192+192->192 64x64 k1 b1", conv(1, 192, 192, 64, 64, 192, 1, 1, 0), true, false, true, 3000},
  };
  for (const auto& c : real) test_conv(be, c, rng);
}

// Under a forced Winograd mode a 3x3 weight carries its transformed form beside the direct
// one (so the cases above really ran through it); a 1x1 weight does not.
void test_winograd_weight(Backend& be, int tile) {
  std::vector<float> w(7 * 5 * 9, 0.1f);
  std::unique_ptr<Weight> k3, k1;
  const bool ok = be.prepare_conv(w.data(), 7, 5, 3, &k3).ok() && be.prepare_conv(w.data(), 7, 5, 1, &k1).ok();
  const size_t direct3 = cpu::packed_a_floats(7, 45) * sizeof(float);
  const size_t wino = cpu::winograd_weight_floats(tile, 7, 5) * sizeof(float);
  const bool pass = ok && k3->bytes() == direct3 + wino &&
                    k1->bytes() == cpu::packed_a_floats(7, 5) * sizeof(float);
  std::printf("%s F(%dx%d,3x3) weight: 3x3 %zu bytes (direct %zu + winograd %zu), 1x1 %zu\n",
              pass ? "ok  " : "FAIL", tile, tile, ok ? k3->bytes() : 0, direct3, wino,
              ok ? k1->bytes() : 0);
  if (!pass) ++g_failures;
}

// The per-layer rule's choice at load (winograd.cpp): F(4x4) up to 384 output channels,
// F(2x2) up to 576, none above, and none under 64 channels in or out.
void test_conv_rule(Backend& be) {
  const struct {
    int c_out, c_in, tile;
  } cases[] = {{384, 64, 4}, {385, 64, 2}, {576, 64, 2}, {577, 64, 0}, {384, 63, 0}, {63, 64, 0}};
  for (const auto& c : cases) {
    std::vector<float> w(static_cast<size_t>(c.c_out) * c.c_in * 9, 0.1f);
    std::unique_ptr<Weight> k3;
    const bool ok = be.prepare_conv(w.data(), c.c_out, c.c_in, 3, &k3).ok();
    const size_t expect = (cpu::packed_a_floats(c.c_out, c.c_in * 9) +
                           (c.tile ? cpu::winograd_weight_floats(c.tile, c.c_out, c.c_in) : 0)) *
                          sizeof(float);
    const bool pass = ok && k3->bytes() == expect;
    std::printf("%s per-layer rule: 3x3 [%d, %d] gets %s (%zu bytes)\n", pass ? "ok  " : "FAIL",
                c.c_out, c.c_in, c.tile == 4 ? "F(4x4)" : c.tile == 2 ? "F(2x2)" : "no Winograd form",
                ok ? k3->bytes() : 0);
    if (!pass) ++g_failures;
  }
}

// An image's output may not depend on what it is batched with (the server batches requests
// and promises each the bits it gets alone): a batch of 4 against each image alone, bitwise,
// with every epilogue. Under the per-layer rule, with 64 output channels 32x32 is F(4x4) and
// 16x16 direct (16 tiles an image, though the batch has 64); with 400, 16x16 is F(2x2) (64
// tiles an image) and 8x8 direct.
void test_batch_invariance(Backend& be, const char* label, int side, int c_out,
                           std::mt19937& rng) {
  const ConvParams p = conv(4, 48, 16, side, side, c_out, 3, 1, 1, false, 0.5f);
  const int c_in = p.c_in1 + p.c_in2, hw = p.h_in * p.w_in;
  auto s1 = random_vector(static_cast<size_t>(p.batch) * p.c_in1 * hw, rng);
  auto s2 = random_vector(static_cast<size_t>(p.batch) * p.c_in2 * hw, rng);
  auto w = random_vector(static_cast<size_t>(p.c_out) * c_in * 9, rng, -0.05f, 0.05f);
  auto bias = random_vector(p.c_out, rng);
  auto bias_bc = random_vector(static_cast<size_t>(p.batch) * p.c_out, rng);
  auto residual = random_vector(static_cast<size_t>(p.batch) * p.c_out * hw, rng);
  std::unique_ptr<Weight> weight;
  bool ok = be.prepare_conv(w.data(), p.c_out, c_in, 3, &weight).ok();
  const auto run = [&](int b0, int batch, float* dst) {
    ConvParams q = p;
    q.batch = batch;
    ConvArgs a;
    a.src1 = s1.data() + static_cast<size_t>(b0) * p.c_in1 * hw;
    a.src2 = s2.data() + static_cast<size_t>(b0) * p.c_in2 * hw;
    a.weight = weight.get();
    a.bias = bias.data();
    a.bias_bc = bias_bc.data() + static_cast<size_t>(b0) * p.c_out;
    a.residual = residual.data() + static_cast<size_t>(b0) * p.c_out * hw;
    a.dst = dst;
    return be.conv2d(q, a).ok();
  };
  const size_t image = static_cast<size_t>(p.c_out) * hw;
  std::vector<float> batched = poisoned(p.batch * image), alone = poisoned(p.batch * image);
  ok = ok && run(0, p.batch, batched.data());
  for (int b = 0; ok && b < p.batch; ++b) ok = run(b, 1, alone.data() + b * image);
  ok = ok && batched == alone;
  std::printf("%s %s, %d channels %dx%d: a batch of 4 gives each image the bits it gets alone\n",
              ok ? "ok  " : "FAIL", label, c_out, side, side);
  if (!ok) ++g_failures;
}

// prepare_conv_for (the graph's path): a weight prepared for its one call keeps only the
// form that call runs, and gives that call the bits the weight with both forms gives it; a
// call of another geometry gets an error, not a wrong answer. Under the per-layer rule:
// 64 channels at 32x32 run F(4x4), 400 at 8x8 (16 tiles an image) and stride 2 run direct.
void test_weight_for_use(Backend& be, const char* label, const ConvParams& p, bool wino,
                         std::mt19937& rng) {
  const int c_in = p.c_in1 + p.c_in2, hw_in = p.h_in * p.w_in;
  auto s1 = random_vector(static_cast<size_t>(p.batch) * p.c_in1 * hw_in, rng);
  auto s2 = random_vector(static_cast<size_t>(p.batch) * p.c_in2 * hw_in, rng);
  auto w = random_vector(static_cast<size_t>(p.c_out) * c_in * 9, rng, -0.05f, 0.05f);
  auto bias = random_vector(p.c_out, rng);
  std::unique_ptr<Weight> both, one;
  bool ok = be.prepare_conv(w.data(), p.c_out, c_in, 3, &both).ok() &&
            be.prepare_conv_for(w.data(), p, &one).ok();
  const auto run = [&](const Weight* weight, const ConvParams& q, std::vector<float>* dst) {
    *dst = poisoned(static_cast<size_t>(q.batch) * q.c_out * q.h_out() * q.w_out());
    ConvArgs a;
    a.src1 = s1.data();
    a.src2 = p.c_in2 ? s2.data() : nullptr;
    a.weight = weight;
    a.bias = bias.data();
    a.dst = dst->data();
    return be.conv2d(q, a);
  };
  std::vector<float> from_both, from_one;
  ok = ok && run(both.get(), p, &from_both).ok() && run(one.get(), p, &from_one).ok() &&
       from_both == from_one;
  const size_t direct = cpu::packed_a_floats(p.c_out, c_in * 9) * sizeof(float);
  ok = ok && (wino ? one->bytes() + direct == both->bytes() : one->bytes() == direct);
  // The Winograd-only weight, asked for a geometry its form does not cover (too few tiles).
  bool refused = true;
  if (wino && ok) {
    ConvParams q = p;
    q.h_in = q.w_in = 8;
    std::vector<float> ignored;
    refused = run(one.get(), q, &ignored).code == CM4J_ERR_INVALID_ARGUMENT;
  }
  ok = ok && refused;
  std::printf("%s prepare_conv_for %s: %s form only (%zu of %zu bytes), same bits%s\n",
              ok ? "ok  " : "FAIL", label, wino ? "Winograd" : "direct", one ? one->bytes() : 0,
              both ? both->bytes() : 0, wino ? ", an 8x8 call refused" : "");
  if (!ok) ++g_failures;
}

// ---------------------------------------------------------------- group_norm

// c1 > 0: the input is cat(x[:, :c1], x[:, c1:]) passed as two tensors (x, x2).
void test_group_norm(Backend& be, std::mt19937& rng, int batch, int channels, int hw, int groups,
                     bool modulate, bool silu, float offset, bool in_place, int c1 = 0) {
  const size_t n = static_cast<size_t>(batch) * channels * hw;
  auto x = random_vector(n, rng, offset - 1.0f, offset + 1.0f);
  auto gamma = random_vector(channels, rng, 0.5f, 1.5f);
  auto beta = random_vector(channels, rng);
  const int stride = 2 * channels + 3;  // scale/shift are slices of a wider row
  auto mod = random_vector(static_cast<size_t>(batch) * stride, rng, -0.5f, 0.5f);
  std::vector<float> y = in_place ? x : poisoned(n);
  const std::vector<float> x_copy = x;

  GroupNormParams p;
  p.batch = batch;
  p.channels = channels;
  p.hw = hw;
  p.groups = groups;
  p.silu = silu;
  GroupNormArgs a;
  a.x = in_place ? y.data() : x.data();
  std::vector<float> first, second;  // the two halves of a concat input
  if (c1 > 0) {
    for (int b = 0; b < batch; ++b) {
      const auto image = x.begin() + static_cast<size_t>(b) * channels * hw;
      first.insert(first.end(), image, image + static_cast<size_t>(c1) * hw);
      second.insert(second.end(), image + static_cast<size_t>(c1) * hw, image + static_cast<size_t>(channels) * hw);
    }
    a.x = first.data();
    a.x2 = second.data();
    a.c1 = c1;
  }
  a.gamma = gamma.data();
  a.beta = beta.data();
  if (modulate) {
    a.scale = mod.data();
    a.shift = mod.data() + channels;
    a.scale_stride = stride;
  }
  a.y = y.data();
  char label[160];
  std::snprintf(label, sizeof label, "group_norm B%d C%d%s hw%d G%d%s%s%s%s", batch, channels,
                c1 > 0 ? (" (" + std::to_string(c1) + "+" + std::to_string(channels - c1) + ")").c_str() : "",
                hw, groups, modulate ? " scale/shift" : "", silu ? " silu" : "",
                offset != 0 ? " mean+100" : "", in_place ? " in-place" : "");
  if (!require_ok(be.group_norm(p, a), label)) return;

  Check check(label, 1e-5);
  check.all_finite(y);
  const int per = channels / groups;
  for (int b = 0; b < batch; ++b)
    for (int g = 0; g < groups; ++g) {
      const size_t base = (static_cast<size_t>(b) * channels + g * per) * hw;
      const size_t m = static_cast<size_t>(per) * hw;
      double mean = 0, var = 0;
      for (size_t i = 0; i < m; ++i) mean += x_copy[base + i];
      mean /= m;
      for (size_t i = 0; i < m; ++i) var += (x_copy[base + i] - mean) * (x_copy[base + i] - mean);
      var /= m;
      for (int ci = 0; ci < per; ++ci) {
        const int c = g * per + ci;
        for (int i = 0; i < hw; ++i) {
          const size_t at = base + static_cast<size_t>(ci) * hw + i;
          double v = (x_copy[at] - mean) / std::sqrt(var + p.eps) * gamma[c] + beta[c];
          if (modulate) v = v * (1.0 + mod[b * stride + c]) + mod[b * stride + channels + c];
          if (silu) v = v / (1.0 + std::exp(-v));
          check.add(y[at], v);
        }
      }
    }
  check.report();
}

// ---------------------------------------------------------------- attention

void test_attention(Backend& be, std::mt19937& rng, int batch, int heads, int dim, int hw,
                    int samples) {
  const int channels = heads * dim;
  auto qkv = random_vector(static_cast<size_t>(batch) * 3 * channels * hw, rng, -2.0f, 2.0f);
  auto out = poisoned(static_cast<size_t>(batch) * channels * hw);
  AttentionParams p;
  p.batch = batch;
  p.channels = channels;
  p.hw = hw;
  p.heads = heads;
  p.dim_head = dim;
  p.scale = 1.0f / std::sqrt(static_cast<float>(dim));
  AttentionArgs a;
  a.qkv = qkv.data();
  a.out = out.data();
  char label[128];
  std::snprintf(label, sizeof label, "attention B%d heads%d dim%d hw%d", batch, heads, dim, hw);
  if (!require_ok(be.attention(p, a), label)) return;

  Check check(label, 1e-5);
  check.all_finite(out);
  std::uniform_int_distribution<int> di(0, hw - 1);
  for (int b = 0; b < batch; ++b)
    for (int h = 0; h < heads; ++h) {
      const float* q = qkv.data() + (static_cast<size_t>(b) * 3 * channels + h * dim) * hw;
      const float* k = q + static_cast<size_t>(channels) * hw;
      const float* v = k + static_cast<size_t>(channels) * hw;
      const int count = samples == 0 ? hw : samples;
      for (int s = 0; s < count; ++s) {
        const int i = samples == 0 ? s : (s == 0 ? hw - 1 : di(rng));
        std::vector<double> w(hw);
        double mx = -1e300;
        for (int j = 0; j < hw; ++j) {
          double dot = 0;
          for (int c = 0; c < dim; ++c) dot += static_cast<double>(q[c * hw + i]) * k[c * hw + j];
          w[j] = dot * p.scale;
          mx = std::max(mx, w[j]);
        }
        double sum = 0;
        for (int j = 0; j < hw; ++j) sum += (w[j] = std::exp(w[j] - mx));
        for (int c = 0; c < dim; ++c) {
          double o = 0;
          for (int j = 0; j < hw; ++j) o += w[j] * v[c * hw + j];
          check.add(out[(static_cast<size_t>(b) * channels + h * dim + c) * hw + i], o / sum);
        }
      }
    }
  check.report();
}

// ---------------------------------------------------------------- linear

void test_linear(Backend& be, std::mt19937& rng, int m, int n, int k, bool silu_in, bool silu_out,
                 bool with_bias, bool with_add) {
  auto x = random_vector(static_cast<size_t>(m) * k, rng, -3.0f, 3.0f);
  const float ws = 1.0f / std::sqrt(static_cast<float>(k));
  auto w = random_vector(static_cast<size_t>(n) * k, rng, -ws, ws);
  auto bias = random_vector(n, rng);
  auto add = random_vector(static_cast<size_t>(m) * n, rng);
  auto y = poisoned(static_cast<size_t>(m) * n);
  char label[128];
  std::snprintf(label, sizeof label, "linear m%d n%d k%d%s%s%s%s", m, n, k, silu_in ? " silu_in" : "",
                silu_out ? " silu_out" : "", with_bias ? " bias" : "", with_add ? " add" : "");
  std::unique_ptr<Weight> weight;
  if (!require_ok(be.prepare_linear(w.data(), n, k, &weight), label)) return;
  LinearParams p;
  p.m = m;
  p.n = n;
  p.k = k;
  p.silu_input = silu_in;
  p.silu_output = silu_out;
  LinearArgs a;
  a.x = x.data();
  a.weight = weight.get();
  a.bias = with_bias ? bias.data() : nullptr;
  a.add = with_add ? add.data() : nullptr;
  a.y = y.data();
  if (!require_ok(be.linear(p, a), label)) return;
  Check check(label, 1e-5);
  check.all_finite(y);
  for (int r = 0; r < m; ++r)
    for (int c = 0; c < n; ++c) {
      double acc = with_bias ? bias[c] : 0.0;
      for (int i = 0; i < k; ++i) {
        double xv = x[static_cast<size_t>(r) * k + i];
        if (silu_in) xv = xv / (1.0 + std::exp(-xv));
        acc += xv * w[static_cast<size_t>(c) * k + i];
      }
      if (silu_out) acc = acc / (1.0 + std::exp(-acc));
      if (with_add) acc += add[static_cast<size_t>(r) * n + c];
      check.add(y[static_cast<size_t>(r) * n + c], acc);
    }
  check.report();
}

// ---------------------------------------------------------------- small ops

void test_resample(Backend& be, std::mt19937& rng) {
  {
    const int b = 2, c = 3, h = 7, w = 6;  // odd height: torch floors
    auto x = random_vector(static_cast<size_t>(b) * c * h * w, rng);
    auto y = poisoned(static_cast<size_t>(b) * c * (h / 2) * (w / 2));
    if (require_ok(be.avg_pool2(x.data(), y.data(), b, c, h, w), "avg_pool2")) {
      Check check("avg_pool2 2x3x7x6", 1e-6);
      check.all_finite(y);
      for (int p = 0; p < b * c; ++p)
        for (int oy = 0; oy < h / 2; ++oy)
          for (int ox = 0; ox < w / 2; ++ox) {
            const float* s = x.data() + static_cast<size_t>(p) * h * w;
            const double ref = (static_cast<double>(s[2 * oy * w + 2 * ox]) + s[2 * oy * w + 2 * ox + 1] +
                                s[(2 * oy + 1) * w + 2 * ox] + s[(2 * oy + 1) * w + 2 * ox + 1]) / 4;
            check.add(y[(static_cast<size_t>(p) * (h / 2) + oy) * (w / 2) + ox], ref);
          }
      check.report();
    }
  }
  {
    const int b = 2, c = 3, h = 5, w = 4;
    auto x = random_vector(static_cast<size_t>(b) * c * h * w, rng);
    auto y = poisoned(static_cast<size_t>(b) * c * 4 * h * w);
    if (require_ok(be.upsample_nearest2(x.data(), y.data(), b, c, h, w), "upsample_nearest2")) {
      Check check("upsample_nearest2 2x3x5x4", 0.0);
      check.all_finite(y);
      for (int p = 0; p < b * c; ++p)
        for (int oy = 0; oy < 2 * h; ++oy)
          for (int ox = 0; ox < 2 * w; ++ox)
            check.add(y[(static_cast<size_t>(p) * 2 * h + oy) * 2 * w + ox],
                      x[(static_cast<size_t>(p) * h + oy / 2) * w + ox / 2]);
      check.report();
    }
  }
}

void test_timestep_embedding(Backend& be, int dim, bool flip, float shift) {
  const std::vector<float> t = {0.0f, 1.5f, 250.25f, 999.0f};
  const int batch = static_cast<int>(t.size());
  auto emb = poisoned(static_cast<size_t>(batch) * dim);
  char label[96];
  std::snprintf(label, sizeof label, "timestep_embedding dim%d flip%d shift%g", dim, flip, shift);
  if (!require_ok(be.timestep_embedding(t.data(), emb.data(), batch, dim, flip, shift), label)) return;
  // diffusers' float32 steps: exponent = (-ln(1e4) * i) / (half - shift), emb = t * exp(.)
  Check check(label, 1e-6);
  check.all_finite(emb);
  const int half = dim / 2;
  for (int b = 0; b < batch; ++b) {
    for (int i = 0; i < half; ++i) {
      const float exponent = static_cast<float>(-std::log(10000.0)) * static_cast<float>(i) /
                             (static_cast<float>(half) - shift);
      const float arg = t[b] * static_cast<float>(std::exp(static_cast<double>(exponent)));
      const double s = std::sin(static_cast<double>(arg)), c = std::cos(static_cast<double>(arg));
      check.add(emb[b * dim + i], flip ? c : s);
      check.add(emb[b * dim + half + i], flip ? s : c);
    }
    if (dim % 2) check.add(emb[b * dim + dim - 1], 0.0);
  }
  check.report();
}

void test_embedding_lookup(Backend& be, std::mt19937& rng) {
  const int classes = 10, dim = 24, batch = 3;
  auto table = random_vector(static_cast<size_t>(classes) * dim, rng);
  const int64_t labels[batch] = {9, 0, 4};
  auto rows = poisoned(static_cast<size_t>(batch) * dim);
  if (!require_ok(be.embedding_lookup(table.data(), labels, rows.data(), batch, dim), "embedding_lookup"))
    return;
  Check check("embedding_lookup", 0.0);
  for (int b = 0; b < batch; ++b)
    for (int i = 0; i < dim; ++i) check.add(rows[b * dim + i], table[labels[b] * dim + i]);
  check.report();
}

// Bad calls come back as statuses, never as crashes.
void test_errors(Backend& be) {
  std::vector<float> w(8 * 4 * 9, 0.1f), x(4 * 16, 1.0f), y(8 * 16);
  std::unique_ptr<Weight> weight;
  const bool bad_kernel = be.prepare_conv(w.data(), 8, 4, 5, &weight).code == CM4J_ERR_INVALID_ARGUMENT;
  require_ok(be.prepare_conv(w.data(), 8, 4, 3, &weight), "prepare_conv for error checks");
  ConvArgs a;
  a.src1 = x.data();
  a.weight = weight.get();
  a.dst = y.data();
  const bool mismatch = be.conv2d(conv(1, 5, 0, 4, 4, 8, 3, 1, 1), a).code == CM4J_ERR_INVALID_ARGUMENT;
  a.dst = nullptr;
  const bool null_dst = be.conv2d(conv(1, 4, 0, 4, 4, 8, 3, 1, 1), a).code == CM4J_ERR_INVALID_ARGUMENT;
  GroupNormParams gp;
  gp.channels = 10;
  gp.hw = 4;
  gp.groups = 3;
  GroupNormArgs ga;
  ga.x = x.data();
  ga.y = y.data();
  const bool groups = be.group_norm(gp, ga).code == CM4J_ERR_INVALID_ARGUMENT;
  const bool ok = bad_kernel && mismatch && null_dst && groups;
  std::printf("%s errors: bad kernel %d, weight mismatch %d, null dst %d, bad groups %d\n",
              ok ? "ok  " : "FAIL", bad_kernel, mismatch, null_dst, groups);
  if (!ok) ++g_failures;
}

// Engines on different threads each own a backend; their pools must not interfere, and
// the result of a conv must not depend on which worker ran which tile (bitwise equal).
void test_concurrent_backends(std::mt19937& rng) {
  const ConvParams p = conv(2, 64, 32, 16, 16, 96, 3, 1, 1);
  const int c_in = p.c_in1 + p.c_in2;
  auto s1 = random_vector(static_cast<size_t>(p.batch) * p.c_in1 * 256, rng);
  auto s2 = random_vector(static_cast<size_t>(p.batch) * p.c_in2 * 256, rng);
  auto w = random_vector(static_cast<size_t>(p.c_out) * c_in * 9, rng, -0.05f, 0.05f);
  const size_t out_n = static_cast<size_t>(p.batch) * p.c_out * 256;
  const auto run = [&](Backend& be, std::vector<float>* out) {
    std::unique_ptr<Weight> weight;
    ConvArgs a;
    a.src1 = s1.data();
    a.src2 = s2.data();
    a.dst = out->data();
    bool ok = be.prepare_conv(w.data(), p.c_out, c_in, 3, &weight).ok();
    a.weight = weight.get();
    for (int i = 0; ok && i < 20; ++i) ok = be.conv2d(p, a).ok();
    return ok;
  };
  std::vector<float> expected = poisoned(out_n);
  auto single = make_cpu_backend(1, CM4J_F32);
  bool ok = run(*single, &expected);
  std::vector<std::vector<float>> outs(3, poisoned(out_n));
  std::vector<char> oks(3, 0);
  std::vector<std::unique_ptr<Backend>> backends;
  for (int i = 0; i < 3; ++i) backends.push_back(make_cpu_backend(2, CM4J_F32));
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back([&, i] { oks[i] = run(*backends[i], &outs[i]); });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 3; ++i) ok = ok && oks[i] && outs[i] == expected;
  std::printf("%s three backends on three threads match one single-threaded backend bitwise\n",
              ok ? "ok  " : "FAIL");
  if (!ok) ++g_failures;
}

void run_all(Backend& be, bool large) {
  std::mt19937 rng(1234);
  test_convs(be, rng, large);

  test_group_norm(be, rng, 2, 64, 49, 32, false, false, 0.0f, false);
  test_group_norm(be, rng, 2, 64, 49, 32, true, true, 0.0f, false);
  test_group_norm(be, rng, 3, 40, 1, 8, false, true, 0.0f, false);
  test_group_norm(be, rng, 1, 96, 100, 32, true, false, 100.0f, true);
  test_group_norm(be, rng, 2, 96, 36, 32, true, true, 0.0f, false, 40);  // a group straddles x/x2
  test_group_norm(be, rng, 2, 64, 16, 8, false, false, 0.0f, false, 32);
  if (large) {
    test_group_norm(be, rng, 1, 192, 4096, 32, true, true, 0.0f, true);
    test_group_norm(be, rng, 2, 1152, 256, 32, true, true, 0.0f, false, 576);  // up path concat
  }

  test_attention(be, rng, 2, 2, 8, 16, 0);
  test_attention(be, rng, 1, 3, 8, 1, 0);
  test_attention(be, rng, 2, 2, 64, 200, 0);  // two query blocks, the second partial
  test_attention(be, rng, 1, 12, 64, 64, 16);
  if (large) {
    test_attention(be, rng, 1, 9, 64, 256, 16);
    test_attention(be, rng, 1, 6, 64, 1024, 8);
  }

  test_linear(be, rng, 1, 768, 192, false, true, true, false);
  test_linear(be, rng, 4, 1536, 768, true, false, true, false);
  test_linear(be, rng, 3, 17, 33, false, false, true, true);
  test_linear(be, rng, 2, 65, 7, true, true, false, false);

  test_resample(be, rng);
  test_timestep_embedding(be, 192, true, 0.0f);
  test_timestep_embedding(be, 32, false, 1.0f);
  test_timestep_embedding(be, 7, true, 1.0f);
  test_embedding_lookup(be, rng);
  test_errors(be);
}

}  // namespace

int main() {
  // Every ISA path the CPU can run; asking for one it lacks falls back, which the
  // backend's name reveals, so such a path is skipped rather than run twice.
  const char* isas[] = {"avx512", "avx2", "generic"};
  setenv("CM4J_CPU_CONV", "direct", 1);  // the Winograd convs get their own runs below
  for (const char* isa : isas) {
    setenv("CM4J_CPU_ISA", isa, 1);
    for (int threads : {2, 3}) {
      auto be = make_cpu_backend(threads, CM4J_F32);
      if (!be) {
        std::printf("FAIL make_cpu_backend(%d)\n", threads);
        return 1;
      }
      if (std::string(be->name()) != std::string("cpu-") + isa) {
        std::printf("skip %s: this CPU lacks it (got %s)\n", isa, be->name());
        break;
      }
      std::printf("== %s, %d threads\n", be->name(), threads);
      // The real-size cases once per ISA; odd thread counts only need the edge cases.
      run_all(*be, threads == 2);
    }
  }
  // The Winograd convs (CM4J_CPU_CONV, read when a backend starts) on every ISA path: the
  // 3x3 stride-1 pad-1 cases run through them, the others through the direct GEMM, all
  // under the same bound (observed: F(4x4) <= 8.1e-6 at 768 channels, F(2x2) <= 6.2e-7).
  for (const char* mode : {"winograd", "winograd2x2"}) {
    setenv("CM4J_CPU_CONV", mode, 1);
    for (const char* isa : isas) {
      setenv("CM4J_CPU_ISA", isa, 1);
      auto be = make_cpu_backend(2, CM4J_F32);
      if (!be || std::string(be->name()) != std::string("cpu-") + isa) continue;
      std::printf("== %s, CM4J_CPU_CONV=%s\n", be->name(), mode);
      std::mt19937 rng(1234);
      test_winograd_weight(*be, std::string(mode) == "winograd" ? 4 : 2);
      test_convs(*be, rng, std::string(isa) == "avx512");
    }
  }
  unsetenv("CM4J_CPU_ISA");
  for (const char* mode : {"", "direct", "winograd", "winograd2x2"}) {
    setenv("CM4J_CPU_CONV", mode, 1);
    auto be = make_cpu_backend(2, CM4J_F32);
    std::mt19937 rng(7);
    if (!*mode) {
      test_conv_rule(*be);
      test_weight_for_use(*be, "64 channels 32x32", conv(2, 48, 16, 32, 32, 64, 3, 1, 1), true, rng);
      test_weight_for_use(*be, "400 channels 8x8", conv(2, 48, 16, 8, 8, 400, 3, 1, 1), false, rng);
      test_weight_for_use(*be, "64 channels 32x32 stride 2", conv(2, 64, 0, 32, 32, 64, 3, 2, 1), false, rng);
    }
    for (int side : {32, 16}) test_batch_invariance(*be, *mode ? mode : "per-layer rule", side, 64, rng);
    for (int side : {16, 8}) test_batch_invariance(*be, *mode ? mode : "per-layer rule", side, 400, rng);
  }
  for (const char* mode : {"direct", "winograd"}) {
    setenv("CM4J_CPU_CONV", mode, 1);
    std::printf("== CM4J_CPU_CONV=%s\n", mode);
    std::mt19937 rng(99);
    test_concurrent_backends(rng);
  }
  unsetenv("CM4J_CPU_CONV");
  std::printf(g_failures == 0 ? "PASS\n" : "FAILED: %d checks\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}

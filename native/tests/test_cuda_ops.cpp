// Every CUDA op against the CPU backend (the numerical reference) at the real models'
// shapes: imagenet64 (channels 192/384/576/768, 64x64..8x8, head dim 64, up-path concats),
// lsun_mini's attention (head dim 64 at 8x8..2x2) and tiny (head dim 8), plus odd sizes that
// cross tile edges. Inputs are fresh random
// numbers every run (the seed is printed; CM4J_TEST_SEED=<n> repeats a run), outputs are
// poisoned with NaN before each op, and each result must be within relative L2 error
// ||gpu - cpu|| / ||cpu|| <= 1e-5 (fp32; exact for the copies) with no NaN.
// Conv runs with every kernel set: default (tiled SIMT), reference (one thread per output),
// and the tensor-core kernel with fp16 / bf16 operands (fp32 accumulation), whose bounds
// are those of operand rounding: 2e-3 (fp16) and 1.5e-2 (bf16).
// CM4J_CUDA_KERNELS=candidate runs every case on the candidate kernels instead: with fp16
// and bf16 that is the NHWC mode (activations stored channels-last in that type, inputs
// rounded to it on upload), held to the same fp16 / bf16 bounds for every activation op;
// the time path (linear, embeddings) stays fp32 and keeps its bounds.
// Exit 77 (skipped) when no CUDA device is usable. CM4J_TEST_FILTER=odd,tiny runs only the
// cases whose name contains one of the comma-separated substrings.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend.h"
#include "cm4j.h"
#include "cuda_test_util.h"
#include "test_util.h"
#ifdef CM4J_HAVE_CUDA
#include "cuda/cuda_backend.h"
#include "scheduler.cuh"
#endif

using namespace cm4j;
using namespace cm4j_test;  // Buf, conv_params, g_rng, randn, uniform

namespace {

constexpr double kBoundF32 = 1e-5;

int g_failures = 0;
int g_cases = 0;
const char* g_filter = nullptr;

const float* ptr(const std::unique_ptr<Buf>& b) { return b ? b->p : nullptr; }

struct Comparison {
  double rel = 0, max_abs = 0;
  size_t nan = 0;
};

Comparison compare(const std::vector<float>& got, const std::vector<float>& ref) {
  Comparison c;
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::isnan(got[i]) || std::isinf(got[i])) {
      ++c.nan;
      continue;
    }
    double d = static_cast<double>(got[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
    c.max_abs = std::fmax(c.max_abs, std::fabs(d));
  }
  c.rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return c;
}

// CM4J_TEST_FILTER is a comma-separated list of substrings; a case runs when its name
// contains any of them.
bool selected(const std::string& name) {
  if (!g_filter || !*g_filter) return true;
  std::string list = std::string(g_filter) + ",";
  for (size_t at = 0, comma; (comma = list.find(',', at)) != std::string::npos; at = comma + 1) {
    std::string part = list.substr(at, comma - at);
    if (!part.empty() && name.find(part) != std::string::npos) return true;
  }
  return false;
}

void report(const std::string& op, const std::string& shape, const char* kernels,
            const Status& cpu_status, const Status& gpu_status, const std::vector<float>& got,
            const std::vector<float>& ref, double bound) {
  ++g_cases;
  Comparison c;
  bool ok = cpu_status.ok() && gpu_status.ok();
  if (ok) {
    c = compare(got, ref);
    ok = c.nan == 0 && c.rel <= bound;
  }
  if (!ok) ++g_failures;
  std::printf("| %-18s | %-44s | %-9s | %10.3e | %10.3e | %7.1e | %-4s |\n", op.c_str(),
              shape.c_str(), kernels, c.rel, c.max_abs, bound, ok ? "ok" : "FAIL");
  if (!cpu_status.ok()) std::printf("    cpu: %s\n", cpu_status.message.c_str());
  if (!gpu_status.ok()) std::printf("    cuda: %s\n", gpu_status.message.c_str());
  if (c.nan) std::printf("    %zu NaN/Inf values in the CUDA output\n", c.nan);
}

struct Backends {
  Backend* cpu;
  Backend* gpu;
  const char* kernels;
  double conv_bound;
  bool nhwc = false;  // activations stored fp16/bf16 NHWC: every activation op gets conv_bound
  // Bound of the activation ops other than conv (exact copies: 0 in fp32).
  double op_bound(double f32) const { return nhwc ? conv_bound : f32; }
  // Bytes per activation element in the GPU backend's storage.
  size_t act_bytes() const { return nhwc ? 2 : sizeof(float); }
};

// ---- conv2d -----------------------------------------------------------------------------
struct ConvCase {
  int batch, c1, c2, h, w, c_out, kernel, stride, pad;
  bool up, bias, bias_bc, residual;
  float out_scale;
};

// A group norm (32 groups) of cat(s1, s2) fused into the conv: the backend's group_norm
// writes its maps (coeffs) and the conv applies them as it gathers (Backend::conv_fuses_norm).
struct FusedNorm {
  std::vector<float> gamma, beta, ss;  // ss: [B, 2C] scale then shift rows, or empty
  bool silu;
};

std::vector<float> run_conv(Backend* be, size_t eb, const ConvCase& k,
                            const std::vector<float>& s1, const std::vector<float>& s2,
                            const std::vector<float>& wt, const std::vector<float>& bias,
                            const std::vector<float>& bias_bc, const std::vector<float>& res,
                            Status* status, int bbc_offset = 0, int bbc_stride = 0,
                            const FusedNorm* norm = nullptr) {
  ConvParams p = conv_params(k);
  p.out_scale = k.out_scale;
  p.norm_silu = norm && norm->silu;
  const ActShape out_shape{k.batch, k.c_out, p.h_out(), p.w_out()};
  std::unique_ptr<Weight> weight;
  *status = be->prepare_conv(wt.data(), k.c_out, k.c1 + k.c2, k.kernel, &weight);
  if (!status->ok()) return {};
  Buf b1(be, ActShape{k.batch, k.c1, k.h, k.w}, s1, eb), dst(be, out_shape, eb);
  std::unique_ptr<Buf> b2, bb, bbc, br;
  if (k.c2) b2 = std::make_unique<Buf>(be, ActShape{k.batch, k.c2, k.h, k.w}, s2, eb);
  if (k.bias) bb = std::make_unique<Buf>(be, bias);
  if (k.bias_bc) bbc = std::make_unique<Buf>(be, bias_bc);
  if (k.residual) br = std::make_unique<Buf>(be, out_shape, res, eb);
  dst.poison();
  ConvArgs a;
  a.src1 = b1.p;
  a.src2 = ptr(b2);
  a.weight = weight.get();
  a.bias = ptr(bb);
  a.bias_bc = bbc ? bbc->p + bbc_offset : nullptr;
  a.bias_bc_stride = bbc_stride;
  a.residual = ptr(br);
  a.dst = dst.p;
  std::unique_ptr<Buf> bg, bnb, bss, coeffs;
  if (norm) {
    const int c = k.c1 + k.c2;
    GroupNormParams np;
    np.batch = k.batch;
    np.channels = c;
    np.hw = k.h * k.w;
    np.groups = 32;
    np.silu = norm->silu;
    bg = std::make_unique<Buf>(be, norm->gamma);
    bnb = std::make_unique<Buf>(be, norm->beta);
    coeffs = std::make_unique<Buf>(be, static_cast<size_t>(k.batch) * 3 * c);
    GroupNormArgs na;
    na.x = b1.p;
    na.x2 = ptr(b2);
    na.c1 = k.c2 ? k.c1 : 0;
    na.gamma = bg->p;
    na.beta = bnb->p;
    if (!norm->ss.empty()) {
      bss = std::make_unique<Buf>(be, norm->ss);
      na.scale = bss->p;
      na.shift = bss->p + c;
      na.scale_stride = 2 * c;
    }
    na.coeffs = coeffs->p;
    a.norm = coeffs->p;
    *status = be->group_norm(np, na);
    if (!status->ok()) return {};
  }
  *status = be->conv2d(p, a);
  if (status->ok()) *status = be->synchronize();
  return dst.get();
}

void test_conv(const std::vector<Backends>& sets, const char* label, const ConvCase& k) {
  char shape[128];
  std::snprintf(shape, sizeof shape, "%s b%d %d+%d>%d %dx%d k%d s%d%s%s%s", label, k.batch, k.c1,
                k.c2, k.c_out, k.h, k.w, k.kernel, k.stride, k.up ? " up" : "",
                k.bias_bc ? " bbc" : "", k.residual ? " res" : "");
  if (!selected(std::string("conv2d ") + shape)) return;
  ConvParams p;
  p.h_in = k.h;
  p.w_in = k.w;
  p.kernel = k.kernel;
  p.stride = k.stride;
  p.pad = k.pad;
  p.upsample = k.up;
  const size_t out_n = static_cast<size_t>(k.batch) * k.c_out * p.h_out() * p.w_out();
  const int fan_in = (k.c1 + k.c2) * k.kernel * k.kernel;
  auto s1 = randn(static_cast<size_t>(k.batch) * k.c1 * k.h * k.w);
  auto s2 = randn(static_cast<size_t>(k.batch) * k.c2 * k.h * k.w);
  auto wt = uniform(static_cast<size_t>(k.c_out) * fan_in, -1.0f / std::sqrt(fan_in),
                    1.0f / std::sqrt(fan_in));
  auto bias = randn(k.c_out, 0.1f);
  auto bias_bc = randn(static_cast<size_t>(k.batch) * k.c_out, 0.5f);
  auto res = randn(out_n);
  Status cs;
  auto ref = run_conv(sets[0].cpu, sizeof(float), k, s1, s2, wt, bias, bias_bc, res, &cs);
  for (const Backends& b : sets) {
    Status gs;
    auto got = run_conv(b.gpu, b.act_bytes(), k, s1, s2, wt, bias, bias_bc, res, &gs);
    report("conv2d", shape, b.kernels, cs, gs, got, ref, b.conv_bound);
  }
}

// bias_bc as a slice of wider rows (one resnet's columns of every time_emb_proj output):
// columns offset..offset+c_out of [B, stride]. The reference is the CPU with those columns
// copied into dense rows; the CPU with the slice must give the same bits.
void test_conv_bias_slice(const std::vector<Backends>& sets, const char* label, const ConvCase& k,
                          int offset, int stride) {
  char shape[128];
  std::snprintf(shape, sizeof shape, "%s b%d %d>%d %dx%d k%d bbc@%d/%d", label, k.batch, k.c1,
                k.c_out, k.h, k.w, k.kernel, offset, stride);
  if (!selected(std::string("conv2d ") + shape)) return;
  ConvParams p = conv_params(k);
  const size_t out_n = static_cast<size_t>(k.batch) * k.c_out * p.h_out() * p.w_out();
  const int fan_in = (k.c1 + k.c2) * k.kernel * k.kernel;
  auto s1 = randn(static_cast<size_t>(k.batch) * k.c1 * k.h * k.w);
  auto s2 = randn(static_cast<size_t>(k.batch) * k.c2 * k.h * k.w);
  auto wt = uniform(static_cast<size_t>(k.c_out) * fan_in, -1.0f / std::sqrt(fan_in),
                    1.0f / std::sqrt(fan_in));
  auto bias = randn(k.c_out, 0.1f);
  auto wide = randn(static_cast<size_t>(k.batch) * stride, 0.5f);  // [B, stride]
  std::vector<float> dense;                                         // [B, c_out]
  for (int b = 0; b < k.batch; ++b)
    for (int c = 0; c < k.c_out; ++c)
      dense.push_back(wide[static_cast<size_t>(b) * stride + offset + c]);
  auto res = randn(out_n);
  Status cs, ss;
  auto ref = run_conv(sets[0].cpu, sizeof(float), k, s1, s2, wt, bias, dense, res, &cs);
  auto cpu_slice =
      run_conv(sets[0].cpu, sizeof(float), k, s1, s2, wt, bias, wide, res, &ss, offset, stride);
  report("conv2d", shape, "cpu", cs, ss, cpu_slice, ref, 0.0);
  for (const Backends& b : sets) {
    Status gs;
    auto got = run_conv(b.gpu, b.act_bytes(), k, s1, s2, wt, bias, wide, res, &gs, offset, stride);
    report("conv2d", shape, b.kernels, cs, gs, got, ref, b.conv_bound);
  }
}

// ---- group_norm -------------------------------------------------------------------------
struct NormCase {
  int batch, channels, hw, groups;
  bool scale_shift, silu, in_place;
  int c1;  // > 0: the input is cat(x[:, :c1], x2) read from two buffers
};

// x [B, C, hw] as its channels 0..c1 ([B, c1, hw]) and c1..C ([B, C - c1, hw]).
void split_channels(const std::vector<float>& x, int batch, int channels, int hw, int c1,
                    std::vector<float>* x1, std::vector<float>* x2) {
  x1->clear();
  x2->clear();
  for (int b = 0; b < batch; ++b) {
    const float* img = x.data() + static_cast<size_t>(b) * channels * hw;
    x1->insert(x1->end(), img, img + static_cast<size_t>(c1) * hw);
    x2->insert(x2->end(), img + static_cast<size_t>(c1) * hw, img + static_cast<size_t>(channels) * hw);
  }
}

std::vector<float> run_norm(Backend* be, size_t eb, const NormCase& k, const std::vector<float>& x,
                            const std::vector<float>& gamma, const std::vector<float>& beta,
                            const std::vector<float>& ss, Status* status) {
  GroupNormParams p;
  p.batch = k.batch;
  p.channels = k.channels;
  p.hw = k.hw;
  p.groups = k.groups;
  p.silu = k.silu;
  // With a second source, x is split into its two channel ranges per image.
  std::vector<float> x1 = x, x2;
  if (k.c1 > 0) split_channels(x, k.batch, k.channels, k.hw, k.c1, &x1, &x2);
  const int c1 = k.c1 > 0 ? k.c1 : k.channels;
  Buf bx(be, ActShape{k.batch, c1, k.hw, 1}, x1, eb), bg(be, gamma), bb(be, beta);
  std::unique_ptr<Buf> bx2, bss, by;
  if (k.c1 > 0) bx2 = std::make_unique<Buf>(be, ActShape{k.batch, k.channels - k.c1, k.hw, 1}, x2, eb);
  if (k.scale_shift) bss = std::make_unique<Buf>(be, ss);
  if (!k.in_place) {
    by = std::make_unique<Buf>(be, ActShape{k.batch, k.channels, k.hw, 1}, eb);
    by->poison();
  }
  GroupNormArgs a;
  a.x = bx.p;
  a.x2 = ptr(bx2);
  a.c1 = k.c1;
  a.gamma = bg.p;
  a.beta = bb.p;
  if (k.scale_shift) {  // one [B, 2C] tensor as the time path makes it: scale, then shift
    a.scale = bss->p;
    a.shift = bss->p + k.channels;
    a.scale_stride = 2 * k.channels;
  }
  a.y = k.in_place ? bx.p : by->p;
  *status = be->group_norm(p, a);
  if (status->ok()) *status = be->synchronize();
  return k.in_place ? bx.get() : by->get();
}

void test_norm(const std::vector<Backends>& sets, const char* label, const NormCase& k) {
  char shape[128];
  char cat[40] = "";
  if (k.c1 > 0) std::snprintf(cat, sizeof cat, " cat%d+%d", k.c1, k.channels - k.c1);
  std::snprintf(shape, sizeof shape, "%s b%d c%d hw%d g%d%s%s%s%s", label, k.batch, k.channels,
                k.hw, k.groups, cat, k.scale_shift ? " ss" : "", k.silu ? " silu" : "",
                k.in_place ? " inplace" : "");
  if (!selected(std::string("group_norm ") + shape)) return;
  // A non-zero mean and a large spread, as activations have.
  auto x = randn(static_cast<size_t>(k.batch) * k.channels * k.hw, 3.0f);
  for (size_t i = 0; i < x.size(); ++i) x[i] += 1.5f;
  auto gamma = uniform(k.channels, 0.5f, 1.5f);
  auto beta = randn(k.channels, 0.2f);
  auto ss = randn(static_cast<size_t>(k.batch) * 2 * k.channels, 0.5f);
  Status cs;
  auto ref = run_norm(sets[0].cpu, sizeof(float), k, x, gamma, beta, ss, &cs);
  for (const Backends& b : sets) {
    Status gs;
    auto got = run_norm(b.gpu, b.act_bytes(), k, x, gamma, beta, ss, &gs);
    report("group_norm", shape, b.kernels, cs, gs, got, ref, b.op_bound(kBoundF32));
  }
}

// ---- group norm fused into the conv that reads it (NHWC mode) ---------------------------
// The CPU's group_norm then conv on the normalized tensor, against the backend's norm
// writing its per-channel maps (coeffs) and the conv applying them to cat(src1, src2) as it
// gathers (Backend::conv_fuses_norm): the plan's fused pair at a model's layer shapes. Runs
// on the sets whose backend fuses that conv (the NHWC mode), 32 groups.
void test_norm_conv(const std::vector<Backends>& sets, const char* label, const ConvCase& k,
                    bool scale_shift, bool silu) {
  char shape[128];
  std::snprintf(shape, sizeof shape, "%s b%d %d+%d>%d %dx%d k%d%s%s%s%s", label, k.batch, k.c1,
                k.c2, k.c_out, k.h, k.w, k.kernel, k.up ? " up" : "", scale_shift ? " ss" : "",
                silu ? " silu" : "", k.residual ? " res" : "");
  if (!selected(std::string("norm+conv ") + shape)) return;
  const int c = k.c1 + k.c2, hw = k.h * k.w, fan_in = c * k.kernel * k.kernel;
  ConvParams p = conv_params(k);
  p.norm_silu = silu;
  // cat(x1, x2) with activations' non-zero mean and spread.
  auto x = randn(static_cast<size_t>(k.batch) * c * hw, 3.0f);
  for (float& v : x) v += 1.5f;
  std::vector<float> x1, x2;
  split_channels(x, k.batch, c, hw, k.c1, &x1, &x2);
  const FusedNorm norm{uniform(c, 0.5f, 1.5f), randn(c, 0.2f),
                       scale_shift ? randn(static_cast<size_t>(k.batch) * 2 * c, 0.5f)
                                   : std::vector<float>(),
                       silu};
  auto wt = uniform(static_cast<size_t>(k.c_out) * fan_in, -1.0f / std::sqrt(fan_in),
                    1.0f / std::sqrt(fan_in));
  auto bias = randn(k.c_out, 0.1f);
  auto res = randn(static_cast<size_t>(k.batch) * k.c_out * p.h_out() * p.w_out());
  // The reference: the CPU's unfused pair, the normalized tensor as one source.
  Status cs;
  const NormCase nk{k.batch, c, hw, 32, scale_shift, silu, false, 0};
  auto y = run_norm(sets[0].cpu, sizeof(float), nk, x, norm.gamma, norm.beta, norm.ss, &cs);
  ConvCase one = k;
  one.c1 = c;
  one.c2 = 0;
  one.bias_bc = false;
  std::vector<float> ref;
  if (cs.ok())
    ref = run_conv(sets[0].cpu, sizeof(float), one, y, {}, wt, bias, {}, res, &cs);
  for (const Backends& b : sets) {
    if (!b.gpu->conv_fuses_norm(p)) continue;
    Status gs;
    auto got = run_conv(b.gpu, b.act_bytes(), k, x1, x2, wt, bias, {}, res, &gs, 0, 0, &norm);
    report("norm+conv", shape, b.kernels, cs, gs, got, ref, b.conv_bound);
  }
}

// ---- attention --------------------------------------------------------------------------
struct AttnCase {
  int batch, channels, hw, dim_head;
};

std::vector<float> run_attn(Backend* be, size_t eb, const AttnCase& k,
                            const std::vector<float>& qkv, Status* status) {
  AttentionParams p;
  p.batch = k.batch;
  p.channels = k.channels;
  p.hw = k.hw;
  p.dim_head = k.dim_head;
  p.heads = k.channels / k.dim_head;
  p.scale = 1.0f / std::sqrt(static_cast<float>(k.dim_head));
  // [B, 3C, HW] in, [B, C, HW] out: activations (HW as H, W = 1).
  Buf bq(be, ActShape{k.batch, 3 * k.channels, k.hw, 1}, qkv, eb),
      out(be, ActShape{k.batch, k.channels, k.hw, 1}, eb);
  out.poison();
  AttentionArgs a;
  a.qkv = bq.p;
  a.out = out.p;
  *status = be->attention(p, a);
  if (status->ok()) *status = be->synchronize();
  return out.get();
}

void test_attn(const std::vector<Backends>& sets, const char* label, const AttnCase& k) {
  char shape[128];
  std::snprintf(shape, sizeof shape, "%s b%d c%d hw%d dh%d", label, k.batch, k.channels, k.hw,
                k.dim_head);
  if (!selected(std::string("attention ") + shape)) return;
  // Scores of a few units: softmax neither uniform nor one-hot.
  auto qkv = randn(static_cast<size_t>(k.batch) * 3 * k.channels * k.hw, 1.5f);
  Status cs;
  auto ref = run_attn(sets[0].cpu, sizeof(float), k, qkv, &cs);
  for (const Backends& b : sets) {
    Status gs;
    auto got = run_attn(b.gpu, b.act_bytes(), k, qkv, &gs);
    report("attention", shape, b.kernels, cs, gs, got, ref, b.op_bound(kBoundF32));
  }
}

// ---- linear -----------------------------------------------------------------------------
struct LinearCase {
  int m, n, k;
  bool silu_in, silu_out, bias, add;
};

std::vector<float> run_linear(Backend* be, const LinearCase& c, const std::vector<float>& x,
                              const std::vector<float>& w, const std::vector<float>& bias,
                              const std::vector<float>& add, Status* status) {
  LinearParams p;
  p.m = c.m;
  p.n = c.n;
  p.k = c.k;
  p.silu_input = c.silu_in;
  p.silu_output = c.silu_out;
  std::unique_ptr<Weight> weight;
  *status = be->prepare_linear(w.data(), c.n, c.k, &weight);
  if (!status->ok()) return {};
  Buf bx(be, x), y(be, static_cast<size_t>(c.m) * c.n);
  std::unique_ptr<Buf> bb, ba;
  if (c.bias) bb = std::make_unique<Buf>(be, bias);
  if (c.add) ba = std::make_unique<Buf>(be, add);
  y.poison();
  LinearArgs a;
  a.x = bx.p;
  a.weight = weight.get();
  a.bias = ptr(bb);
  a.add = ptr(ba);
  a.y = y.p;
  *status = be->linear(p, a);
  if (status->ok()) *status = be->synchronize();
  return y.get();
}

void report_bits(const std::string& op, const std::string& shape, const char* kernels,
                 const Status& cpu_status, const Status& gpu_status, const std::vector<float>& got,
                 const std::vector<float>& ref);

void test_linear(const std::vector<Backends>& sets, const char* label, const LinearCase& c) {
  char shape[128];
  std::snprintf(shape, sizeof shape, "%s %dx%d<-%d%s%s%s", label, c.m, c.n, c.k,
                c.silu_in ? " silu_in" : "", c.silu_out ? " silu_out" : "", c.add ? " add" : "");
  if (!selected(std::string("linear ") + shape)) return;
  auto x = randn(static_cast<size_t>(c.m) * c.k, 2.0f);
  auto w = uniform(static_cast<size_t>(c.n) * c.k, -1.0f / std::sqrt(c.k), 1.0f / std::sqrt(c.k));
  auto bias = randn(c.n, 0.1f);
  auto add = randn(static_cast<size_t>(c.m) * c.n);
  Status cs;
  auto ref = run_linear(sets[0].cpu, c, x, w, bias, add, &cs);
  std::vector<float> first;  // the first set's output
  Status first_status;
  for (const Backends& b : sets) {  // the time path: fp32 in every mode
    Status gs;
    auto got = run_linear(b.gpu, c, x, w, bias, add, &gs);
    report("linear", shape, b.kernels, cs, gs, got, ref, kBoundF32);
    // The one-row and the row-tile kernels (default and candidate sets) sum each output in
    // the same order.
    if (&b == &sets[0]) {
      first = got;
      first_status = gs;
    } else {
      report_bits("linear = 1st set", shape, b.kernels, first_status, gs, got, first);
    }
  }
}

// ---- resampling and embeddings ----------------------------------------------------------
void test_resample(const std::vector<Backends>& sets, bool pool, int batch, int channels, int h,
                   int w) {
  char shape[128];
  std::snprintf(shape, sizeof shape, "b%d c%d %dx%d", batch, channels, h, w);
  const char* op = pool ? "avg_pool2" : "upsample_nearest2";
  if (!selected(std::string(op) + " " + shape)) return;
  auto x = randn(static_cast<size_t>(batch) * channels * h * w);
  const ActShape in_shape{batch, channels, h, w};
  const ActShape out_shape = pool ? ActShape{batch, channels, h / 2, w / 2}
                                  : ActShape{batch, channels, 2 * h, 2 * w};
  auto run = [&](Backend* be, size_t eb, Status* s) {
    Buf bx(be, in_shape, x, eb), y(be, out_shape, eb);
    y.poison();
    *s = pool ? be->avg_pool2(bx.p, y.p, batch, channels, h, w)
              : be->upsample_nearest2(bx.p, y.p, batch, channels, h, w);
    if (s->ok()) *s = be->synchronize();
    return y.get();
  };
  Status cs;
  auto ref = run(sets[0].cpu, sizeof(float), &cs);
  for (const Backends& b : sets) {
    Status gs;
    auto got = run(b.gpu, b.act_bytes(), &gs);
    // Pooling may sum the four values in another order; upsampling is a copy (of values
    // rounded on upload in the NHWC mode).
    report(op, shape, b.kernels, cs, gs, got, ref, b.op_bound(pool ? kBoundF32 : 0.0));
  }
}

void test_timestep_embedding(const std::vector<Backends>& sets, int batch, int dim, bool flip,
                             float shift) {
  char shape[128];
  std::snprintf(shape, sizeof shape, "b%d dim%d flip%d shift%g", batch, dim, flip ? 1 : 0,
                shift);
  if (!selected(std::string("timestep_embedding ") + shape)) return;
  // The timesteps consistency models use: 1000 * 0.25 * ln(sigma), sigma in [0.002, 80].
  std::vector<float> t(batch);
  std::uniform_real_distribution<double> u(std::log(0.002), std::log(80.0));
  for (auto& v : t) v = static_cast<float>(250.0 * u(g_rng));
  auto run = [&](Backend* be, Status* s) {
    Buf bt(be, t), emb(be, static_cast<size_t>(batch) * dim);
    emb.poison();
    *s = be->timestep_embedding(bt.p, emb.p, batch, dim, flip, shift);
    if (s->ok()) *s = be->synchronize();
    return emb.get();
  };
  Status cs;
  auto ref = run(sets[0].cpu, &cs);
  for (const Backends& b : sets) {
    Status gs;
    auto got = run(b.gpu, &gs);
    report("timestep_embedding", shape, b.kernels, cs, gs, got, ref, kBoundF32);
  }
}

void test_embedding_lookup(const std::vector<Backends>& sets, int batch, int classes, int dim) {
  char shape[128];
  std::snprintf(shape, sizeof shape, "b%d table %dx%d", batch, classes, dim);
  if (!selected(std::string("embedding_lookup ") + shape)) return;
  auto table = randn(static_cast<size_t>(classes) * dim);
  std::vector<int64_t> labels(batch);
  std::uniform_int_distribution<int64_t> u(0, classes - 1);
  for (auto& l : labels) l = u(g_rng);
  labels[0] = classes - 1;  // the last row too
  auto run = [&](Backend* be, Status* s) {
    Buf bt(be, table), rows(be, static_cast<size_t>(batch) * dim);
    rows.poison();
    *s = be->embedding_lookup(bt.p, labels.data(), rows.p, batch, dim);
    if (s->ok()) *s = be->synchronize();
    return rows.get();
  };
  Status cs;
  auto ref = run(sets[0].cpu, &cs);
  for (const Backends& b : sets) {
    Status gs;
    auto got = run(b.gpu, &gs);
    report("embedding_lookup", shape, b.kernels, cs, gs, got, ref, 0.0);
  }
}

// ---- the scheduler's step ---------------------------------------------------------------
// Bit for bit the CPU backend's (every NaN equal to every NaN): both round each operation
// as the Java scheduler does. Random data, and edge values (NaN, infinities, signed zeros,
// +-1 and neighbours, subnormals, overflowing products, a NaN noise scale).
void report_bits(const std::string& op, const std::string& shape, const char* kernels,
                 const Status& cpu_status, const Status& gpu_status, const std::vector<float>& got,
                 const std::vector<float>& ref) {
  ++g_cases;
  int64_t at = -1;
  bool ok = cpu_status.ok() && gpu_status.ok();
  if (ok) {
    at = first_difference(got.data(), ref.data(), ref.size());
    ok = at < 0;
  }
  if (!ok) ++g_failures;
  std::printf("| %-18s | %-44s | %-9s | %10s | %10s | %7s | %-4s |\n", op.c_str(), shape.c_str(),
              kernels, "bitwise", ok ? "same" : "differs", "exact", ok ? "ok" : "FAIL");
  if (!cpu_status.ok()) std::printf("    cpu: %s\n", cpu_status.message.c_str());
  if (!gpu_status.ok()) std::printf("    cuda: %s\n", gpu_status.message.c_str());
  if (at >= 0)
    std::printf("    element %lld: cuda %a, cpu %a\n", static_cast<long long>(at), got[at], ref[at]);
}

// Every (model_output, sample) pair of these, for several per-image scalars.
std::vector<float> special_values() {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const float max = std::numeric_limits<float>::max();
  const float tiny = std::numeric_limits<float>::denorm_min();
  return {0.0f, -0.0f, 1.0f, -1.0f, std::nextafter(1.0f, 2.0f), std::nextafter(-1.0f, -2.0f),
          std::nextafter(1.0f, 0.0f), inf, -inf, nan, max, -max, tiny, -tiny, 0.5f, -7.25f, 1e30f};
}

void test_scheduler_step(const Backends& be, bool edge, int batch, int64_t image, bool clip,
                         bool noise, float s_noise) {
  char shape[128];
  std::snprintf(shape, sizeof shape, "%s b%d n%lld%s%s s_noise %g", edge ? "edge" : "random",
                batch, static_cast<long long>(image), clip ? " clip" : "",
                noise ? " noise" : "", s_noise);
  if (!selected(std::string("scheduler_step ") + shape)) return;
  const size_t n = static_cast<size_t>(batch) * image;
  std::vector<float> model_output = randn(n), sample = randn(n, 20.0f), z = randn(n);
  std::vector<float> c_skip = uniform(batch, 0.0f, 1.0f), c_out = uniform(batch, 0.0f, 0.5f);
  std::vector<float> noise_scale = uniform(batch, 0.0f, 80.0f);
  if (edge) {  // the specials in every position; scalars that overflow, vanish, are inf or NaN
    const std::vector<float> v = special_values();
    const float specials[][3] = {{1e30f, 1e30f, std::numeric_limits<float>::quiet_NaN()},
                                 {0.0f, -0.0f, 0.0f},
                                 {std::numeric_limits<float>::infinity(), 1.0f, 1e-30f}};
    for (size_t i = 0; i < n; ++i) {
      model_output[i] = v[i % v.size()];
      sample[i] = v[(i / v.size()) % v.size()];
      z[i] = v[(i * 7 + 3) % v.size()];
    }
    for (int b = 0; b < batch && b < 3; ++b) {
      c_skip[b] = specials[b][0];
      c_out[b] = specials[b][1];
      noise_scale[b] = specials[b][2];
    }
  }
  auto run = [&](Backend* backend, Status* s) {
    Buf bo(backend, model_output), bx(backend, sample), bz(backend, z), bs(backend, c_skip),
        bc(backend, c_out), bn(backend, noise_scale), prev(backend, n);
    prev.poison();
    SchedulerStepParams p;
    p.batch = batch;
    p.image = image;
    p.clip = clip;
    p.s_noise = s_noise;
    SchedulerStepArgs a;
    a.model_output = bo.p;
    a.sample = bx.p;
    a.noise = noise ? bz.p : nullptr;
    a.c_skip = bs.p;
    a.c_out = bc.p;
    a.noise_scale = bn.p;
    a.prev = prev.p;
    *s = backend->scheduler_step(p, a);
    if (s->ok()) *s = backend->synchronize();
    return prev.get();
  };
  Status cs, gs;
  auto ref = run(be.cpu, &cs);
  auto got = run(be.gpu, &gs);
  report_bits("scheduler_step", shape, be.kernels, cs, gs, got, ref);
}

// The editing loop's step: the denoised d and the next sample, bit for bit the CPU
// backend's, for every replacement, with and without noise; edge values as above.
void test_edit_step(const Backends& be, bool edge, EditReplacement replacement, int batch,
                    int size, int patch, bool noise) {
  const char* names[] = {"none", "inpaint", "colorize", "superres"};
  char shape[128];
  std::snprintf(shape, sizeof shape, "%s %s b%d 3x%dx%d p%d%s", edge ? "edge" : "random",
                names[static_cast<int>(replacement)], batch, size, size, patch,
                noise ? " noise" : "");
  if (!selected(std::string("edit_step ") + shape)) return;
  const size_t plane = static_cast<size_t>(size) * size, n = batch * 3 * plane;
  std::vector<float> model_output = randn(n), sample = randn(n, 20.0f), z = randn(n);
  std::vector<float> reference = uniform(n, -1.0f, 1.0f), mask = uniform(batch * plane, 0, 1);
  for (float& m : mask) m = m < 0.5f ? 0.0f : 1.0f;
  std::vector<float> c_skip = uniform(batch, 0.0f, 1.0f), c_out = uniform(batch, 0.0f, 0.5f);
  std::vector<float> noise_scale = uniform(batch, 0.0f, 80.0f);
  if (edge) {
    const std::vector<float> v = special_values();
    for (size_t i = 0; i < n; ++i) {
      model_output[i] = v[i % v.size()];
      sample[i] = v[(i / v.size()) % v.size()];
      reference[i] = v[(i * 5 + 1) % v.size()];
      z[i] = v[(i * 7 + 3) % v.size()];
    }
  }
  auto run = [&](Backend* backend, Status* s) {
    const size_t cells = patch > 0 ? size / patch : 1;
    Buf bo(backend, model_output), bx(backend, sample), by(backend, reference),
        bm(backend, mask), bz(backend, z), bs(backend, c_skip), bc(backend, c_out),
        bn(backend, noise_scale), work(backend, batch * 3 * cells * cells);
    EditStepParams p;
    p.batch = batch;
    p.channels = 3;
    p.size = size;
    p.replacement = replacement;
    p.patch = patch;
    EditStepArgs a;
    a.model_output = bo.p;
    a.sample = bx.p;
    a.reference = replacement == EditReplacement::kNone ? nullptr : by.p;
    a.mask_keep = bm.p;
    a.noise = noise ? bz.p : nullptr;
    a.c_skip = bs.p;
    a.c_out = bc.p;
    a.noise_scale = bn.p;
    a.workspace = work.p;
    *s = backend->edit_step(p, a);
    if (s->ok()) *s = backend->synchronize();
    std::vector<float> out = bo.get(), next = bx.get();
    out.insert(out.end(), next.begin(), next.end());
    return out;
  };
  Status cs, gs;
  auto ref = run(be.cpu, &cs);
  auto got = run(be.gpu, &gs);
  report_bits("edit_step", shape, be.kernels, cs, gs, got, ref);
}

void test_scale_model_input(const Backends& be, bool edge, int batch, int64_t image) {
  char shape[128];
  std::snprintf(shape, sizeof shape, "%s b%d n%lld", edge ? "edge" : "random", batch,
                static_cast<long long>(image));
  if (!selected(std::string("scale_model_input ") + shape)) return;
  const size_t n = static_cast<size_t>(batch) * image;
  std::vector<float> x = randn(n, 80.0f), divisor = uniform(batch, 0.5f, 80.0f);
  if (edge) {
    const std::vector<float> v = special_values();
    for (size_t i = 0; i < n; ++i) x[i] = v[i % v.size()];
    const float d[] = {0.0f, -0.0f, std::numeric_limits<float>::infinity(),
                       std::numeric_limits<float>::quiet_NaN(), 1e-38f};
    for (int b = 0; b < batch && b < 5; ++b) divisor[b] = d[b];
  }
  auto run = [&](Backend* backend, Status* s) {
    Buf bx(backend, x), bd(backend, divisor), y(backend, n);
    y.poison();
    *s = backend->scale_model_input(bx.p, bd.p, y.p, batch, image);
    if (s->ok()) *s = backend->synchronize();
    return y.get();
  };
  Status cs, gs;
  auto ref = run(be.cpu, &cs);
  auto got = run(be.gpu, &gs);
  report_bits("scale_model_input", shape, be.kernels, cs, gs, got, ref);
}

// ---- time embedding ---------------------------------------------------------------------
struct TimeCase {
  int batch, channels, dim, classes;  // classes 0: no class embedding
  bool flip;
  float shift;
};

void test_time_embedding(const Backends& b, const char* label, const TimeCase& c) {
  char shape[128];
  std::snprintf(shape, sizeof shape, "%s b%d %d>%d %s flip%d shift%g", label, c.batch, c.channels,
                c.dim, c.classes ? "labels" : "no labels", c.flip ? 1 : 0, c.shift);
  if (!selected(std::string("time_embedding ") + shape)) return;
  std::vector<float> t(c.batch);
  std::uniform_real_distribution<double> u(std::log(0.002), std::log(80.0));
  for (auto& v : t) v = static_cast<float>(250.0 * u(g_rng));
  auto w1 = uniform(static_cast<size_t>(c.dim) * c.channels, -1.0f / std::sqrt(c.channels),
                    1.0f / std::sqrt(c.channels));
  auto b1 = randn(c.dim, 0.1f);
  auto w2 = uniform(static_cast<size_t>(c.dim) * c.dim, -1.0f / std::sqrt(c.dim),
                    1.0f / std::sqrt(c.dim));
  auto b2 = randn(c.dim, 0.1f);
  auto table = randn(static_cast<size_t>(c.classes > 0 ? c.classes : 1) * c.dim);
  std::vector<int64_t> labels(c.batch);
  std::uniform_int_distribution<int> pick(0, c.classes > 0 ? c.classes - 1 : 0);
  for (auto& l : labels) l = pick(g_rng);
  auto run = [&](Backend* be, Status* s) -> std::vector<float> {
    TimeEmbeddingParams p;
    p.batch = c.batch;
    p.channels = c.channels;
    p.dim = c.dim;
    p.flip_sin_to_cos = c.flip;
    p.freq_shift = c.shift;
    std::unique_ptr<Weight> lw1, lw2;
    *s = be->prepare_linear(w1.data(), c.dim, c.channels, &lw1);
    if (s->ok()) *s = be->prepare_linear(w2.data(), c.dim, c.dim, &lw2);
    if (!s->ok()) return {};
    Buf bt(be, t), bb1(be, b1), bb2(be, b2), btable(be, table);
    Buf emb(be, static_cast<size_t>(c.batch) * c.dim);
    Buf work(be, static_cast<size_t>(c.batch) * (c.channels + 2 * c.dim));
    emb.poison();
    work.poison();
    TimeEmbeddingArgs a;
    a.t = bt.p;
    a.linear_1 = lw1.get();
    a.bias_1 = bb1.p;
    a.linear_2 = lw2.get();
    a.bias_2 = bb2.p;
    if (c.classes > 0) {
      a.class_table = btable.p;
      a.class_labels = labels.data();
    }
    a.workspace = work.p;
    a.emb = emb.p;
    *s = be->time_embedding(p, a);
    if (s->ok()) *s = be->synchronize();
    return emb.get();
  };
  Status cs, gs;
  auto ref = run(b.cpu, &cs);
  auto got = run(b.gpu, &gs);
  report("time_embedding", shape, b.kernels, cs, gs, got, ref, kBoundF32);
}

// A CUDA backend with the kernel set named as CM4J_CUDA_KERNELS names it.
#ifdef CM4J_HAVE_CUDA
std::unique_ptr<Backend> make_gpu(const char* kernel_set, int dtype, std::string* error) {
  CudaKernels set = CudaKernels::kDefault;
  if (!parse_cuda_kernels(kernel_set, &set)) {
    *error = std::string("unknown kernel set ") + kernel_set;
    return nullptr;
  }
  return make_cuda_backend_with(0, dtype, set, error);
}
#else
std::unique_ptr<Backend> make_gpu(const char*, int dtype, std::string* error) {
  return make_cuda_backend(0, dtype, error);
}
#endif

// ---- errors -----------------------------------------------------------------------------
// A mismatched call comes back as a status with a message, and the backend keeps working.
void test_error_paths(const std::vector<Backends>& sets) {
  if (!selected("errors")) return;
  const Backends& b = sets[0];
  ++g_cases;
  bool ok = true;
  std::vector<float> w(8 * 4 * 9, 0.1f);
  std::unique_ptr<Weight> weight;
  Status s = b.gpu->prepare_conv(w.data(), 8, 4, 3, &weight);
  ok = ok && s.ok();
  ConvParams p;
  p.c_in1 = 5;  // weight has 4 input channels
  p.h_in = p.w_in = 4;
  p.c_out = 8;
  Buf src(b.gpu, 5 * 16), dst(b.gpu, 8 * 16);
  ConvArgs a;
  a.src1 = src.p;
  a.weight = weight.get();
  a.dst = dst.p;
  s = b.gpu->conv2d(p, a);
  std::printf("    mismatched conv: code %d, \"%s\"\n", s.code, s.message.c_str());
  ok = ok && s.code == CM4J_ERR_INVALID_ARGUMENT && !s.message.empty();
  float* huge = nullptr;
  s = b.gpu->alloc(static_cast<size_t>(1) << 50, &huge);  // 1 PiB
  std::printf("    1 PiB alloc: code %d, \"%s\"\n", s.code, s.message.c_str());
  ok = ok && !s.ok() && huge == nullptr && s.message.find("CUDA error in alloc") == 0;
#ifdef CM4J_HAVE_CUDA  // (without it there is no device, and this case never runs)
  // The editing step's launcher refuses on its own what edit_step_problem refuses.
  kernels::EditStepParams e;
  e.channels = 3;
  e.size = 4;
  e.model_output = e.sample = e.workspace = src.p;
  e.c_skip = e.c_out = e.noise_scale = e.reference = src.p;
  e.replacement = 3;  // superres
  e.patch = 0;
  ok = ok && kernels::edit_step_forward(e, nullptr) == cudaErrorInvalidValue;
  e.patch = 3;  // does not divide 4
  ok = ok && kernels::edit_step_forward(e, nullptr) == cudaErrorInvalidValue;
  e.replacement = 1;  // inpaint without a mask
  ok = ok && kernels::edit_step_forward(e, nullptr) == cudaErrorInvalidValue;
#endif
  s = b.gpu->synchronize();
  ok = ok && s.ok();
  if (!ok) ++g_failures;
  std::printf("| %-18s | %-44s | %-9s | %10s | %10s | %7s | %-4s |\n", "errors",
              "bad conv, edit_step calls, 1 PiB alloc, sync", b.kernels, "-", "-", "-",
              ok ? "ok" : "FAIL");
}

}  // namespace

int main() {
  std::string why;
  int devices = cuda_device_count(&why);
  if (devices == 0) {
    std::printf("test_cuda_ops: skipped: %s\n", why.c_str());
    return 77;
  }
  g_filter = std::getenv("CM4J_TEST_FILTER");
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("CM4J_TEST_SEED")) seed = std::strtoull(s, nullptr, 10);
  g_rng.seed(seed);
  std::printf("test_cuda_ops: seed %llu (CM4J_TEST_SEED=%llu repeats this run)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));

  // Every case runs on each set of its list: conv on conv_sets, the other ops on `def`.
  const char* env_set = std::getenv("CM4J_CUDA_KERNELS");
  const bool candidate = env_set && std::strcmp(env_set, "candidate") == 0;
  auto cpu = make_cpu_backend(0, CM4J_F32);
  std::vector<std::unique_ptr<Backend>> gpus;
  std::vector<Backends> conv_sets, def;
  std::string errors;
  auto add = [&](const char* kernel_set, int dtype, const char* label, double conv_bound,
                 bool nhwc) {
    std::string e;
    gpus.push_back(make_gpu(kernel_set, dtype, &e));
    if (!gpus.back()) errors += std::string(" ") + label + ": " + e + ";";
    return Backends{cpu.get(), gpus.back().get(), label, conv_bound, nhwc};
  };
  if (!candidate) {
    // Built, then moved in: g++ 12 warns (-Wnonnull, wrongly) on assigning a brace list.
    def = std::vector<Backends>{add("default", CM4J_F32, "default", kBoundF32, false)};
    conv_sets = std::vector<Backends>{def[0],
                                      add("reference", CM4J_F32, "reference", kBoundF32, false),
                                      add("default", CM4J_F16, "fp16-tc", 2e-3, false),
                                      add("default", CM4J_BF16, "bf16-tc", 1.5e-2, false)};
  } else {  // the NHWC mode: fp16/bf16 activations, every op in that storage
    def = std::vector<Backends>{add("candidate", CM4J_F16, "fp16-nhwc", 2e-3, true),
                                add("candidate", CM4J_BF16, "bf16-nhwc", 1.5e-2, true)};
    conv_sets = def;
  }
  // The fp32 candidate set: its time path is one kernel (time_embedding.cu).
  const Backends cand32 =
      candidate ? def[0] : add("candidate", CM4J_F32, "candidate", kBoundF32, false);
  if (!cpu || !errors.empty()) {
    std::printf("test_cuda_ops: FAIL: cannot create backends: cpu %s; cuda:%s\n",
                cpu ? "ok" : "missing", errors.c_str());
    return 1;
  }
  std::printf("test_cuda_ops: kernel sets:");
  for (const Backends& b : conv_sets) std::printf(" %s", b.kernels);
  std::printf("\n");

  std::printf("| %-18s | %-44s | %-9s | %10s | %10s | %7s | %-4s |\n", "op", "case", "kernels",
              "rel L2", "max abs", "bound", "ok");
  std::printf("|%s|%s|%s|%s|%s|%s|%s|\n", std::string(20, '-').c_str(),
              std::string(46, '-').c_str(), std::string(11, '-').c_str(),
              std::string(12, '-').c_str(), std::string(12, '-').c_str(),
              std::string(9, '-').c_str(), std::string(6, '-').c_str());

  // conv2d: imagenet64 (block_out_channels 192/384/576/768), then edge cases.
  //                                 b  c1   c2   h   w   co   k  s  p  up     bias  bbc    res    scale
  test_conv(conv_sets, "conv_in",        {2, 3,   0,   64, 64, 192, 3, 1, 1, false, true, false, false, 1.0f});
  test_conv(conv_sets, "res0 conv",      {2, 192, 0,   64, 64, 192, 3, 1, 1, false, true, true,  true,  1.0f});
  test_conv(conv_sets, "down1 conv1",    {2, 192, 0,   32, 32, 384, 3, 1, 1, false, true, false, false, 1.0f});
  test_conv(conv_sets, "down1 short",    {2, 192, 0,   32, 32, 384, 1, 1, 0, false, true, false, true,  1.0f});
  test_conv(conv_sets, "down2 conv1",    {2, 384, 0,   16, 16, 576, 3, 1, 1, false, true, false, false, 1.0f});
  test_conv(conv_sets, "mid conv",       {2, 768, 0,   8,  8,  768, 3, 1, 1, false, true, true,  true,  0.5f});
  test_conv(conv_sets, "up0 cat conv",   {2, 768, 768, 8,  8,  768, 3, 1, 1, false, true, false, false, 1.0f});
  test_conv(conv_sets, "up0 cat short",  {2, 768, 768, 8,  8,  768, 1, 1, 0, false, true, false, true,  1.0f});
  test_conv(conv_sets, "up cat+upsample",{1, 768, 384, 16, 16, 384, 3, 1, 1, true,  true, true,  false, 1.0f});
  test_conv(conv_sets, "up3 cat conv",   {1, 384, 192, 64, 64, 192, 3, 1, 1, false, true, false, false, 1.0f});
  test_conv(conv_sets, "upsample conv",  {2, 576, 0,   16, 16, 576, 3, 1, 1, true,  true, false, false, 1.0f});
  test_conv(conv_sets, "stride2",        {2, 192, 0,   64, 64, 192, 3, 2, 1, false, true, false, false, 1.0f});
  test_conv(conv_sets, "conv_out",       {2, 192, 0,   64, 64, 3,   3, 1, 1, false, true, false, false, 1.0f});
  test_conv(conv_sets, "tiny up",        {3, 64,  32,  16, 16, 32,  3, 1, 1, true,  true, true,  true,  1.0f});
  test_conv(conv_sets, "odd all",        {3, 5,   3,   9,  7,  7,   3, 1, 1, true,  true, true,  true,  0.7f});
  test_conv(conv_sets, "odd s2 1x1",     {2, 6,   0,   9,  11, 70,  1, 2, 0, false, false, true, false, 1.0f});
  test_conv(conv_sets, "odd s2 nopad",   {1, 4,   3,   5,  5,  65,  3, 2, 0, true,  true, false, true,  2.0f});
  // conv1 of a "default" resnet reading its columns of the fused time_emb_proj output.
  test_conv_bias_slice(conv_sets, "lsun conv1", {2, 64, 0, 16, 16, 128, 3, 1, 1, false, true, true, false, 1.0f},
                       224, 1000);
  test_conv_bias_slice(conv_sets, "odd conv1", {3, 5, 0, 9, 7, 70, 3, 1, 1, false, true, true, true, 1.0f},
                       13, 97);

  // group_norm: 32 groups everywhere; scale_shift + SiLU as in resnets' norm2.
  // The up path normalizes cat(h, skip) from its two buffers; groups straddle the seam
  // (1152 = 32 x 36 channels, seam at 768 inside group 21).
  //                           b  C     HW    g   ss     silu   inplace c1
  test_norm(def, "norm1",     {2, 192,  4096, 32, false, true,  false,  0});
  test_norm(def, "norm2",     {2, 384,  1024, 32, true,  true,  false,  0});
  test_norm(def, "attn norm", {2, 576,  256,  32, false, false, false,  0});
  test_norm(def, "mid norm",  {2, 768,  64,   32, true,  true,  true,   0});
  test_norm(def, "cat norm",  {1, 1152, 1024, 32, false, true,  false,  768});
  test_norm(def, "cat norm",  {2, 1536, 64,   32, false, true,  false,  768});
  test_norm(def, "cat norm",  {2, 576,  4096, 32, false, true,  false,  384});
  test_norm(def, "tiny",      {3, 32,   1024, 32, true,  true,  false,  0});
  test_norm(def, "tiny cat",  {3, 96,   256,  32, false, true,  false,  64});
  test_norm(def, "odd",       {3, 12,   37,   4,  true,  false, false,  0});
  test_norm(def, "odd cat",   {3, 12,   37,   4,  true,  true,  false,  5});

  // A group norm fused into the conv reading it, where the NHWC mode fuses (imagenet64's
  // resnet norm1 -> conv1 and norm2 -> conv2 (scale/shift, residual), the up path's cat,
  // an upsampling resnet's conv1, the attention norm -> qkv; the tiny model's cat).
  //                                   b  c1   c2   h   w   co    k  s  p  up     bias bbc    res    scale  ss     silu
  test_norm_conv(conv_sets, "res0 conv1", {1, 192, 0,   64, 64, 192,  3, 1, 1, false, true, false, false, 1.0f}, false, true);
  test_norm_conv(conv_sets, "down2 conv2",{2, 576, 0,   16, 16, 576,  3, 1, 1, false, true, false, true,  1.0f}, true,  true);
  test_norm_conv(conv_sets, "up0 cat conv",{2, 768, 768, 8,  8,  768,  3, 1, 1, false, true, false, false, 1.0f}, false, true);
  test_norm_conv(conv_sets, "up conv1",   {1, 768, 0,   8,  8,  768,  3, 1, 1, true,  true, false, false, 1.0f}, false, true);
  test_norm_conv(conv_sets, "attn qkv",   {2, 576, 0,   16, 16, 1728, 1, 1, 0, false, true, false, false, 1.0f}, false, false);
  test_norm_conv(conv_sets, "tiny cat",   {3, 64,  32,  16, 16, 32,   3, 1, 1, false, true, false, false, 1.0f}, false, true);

  // attention: imagenet64 head dim 64 at 32x32, 16x16, 8x8 (down, mid and up blocks);
  // lsun_mini head dim 64 at 8x8 (64 channels), 4x4 and 2x2 (128; the mid block too): fewer
  // keys than one 64-key tile; tiny head dim 8. Head dim 64 runs attention_nhwc_mma.cu in
  // the NHWC mode.
  test_attn(def, "down1", {2, 384, 1024, 64});
  test_attn(def, "down2", {2, 576, 256, 64});
  test_attn(def, "mid", {2, 768, 64, 64});
  test_attn(def, "lsun 8x8", {2, 64, 64, 64});
  test_attn(def, "lsun 4x4", {2, 128, 16, 64});
  test_attn(def, "lsun 2x2", {2, 128, 4, 64});
  test_attn(def, "tiny", {3, 64, 256, 8});
  test_attn(def, "odd", {2, 48, 100, 16});
  test_attn(def, "odd2", {1, 96, 200, 32});
  test_attn(def, "odd dh64", {1, 128, 72, 64});

  // linear: the time path (time_embedding.linear_1/2, class add, time_emb_proj).
  // linear on every set and the fp32 candidate set (row tiles where the default's kernel
  // takes one row per block): each output's bits alike.
  std::vector<Backends> linear_sets = def;
  if (!candidate) linear_sets.push_back(cand32);
  test_linear(linear_sets, "linear_1", {2, 768, 192, false, true, true, false});
  test_linear(linear_sets, "linear_2", {2, 768, 768, false, false, true, true});
  test_linear(linear_sets, "emb_proj", {2, 1536, 768, true, false, true, false});
  test_linear(linear_sets, "batch64", {64, 768, 768, true, false, true, false});
  test_linear(linear_sets, "odd", {3, 37, 45, true, true, false, true});
  test_linear(linear_sets, "tile tail", {13, 40, 70, true, false, true, true});

  test_resample(def, true, 2, 192, 64, 64);
  test_resample(def, true, 2, 768, 16, 16);
  test_resample(def, true, 3, 5, 7, 9);
  test_resample(def, false, 2, 768, 8, 8);
  test_resample(def, false, 2, 384, 32, 32);
  test_resample(def, false, 3, 5, 7, 9);

  test_timestep_embedding(def, 64, 192, true, 0.0f);
  test_timestep_embedding(def, 3, 32, true, 0.0f);
  test_timestep_embedding(def, 5, 33, false, 1.0f);
  test_embedding_lookup(def, 64, 1000, 768);
  test_embedding_lookup(def, 3, 1000, 128);

  // The scheduler's step (fp32 buffers in every mode): imagenet64 images at batch 64, tiny
  // ones, odd sizes.
  for (const Backends& b : def) {
    test_scheduler_step(b, false, 64, 3 * 64 * 64, true, true, 1.0f);
    test_scheduler_step(b, false, 3, 3 * 32 * 32, false, true, 0.9f);
    test_scheduler_step(b, false, 3, 3 * 32 * 32, true, false, 1.0f);
    test_scheduler_step(b, true, 6, 17 * 17 + 5, true, true, 1.0f);
    test_scheduler_step(b, true, 6, 17 * 17 + 5, false, true, -0.5f);
    test_scale_model_input(b, false, 64, 3 * 64 * 64);
    test_scale_model_input(b, false, 3, 37);
    test_scale_model_input(b, true, 6, 17 * 3);
    for (EditReplacement r : {EditReplacement::kNone, EditReplacement::kInpaint,
                              EditReplacement::kColorize, EditReplacement::kSuperres}) {
      test_edit_step(b, false, r, 3, 32, 8, true);
      test_edit_step(b, false, r, 2, 12, 4, false);
      test_edit_step(b, true, r, 2, 18, 3, true);
    }
    test_edit_step(b, false, EditReplacement::kSuperres, 4, 64, 8, true);
  }

  // The whole time path (Backend::time_embedding): default composes four launches, the
  // candidate set runs one kernel. Sinusoid width / time_embed_dim of imagenet64, LSUN-256
  // and tiny, with and without class labels, batch 1 and 3.
  std::vector<Backends> time_sets = def;
  if (!candidate) time_sets.push_back(cand32);
  for (const Backends& b : time_sets)
    for (int batch : {1, 3})
      for (int classes : {1000, 0}) {
        test_time_embedding(b, "imagenet64", {batch, 192, 768, classes, true, 0.0f});
        test_time_embedding(b, "lsun", {batch, 256, 1024, classes, true, 0.0f});
        test_time_embedding(b, "tiny", {batch, 32, 128, classes, true, 0.0f});
      }
  test_time_embedding(cand32, "odd", {5, 33, 70, 7, false, 1.0f});
  test_time_embedding(cand32, "batch64", {64, 192, 768, 1000, true, 0.0f});

  test_error_paths(def);

  std::printf("test_cuda_ops: %d case(s), %d failed (seed %llu)\n", g_cases, g_failures,
              static_cast<unsigned long long>(seed));
  return g_failures ? 1 : 0;
}

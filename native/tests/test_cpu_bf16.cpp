// The CPU backend's bf16 mode (make_cpu_backend(threads, CM4J_BF16)) on every bf16 path
// this machine has (amx, avx512bf16, generic; forced through CM4J_CPU_ISA, skipped when
// the CPU lacks it). conv2d against two double-precision references:
//   exact:   the float32 operands                        -> rel L2 <= 1e-2 (bf16 rounding of
//            weights and activations: ~2^-9 relative per operand, observed ~3e-3);
//   rounded: the operands rounded to bf16 (RNE) first    -> rel L2 <= 1e-5 (only fp32
//            accumulation order differs: checks the kernels, packing and epilogue exactly).
// rel L2 = ||out - ref|| / ||ref||. Outputs are NaN-poisoned before each run. The shapes
// cover K not a multiple of 32 (c_in 3), several k-blocks (K > 768), c_out not a multiple
// of 32, partial column panels, stride 2, upsample, a concatenated second source, per-image
// bias, residual and output scale, the real model's 1x1 qkv shape, and the ways the AMX
// direct conv (conv_direct16.h) cuts an image into 16-position halves. Attention (bf16
// Q.K and P.V, fp32 softmax) against the fp32 backend: rel L2 <= 1e-2 (observed ~3e-3).
// A group norm fused into the conv it feeds (ConvArgs::norm) against group_norm then conv2d:
// bit for bit the same output where the path fuses (conv_fuses_norm), refused where not.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend.h"
#include "cm4j.h"

using namespace cm4j;

namespace {

int g_failures = 0;
constexpr double kBoundExact = 1e-2;
constexpr double kBoundRounded = 1e-5;

float round_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  u &= 0xFFFF0000u;
  std::memcpy(&f, &u, 4);
  return f;
}

std::vector<float> random_vector(size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

struct Case {
  int batch, c1, c2, h, w, c_out, kernel, stride;
  bool upsample, bias_bc, residual;
  float scale;
};

// out[b, co, oy, ox] in double from (possibly rounded) operands; bias terms exact.
std::vector<double> reference(const ConvParams& p, const std::vector<float>& s1,
                              const std::vector<float>& s2, const std::vector<float>& w,
                              const std::vector<float>& bias, const std::vector<float>& bias_bc,
                              const std::vector<float>& res, bool round) {
  const int ho = p.h_out(), wo = p.w_out(), c_in = p.c_in1 + p.c_in2;
  const int hv = p.upsample ? 2 * p.h_in : p.h_in, wv = p.upsample ? 2 * p.w_in : p.w_in;
  const auto r = [round](float v) { return static_cast<double>(round ? round_bf16(v) : v); };
  std::vector<double> out(static_cast<size_t>(p.batch) * p.c_out * ho * wo);
  for (int b = 0; b < p.batch; ++b)
    for (int co = 0; co < p.c_out; ++co)
      for (int oy = 0; oy < ho; ++oy)
        for (int ox = 0; ox < wo; ++ox) {
          double acc = 0;
          for (int c = 0; c < c_in; ++c)
            for (int ky = 0; ky < p.kernel; ++ky)
              for (int kx = 0; kx < p.kernel; ++kx) {
                const int iy = oy * p.stride + ky - p.pad, ix = ox * p.stride + kx - p.pad;
                if (iy < 0 || iy >= hv || ix < 0 || ix >= wv) continue;
                const int sy = p.upsample ? iy / 2 : iy, sx = p.upsample ? ix / 2 : ix;
                const float x =
                    c < p.c_in1
                        ? s1[((static_cast<size_t>(b) * p.c_in1 + c) * p.h_in + sy) * p.w_in + sx]
                        : s2[((static_cast<size_t>(b) * p.c_in2 + c - p.c_in1) * p.h_in + sy) * p.w_in + sx];
                acc += r(w[((static_cast<size_t>(co) * c_in + c) * p.kernel + ky) * p.kernel + kx]) * r(x);
              }
          acc += bias[co];
          if (!bias_bc.empty()) acc += bias_bc[static_cast<size_t>(b) * p.c_out + co];
          const size_t at = ((static_cast<size_t>(b) * p.c_out + co) * ho + oy) * wo + ox;
          if (!res.empty()) acc += res[at];
          out[at] = acc * p.out_scale;
        }
  return out;
}

double rel_l2(const std::vector<float>& a, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = a[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / (den > 0 ? den : 1));
}

void test_conv(Backend& be, const Case& cc, std::mt19937& rng) {
  ConvParams p;
  p.batch = cc.batch;
  p.c_in1 = cc.c1;
  p.c_in2 = cc.c2;
  p.h_in = cc.h;
  p.w_in = cc.w;
  p.c_out = cc.c_out;
  p.kernel = cc.kernel;
  p.pad = cc.kernel == 3 ? 1 : 0;
  p.stride = cc.stride;
  p.upsample = cc.upsample;
  p.out_scale = cc.scale;
  const int c_in = cc.c1 + cc.c2;
  const size_t out_n = static_cast<size_t>(p.batch) * p.c_out * p.h_out() * p.w_out();
  auto s1 = random_vector(static_cast<size_t>(p.batch) * cc.c1 * cc.h * cc.w, rng);
  auto s2 = random_vector(static_cast<size_t>(p.batch) * cc.c2 * cc.h * cc.w, rng);
  const float wscale = 1.0f / std::sqrt(static_cast<float>(c_in * cc.kernel * cc.kernel));
  auto w = random_vector(static_cast<size_t>(p.c_out) * c_in * cc.kernel * cc.kernel, rng, -wscale, wscale);
  auto bias = random_vector(p.c_out, rng, -0.1f, 0.1f);
  std::vector<float> bias_bc, res;
  if (cc.bias_bc) bias_bc = random_vector(static_cast<size_t>(p.batch) * p.c_out, rng, -0.1f, 0.1f);
  if (cc.residual) res = random_vector(out_n, rng);

  std::unique_ptr<Weight> weight;
  Status st = be.prepare_conv(w.data(), p.c_out, c_in, cc.kernel, &weight);
  std::vector<float> out(out_n, std::numeric_limits<float>::quiet_NaN());
  if (st.ok()) {
    ConvArgs a;
    a.src1 = s1.data();
    a.src2 = cc.c2 ? s2.data() : nullptr;
    a.weight = weight.get();
    a.bias = bias.data();
    a.bias_bc = cc.bias_bc ? bias_bc.data() : nullptr;
    a.residual = cc.residual ? res.data() : nullptr;
    a.dst = out.data();
    st = be.conv2d(p, a);
  }
  char what[200];
  std::snprintf(what, sizeof what, "conv b%d c%d+%d %dx%d -> %d k%d s%d%s%s%s x%.2f", cc.batch, cc.c1,
                cc.c2, cc.h, cc.w, cc.c_out, cc.kernel, cc.stride, cc.upsample ? " up" : "",
                cc.bias_bc ? " bias_bc" : "", cc.residual ? " res" : "", cc.scale);
  if (!st.ok()) {
    std::printf("FAIL %s: %s\n", what, st.message.c_str());
    ++g_failures;
    return;
  }
  const double e_exact = rel_l2(out, reference(p, s1, s2, w, bias, bias_bc, res, false));
  const double e_round = rel_l2(out, reference(p, s1, s2, w, bias, bias_bc, res, true));
  const bool ok = e_exact <= kBoundExact && e_round <= kBoundRounded;  // NaN fails both
  std::printf("%s %-60s rel_l2 vs fp32 %.2e, vs bf16 operands %.2e\n", ok ? "ok  " : "FAIL", what,
              e_exact, e_round);
  if (!ok) ++g_failures;
}

// Attention in bf16 mode against the fp32 backend (itself within 1e-5 of a double
// reference, test_cpu_ops): rel L2 <= 1e-2.
void test_attention(Backend& be, Backend& ref, std::mt19937& rng, int batch, int heads, int dim, int hw) {
  AttentionParams p;
  p.batch = batch;
  p.heads = heads;
  p.dim_head = dim;
  p.channels = heads * dim;
  p.hw = hw;
  p.scale = 1.0f / std::sqrt(static_cast<float>(dim));
  auto qkv = random_vector(static_cast<size_t>(batch) * 3 * p.channels * hw, rng, -2.0f, 2.0f);
  const size_t out_n = static_cast<size_t>(batch) * p.channels * hw;
  std::vector<float> out(out_n, std::numeric_limits<float>::quiet_NaN()), expect(out_n);
  AttentionArgs a;
  a.qkv = qkv.data();
  a.out = out.data();
  Status st = be.attention(p, a);
  a.out = expect.data();
  Status st_ref = ref.attention(p, a);
  std::vector<double> expect_d(expect.begin(), expect.end());
  const double e = st.ok() && st_ref.ok() ? rel_l2(out, expect_d) : 1.0;
  const bool ok = e <= kBoundExact;
  char what[100];
  std::snprintf(what, sizeof what, "attention b%d h%d d%d hw%d", batch, heads, dim, hw);
  std::printf("%s %-60s rel_l2 vs fp32 %.2e %s\n", ok ? "ok  " : "FAIL", what, e,
              st.ok() ? "" : st.message.c_str());
  if (!ok) ++g_failures;
}

struct NormCase {
  int batch, c1, c2, h, w, groups, c_out, kernel;
  bool upsample, scale_shift, silu;
};

// group_norm(cat(x1, x2)) then conv2d, against the conv reading x1, x2 raw with the norm's
// coeffs: the same bits where be fuses this conv, else the fused call is refused.
void test_fused_norm(Backend& be, const NormCase& nc, std::mt19937& rng) {
  const int c = nc.c1 + nc.c2, hw = nc.h * nc.w;
  ConvParams p;
  p.batch = nc.batch;
  p.c_in1 = c;
  p.h_in = nc.h;
  p.w_in = nc.w;
  p.c_out = nc.c_out;
  p.kernel = nc.kernel;
  p.pad = nc.kernel / 2;
  p.upsample = nc.upsample;
  // Inputs far from zero mean, as activations are: the norm's centering matters.
  auto x1 = random_vector(static_cast<size_t>(nc.batch) * nc.c1 * hw, rng, 0.5f, 3.0f);
  auto x2 = random_vector(static_cast<size_t>(nc.batch) * nc.c2 * hw, rng, -4.0f, 1.0f);
  auto gamma = random_vector(c, rng, 0.5f, 1.5f);
  auto beta = random_vector(c, rng, -0.5f, 0.5f);
  auto scale_shift = random_vector(static_cast<size_t>(nc.batch) * 2 * c + 5, rng, -0.5f, 0.5f);
  const float wscale = 1.0f / std::sqrt(static_cast<float>(c * nc.kernel * nc.kernel));
  auto w = random_vector(static_cast<size_t>(nc.c_out) * c * nc.kernel * nc.kernel, rng, -wscale, wscale);
  auto bias = random_vector(nc.c_out, rng, -0.1f, 0.1f);
  std::unique_ptr<Weight> weight;
  Status st = be.prepare_conv(w.data(), nc.c_out, c, nc.kernel, &weight);

  GroupNormParams np;
  np.batch = nc.batch;
  np.channels = c;
  np.hw = hw;
  np.groups = nc.groups;
  np.silu = nc.silu;
  GroupNormArgs na;
  na.x = x1.data();
  na.x2 = nc.c2 ? x2.data() : nullptr;
  na.c1 = nc.c2 ? nc.c1 : 0;
  na.gamma = gamma.data();
  na.beta = beta.data();
  if (nc.scale_shift) {  // rows of 2C + 5: a slice of a wider buffer, as the plan's are
    na.scale = scale_shift.data();
    na.shift = scale_shift.data() + c;
    na.scale_stride = (static_cast<int>(scale_shift.size()) - 5) / nc.batch;
  }
  const size_t out_n = static_cast<size_t>(nc.batch) * nc.c_out * p.h_out() * p.w_out();
  std::vector<float> normed(static_cast<size_t>(nc.batch) * c * hw), coeffs(static_cast<size_t>(nc.batch) * 3 * c);
  std::vector<float> expect(out_n, std::numeric_limits<float>::quiet_NaN()), got(expect);
  ConvArgs a;
  a.weight = weight.get();
  a.bias = bias.data();
  if (st.ok()) {
    na.y = normed.data();
    st = be.group_norm(np, na);
  }
  if (st.ok()) {
    a.src1 = normed.data();
    a.dst = expect.data();
    st = be.conv2d(p, a);
  }
  ConvParams fp = p;  // the fused call: the sources as the norm read them
  fp.c_in1 = nc.c1;
  fp.c_in2 = nc.c2;
  fp.norm_silu = nc.silu;
  const bool fuses = be.conv_fuses_norm(fp);
  Status fused_st;
  if (st.ok()) {
    na.y = nullptr;
    na.coeffs = coeffs.data();
    fused_st = be.group_norm(np, na);
  }
  if (st.ok() && fused_st.ok()) {
    a.src1 = x1.data();
    a.src2 = nc.c2 ? x2.data() : nullptr;
    a.norm = coeffs.data();
    a.dst = got.data();
    fused_st = be.conv2d(fp, a);
  }
  char what[160];
  std::snprintf(what, sizeof what, "group_norm%s%s -> conv b%d c%d+%d %dx%d g%d -> %d k%d%s",
                nc.scale_shift ? " scale_shift" : "", nc.silu ? " silu" : "", nc.batch, nc.c1,
                nc.c2, nc.h, nc.w, nc.groups, nc.c_out, nc.kernel, nc.upsample ? " up" : "");
  bool ok;
  if (!st.ok()) {
    ok = false;
    std::printf("FAIL %s: %s\n", what, st.message.c_str());
  } else if (fuses) {
    ok = fused_st.ok() && std::memcmp(got.data(), expect.data(), out_n * sizeof(float)) == 0;
    size_t differ = 0;
    for (size_t i = 0; i < out_n; ++i) differ += std::memcmp(&got[i], &expect[i], sizeof(float)) != 0;
    std::printf("%s %-60s fused: %zu of %zu outputs differ from the unfused ones %s\n",
                ok ? "ok  " : "FAIL", what, differ, out_n, fused_st.message.c_str());
  } else {
    ok = fused_st.code == CM4J_ERR_INVALID_ARGUMENT;
    std::printf("%s %-60s not fused on this path: the fused call is refused (%s)\n",
                ok ? "ok  " : "FAIL", what, fused_st.message.c_str());
  }
  if (!ok) ++g_failures;
}

void run_all(Backend& be) {
  std::mt19937 rng(4321);
  const Case cases[] = {
      {1, 3, 0, 8, 8, 16, 3, 1, false, false, false, 1.0f},      // conv_in-like, K = 27
      {2, 40, 0, 7, 9, 40, 3, 1, false, true, true, 0.5f},       // partial panels, epilogue
      {2, 96, 0, 16, 16, 64, 3, 1, false, false, false, 1.0f},   // K = 864: two k-blocks
      {1, 64, 0, 16, 16, 72, 3, 2, false, true, false, 1.0f},    // downsample
      {2, 32, 0, 8, 8, 48, 3, 1, true, false, false, 1.0f},      // fused upsample
      {2, 48, 24, 8, 8, 40, 3, 1, false, true, true, 1.0f},      // concat skip
      {2, 72, 40, 9, 9, 33, 1, 1, false, false, true, 1.0f},     // 1x1 shortcut of a concat
      {1, 192, 0, 8, 8, 576, 1, 1, false, false, false, 1.0f},   // qkv of the real model
      {1, 192, 0, 32, 32, 6, 3, 1, false, false, false, 1.0f},   // conv_out: 6 rows, K 1728
      {4, 192, 0, 16, 16, 192, 3, 1, false, true, true, 1.0f},   // a real 16x16 resnet conv
      // The AMX direct conv's halves: whole rows (w_out a multiple of 16), along the
      // padded grid otherwise, an odd number of halves per image.
      {1, 40, 0, 32, 64, 36, 3, 1, false, true, true, 1.0f},     // 64 wide: 4 halves a row
      {2, 24, 20, 16, 16, 40, 3, 1, false, true, true, 1.0f},    // 16 wide, concat at 24
      {1, 16, 8, 7, 5, 24, 3, 1, true, true, true, 0.5f},        // upsampled to 14 x 10
      {3, 64, 0, 4, 20, 40, 1, 1, false, true, false, 1.0f},     // 1x1, 5 halves an image
  };
  for (const Case& c : cases) test_conv(be, c, rng);
  const NormCase norm_cases[] = {
      {2, 64, 0, 16, 16, 32, 40, 3, false, false, true},   // norm1 -> conv1, row halves
      {3, 48, 0, 8, 8, 16, 72, 3, false, true, true},      // norm2 with scale_shift, 8x8 planar
      {2, 18, 14, 7, 5, 8, 24, 3, true, false, true},      // cat, a group across the split, upsample
      {1, 15, 0, 9, 11, 5, 33, 3, false, false, true},     // odd channels: a half-empty pair
      {2, 40, 0, 6, 6, 8, 120, 1, false, false, false},    // attention's norm -> qkv (1x1, no SiLU)
      {1, 32, 32, 32, 64, 32, 6, 3, false, false, true},   // conv_norm_out -> conv_out, concat
  };
  for (const NormCase& c : norm_cases) test_fused_norm(be, c, rng);
  auto ref = make_cpu_backend(2, CM4J_F32);
  test_attention(be, *ref, rng, 2, 2, 8, 16);
  test_attention(be, *ref, rng, 2, 2, 64, 200);  // two query blocks, the second partial
  test_attention(be, *ref, rng, 1, 12, 64, 64);
  test_attention(be, *ref, rng, 1, 6, 64, 1024);
}

}  // namespace

int main() {
  // fp16 is not a CPU dtype.
  if (make_cpu_backend(1, CM4J_F16) != nullptr) {
    std::printf("FAIL make_cpu_backend(1, CM4J_F16) should be null\n");
    ++g_failures;
  }
  // CM4J_CPU_ISA value -> the bf16 path it selects. avx512 and generic both run the
  // portable kernel, with the AVX-512 and the scalar bf16 rounding of B respectively.
  const struct {
    const char* env;
    const char* path;
  } paths[] = {{"amx", "amx"}, {"avx512bf16", "avx512bf16"}, {"avx512", "generic"}, {"generic", "generic"}};
  for (const auto& entry : paths) {
    const char* path = entry.path;
    setenv("CM4J_CPU_ISA", entry.env, 1);
    for (int threads : {2, 3}) {
      auto be = make_cpu_backend(threads, CM4J_BF16);
      if (!be) {
        std::printf("FAIL make_cpu_backend(%d, CM4J_BF16)\n", threads);
        return 1;
      }
      const std::string name = be->name();
      const std::string suffix = (std::strcmp(entry.env, "avx512") == 0 ? "cpu-avx512" : "") +
                                 std::string("-bf16-") + path;
      if (name.size() < suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
        std::printf("skip %s: this CPU lacks it (got %s)\n", path, name.c_str());
        break;
      }
      std::printf("== %s, %d threads\n", name.c_str(), threads);
      run_all(*be);
    }
  }
  unsetenv("CM4J_CPU_ISA");
  std::printf(g_failures == 0 ? "PASS\n" : "FAILED: %d checks\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}

// group_norm_nhwc.cu's two launches (stats per chunk of a group's pixels, then the merge and
// the transform; for a fused conv, one) on the CPU emulator (kernels/dev/emu, -DCM4J_CUDA_EMULATION; no GPU or CUDA
// toolkit needed), in fp16 and bf16, against a loop in double: one chunk and many, a last
// chunk with fewer pixels, a group wider than a chunk, cat(x, x2) with the seam inside a
// group, scale/shift and SiLU. Then that image 1 of a batch of 3 gets the bits it gets
// alone, and that in place gives the bits of out of place. scripts/device-check.sh runs the
// kernels on a GPU (test_cuda_ops in the candidate set).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "group_norm_nhwc.cu"  // the kernels and their launcher, built for the emulator
#include "emu_test_util.h"

namespace {

namespace kernels = cm4j::kernels;

using namespace cm4j_emu_test;  // check, g_failures, to_b16, to_f

struct NormCase {
  const char* label;
  int batch, channels, hw, groups;
  int c1;  // > 0: cat(x [.., c1], x2 [.., C - c1])
  bool scale_shift, silu;
};

// The inputs of one case: x as [B, HW, C] values (already rounded to T), and the affine
// and time-embedding parameters.
template <typename T>
struct Inputs {
  std::vector<T> x1, x2;  // the sources, [B, HW, c1] and [B, HW, C - c1] (or x1 = [B, HW, C])
  std::vector<float> gamma, beta, ss;  // ss: [B, 2C] rows, scale then shift
  float at(const NormCase& k, int b, int pos, int c) const {
    const int c1 = k.c1 > 0 ? k.c1 : k.channels;
    if (c < c1) return to_f(x1[(static_cast<size_t>(b) * k.hw + pos) * c1 + c]);
    return to_f(x2[(static_cast<size_t>(b) * k.hw + pos) * (k.channels - c1) + c - c1]);
  }
};

template <typename T>
Inputs<T> make_inputs(const NormCase& k, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  Inputs<T> in;
  const int c1 = k.c1 > 0 ? k.c1 : k.channels;
  // A non-zero mean and a large spread, as activations have, and a ramp across the pixels
  // so that chunks' means differ (the merge's correction terms matter).
  in.x1.resize(static_cast<size_t>(k.batch) * k.hw * c1);
  for (size_t i = 0; i < in.x1.size(); ++i)
    in.x1[i] = to_b16<T>(1.5f + 3.0f * nd(rng) + 6.0f * static_cast<float>(i / c1 % k.hw) / k.hw);
  in.x2.resize(static_cast<size_t>(k.batch) * k.hw * (k.channels - c1));
  for (T& v : in.x2) v = to_b16<T>(-0.5f + 2.0f * nd(rng));
  for (int c = 0; c < k.channels; ++c) {
    in.gamma.push_back(1.0f + 0.5f * std::tanh(nd(rng)));
    in.beta.push_back(0.2f * nd(rng));
  }
  for (int i = 0; i < 2 * k.batch * k.channels; ++i) in.ss.push_back(0.5f * nd(rng));
  return in;
}

template <typename T>
kernels::GroupNormNhwcParams params(const NormCase& k, const Inputs<T>& in, kernels::HalfType type) {
  kernels::GroupNormNhwcParams p;
  p.batch = k.batch;
  p.channels = k.channels;
  p.hw = k.hw;
  p.groups = k.groups;
  p.silu = k.silu;
  p.type = type;
  p.x = in.x1.data();
  p.x2 = k.c1 > 0 ? in.x2.data() : nullptr;
  p.c1 = k.c1;
  p.gamma = in.gamma.data();
  p.beta = in.beta.data();
  if (k.scale_shift) {
    p.scale = in.ss.data();
    p.shift = in.ss.data() + k.channels;
    p.scale_stride = 2 * k.channels;
  }
  return p;
}

// Into y, or (y null) only the maps into coeffs [B, 3, C]: then in one launch, which leaves
// its arrival counters at zero (false otherwise).
template <typename T>
bool run(const kernels::GroupNormNhwcParams& p, T* y, float* coeffs = nullptr) {
  std::vector<float> workspace(kernels::group_norm_nhwc_workspace_floats(p), NAN);
  std::vector<unsigned> counters(kernels::group_norm_nhwc_counters(p), 0);
  kernels::GroupNormNhwcParams q = p;
  q.y = y;
  q.coeffs = coeffs;
  q.counters = coeffs ? counters.data() : nullptr;
  const long before = cm4j_emu::state().launches;
  const bool ok = kernels::group_norm_nhwc_forward(q, workspace.data(), nullptr) == cudaSuccess &&
                  cudaDeviceSynchronize() == cudaSuccess;
  bool at_rest = true;
  for (unsigned c : counters) at_rest = at_rest && c == 0;
  return ok && (!coeffs || (cm4j_emu::state().launches == before + 1 && at_rest));
}

// The maps written for a conv that fuses the norm (coeffs), applied to x as that conv applies
// them (nhwc_detail::norm_act, rounded to T), give y's bits: fused and unfused agree.
template <typename T>
void test_coeffs(const char* what, const NormCase& k, const Inputs<T>& in,
                 const kernels::GroupNormNhwcParams& p, const std::vector<T>& y) {
  std::vector<float> coeffs(static_cast<size_t>(k.batch) * 3 * k.channels, NAN);
  bool same = run<T>(p, nullptr, coeffs.data());
  for (int b = 0; b < k.batch && same; ++b)
    for (int pos = 0; pos < k.hw; ++pos)
      for (int c = 0; c < k.channels; ++c) {
        const float* center = &coeffs[static_cast<size_t>(b) * 3 * k.channels + c];
        const T v = kernels::nhwc_detail::from_f32<T>(kernels::nhwc_detail::norm_act(
            in.at(k, b, pos, c), center[0], center[k.channels], center[2 * k.channels], k.silu));
        const T got = y[(static_cast<size_t>(b) * k.hw + pos) * k.channels + c];
        same = same && std::memcmp(&v, &got, sizeof(T)) == 0;
      }
  check(same, std::string(what) + ": its maps (coeffs, one launch: the last stats block of each "
                                  "group) applied as a fused conv applies them = y, bit for bit");
}

template <typename T>
void test_norm(const char* dtype, kernels::HalfType type, const NormCase& k, double bound,
               std::mt19937& rng) {
  const Inputs<T> in = make_inputs<T>(k, rng);
  const kernels::GroupNormNhwcParams p = params(k, in, type);
  std::vector<T> y(static_cast<size_t>(k.batch) * k.hw * k.channels, to_b16<T>(NAN));
  const bool ok = run(p, y.data());
  // Reference in double: two-pass statistics, then torch's sequence of operations.
  const int cpg = k.channels / k.groups;
  double err2 = 0.0, ref2 = 0.0;
  for (int b = 0; b < k.batch; ++b)
    for (int g = 0; g < k.groups; ++g) {
      double sum = 0.0, sq = 0.0;
      for (int pos = 0; pos < k.hw; ++pos)
        for (int c = g * cpg; c < (g + 1) * cpg; ++c) sum += in.at(k, b, pos, c);
      const double n = static_cast<double>(cpg) * k.hw, mean = sum / n;
      for (int pos = 0; pos < k.hw; ++pos)
        for (int c = g * cpg; c < (g + 1) * cpg; ++c) sq += std::pow(in.at(k, b, pos, c) - mean, 2);
      const double rstd = 1.0 / std::sqrt(sq / n + 1e-5);
      for (int pos = 0; pos < k.hw; ++pos)
        for (int c = g * cpg; c < (g + 1) * cpg; ++c) {
          double v = (in.at(k, b, pos, c) - mean) * rstd * in.gamma[c] + in.beta[c];
          if (k.scale_shift)
            v = v * (1.0 + in.ss[b * 2 * k.channels + c]) + in.ss[b * 2 * k.channels + k.channels + c];
          if (k.silu) v = v / (1.0 + std::exp(-v));
          const double got = to_f(y[(static_cast<size_t>(b) * k.hw + pos) * k.channels + c]);
          err2 += (got - v) * (got - v);
          ref2 += v * v;
        }
    }
  const double rel = std::sqrt(err2 / ref2);
  char what[200];
  std::snprintf(what, sizeof what, "group_norm_nhwc %s %s b%d c%d hw%d g%d, %d chunk(s) of %d pixels: rel. L2 %.3g (bound %.1g)",
                dtype, k.label, k.batch, k.channels, k.hw, k.groups, kernels::stats_chunks(p).count,
                kernels::stats_chunks(p).pixels, rel, bound);
  check(ok && rel <= bound, what);  // NaN (an element never written) fails too
  test_coeffs(std::string(what).substr(0, std::string(what).find(',')).c_str(), k, in, p, y);
}

// Image 1 of a batch of 3 against the image alone, and in place against out of place.
template <typename T>
void test_bits(const char* dtype, kernels::HalfType type, std::mt19937& rng) {
  const NormCase k{"bits", 3, 96, 300, 32, 40, true, true};
  Inputs<T> in = make_inputs<T>(k, rng);
  const kernels::GroupNormNhwcParams p = params(k, in, type);
  const size_t image = static_cast<size_t>(k.hw) * k.channels;
  std::vector<T> batched(3 * image), alone(image);
  bool ok = run(p, batched.data());
  kernels::GroupNormNhwcParams one = p;
  one.batch = 1;
  const int c1 = k.c1;
  one.x = in.x1.data() + static_cast<size_t>(k.hw) * c1;
  one.x2 = in.x2.data() + static_cast<size_t>(k.hw) * (k.channels - c1);
  one.scale = p.scale + p.scale_stride;
  one.shift = p.shift + p.scale_stride;
  ok = ok && run(one, alone.data());
  check(ok && std::memcmp(batched.data() + image, alone.data(), image * sizeof(T)) == 0,
        std::string("group_norm_nhwc ") + dtype + ": image 1 of a batch of 3 = the image alone, bit for bit");

  // In place needs a single source (y may alias x only then).
  const NormCase s{"in place", 2, 64, 200, 32, 0, true, true};
  Inputs<T> in2 = make_inputs<T>(s, rng);
  kernels::GroupNormNhwcParams q = params(s, in2, type);
  std::vector<T> out(in2.x1.size());
  ok = run(q, out.data());
  ok = ok && run(q, in2.x1.data());  // y = x
  check(ok && std::memcmp(out.data(), in2.x1.data(), out.size() * sizeof(T)) == 0,
        std::string("group_norm_nhwc ") + dtype + ": in place = out of place, bit for bit");
}

void test_refusals() {
  kernels::GroupNormNhwcParams p;
  std::vector<__half> x(64);
  std::vector<float> ws(64);
  p.batch = 1, p.channels = 8, p.hw = 8, p.groups = 3, p.x = x.data(), p.y = x.data();
  const bool uneven = kernels::group_norm_nhwc_forward(p, ws.data(), nullptr) == cudaErrorInvalidValue;
  p.groups = 4;
  const bool no_workspace = kernels::group_norm_nhwc_forward(p, nullptr, nullptr) == cudaErrorInvalidValue;
  std::vector<float> coeffs(3 * 8);
  std::vector<unsigned> counters(4);
  p.coeffs = coeffs.data();
  p.counters = counters.data();
  const bool both = kernels::group_norm_nhwc_forward(p, ws.data(), nullptr) == cudaErrorInvalidValue;
  p.y = nullptr;
  p.counters = nullptr;
  const bool uncounted = kernels::group_norm_nhwc_forward(p, ws.data(), nullptr) == cudaErrorInvalidValue;
  p.coeffs = nullptr;
  const bool neither = kernels::group_norm_nhwc_forward(p, ws.data(), nullptr) == cudaErrorInvalidValue;
  check(uneven && no_workspace && both && uncounted && neither,
        "group_norm_nhwc refuses groups that do not divide C, a null workspace, other than "
        "exactly one of y and coeffs, and coeffs without arrival counters");
}

template <typename T>
void test_dtype(const char* dtype, kernels::HalfType type, double bound, std::mt19937& rng) {
  const NormCase cases[] = {
      {"odd", 3, 12, 37, 4, 0, true, false},             // one chunk
      {"odd cat", 2, 12, 37, 4, 5, false, true},         // seam inside group 1
      {"norm1", 1, 192, 4096, 32, 0, false, true},       // 7 chunks, the last of 4 pixels
      {"cat seam", 1, 96, 2100, 32, 64, true, true},     // 3-channel groups, 2 chunks
      {"wide group", 1, 8448, 3, 2, 0, true, true},      // a group wider than a chunk
  };
  for (const NormCase& k : cases) test_norm<T>(dtype, type, k, bound, rng);
  test_bits<T>(dtype, type, rng);
}

}  // namespace

int main() {
  std::mt19937 rng(5);
  // One rounding of the output to the type dominates: 2^-11 (fp16), 2^-8 (bf16) relative.
  test_dtype<__half>("fp16", kernels::HalfType::kF16, 1e-3, rng);
  test_dtype<__nv_bfloat16>("bf16", kernels::HalfType::kBF16, 8e-3, rng);
  test_refusals();
  std::printf(g_failures == 0 ? "PASS\n" : "FAILED: %d checks\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}

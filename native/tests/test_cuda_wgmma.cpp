// The sm_90a wgmma conv (kernels/conv2d_nhwc_wgmma.cu) on a GPU against the mma kernel
// (conv2d_nhwc_mma.cu, its fixed rule), which test_cuda_ops checks against the CPU backend:
// every conv shape of imagenet64 (batch 2) and lsun_mini's, fused norms included, fp16 and
// bf16, with the rule's splits and with none. Passes where the relative L2 difference is
// within the dtype's bound (the tuner's: 2e-3 fp16, 1.5e-2 bf16), every output within 16
// roundings of the mma kernel's (against its size or the outputs' RMS), and the batch's last
// image has the same bits as that image alone (the order of its sums does not depend on the
// batch, nor on where its rows fall in the tiles); prints how many outputs match the mma
// kernel's bits (a wgmma may sum in its own order). Skips (77) without a compute capability
// 9.0 device, and in a build without CUDA. Under the CPU emulator (kernels/dev/emu/run.sh
// builds it; the emulator reports 9.0) the bits must match the mma kernel's where the splits
// are the same: the emulator sums both in k order. Options:
// --filter=A,B runs the cases whose name contains A or B.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#ifdef CM4J_HAVE_CUDA
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "conv2d_nhwc_mma.cuh"
#include "conv2d_nhwc_wgmma.cuh"
#include "cuda_test_util.h"
#include "weights.h"

namespace {

namespace kernels = cm4j::kernels;

int g_failures = 0;
std::mt19937 g_rng(2026);

struct Case {
  const char* name;
  int batch, c1, c2, h, w, c_out, kernel, stride, pad;
  bool up, bbc, residual;
  int norm;  // a fused group norm: 0 none, 1 its map, 2 then SiLU
};

uint16_t to_bits(float v, kernels::HalfType type) {
  if (type == kernels::HalfType::kBF16) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    return static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);  // nearest even
  }
  const __half h = __float2half_rn(v);
  uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}

float from_bits(uint16_t u, kernels::HalfType type) {
  return type == kernels::HalfType::kBF16 ? cm4j::bfloat16_to_float(u) : cm4j::half_to_float(u);
}

// Device copies, freed at the end of a case.
struct DeviceArena {
  std::vector<void*> blocks;
  ~DeviceArena() {
    for (void* p : blocks) cudaFree(p);
  }
  template <typename V>
  V* copy(const std::vector<V>& host) {
    void* p = nullptr;
    if (cudaMalloc(&p, host.size() * sizeof(V)) != cudaSuccess) return nullptr;
    blocks.push_back(p);
    cudaMemcpy(p, host.data(), host.size() * sizeof(V), cudaMemcpyHostToDevice);
    return static_cast<V*>(p);
  }
  void* zeros(size_t bytes) {
    void* p = nullptr;
    if (bytes == 0 || cudaMalloc(&p, bytes) != cudaSuccess) return nullptr;
    blocks.push_back(p);
    const std::vector<unsigned char> nan(bytes, 0xff);  // NaN bits until written
    cudaMemcpy(p, nan.data(), bytes, cudaMemcpyHostToDevice);
    return p;
  }
};

std::vector<uint16_t> random_bits(size_t n, float scale, kernels::HalfType type) {
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<uint16_t> v(n);
  for (uint16_t& e : v) e = to_bits(nd(g_rng), type);
  return v;
}

// Runs the conv (wgmma: with `splits`; else the mma kernel's rule) and returns its output.
bool run(const kernels::Conv2dNhwcParams& p, bool wgmma, int splits, DeviceArena* arena,
         std::vector<uint16_t>* out) {
  const size_t n = static_cast<size_t>(p.batch) * p.h_out * p.w_out * p.c_out;
  kernels::Conv2dNhwcParams q = p;
  q.dst = arena->zeros(n * 2);
  const size_t ws = wgmma ? kernels::conv2d_nhwc_wgmma_workspace_floats(p, splits)
                          : kernels::conv2d_nhwc_mma_workspace_floats(p);
  float* workspace = static_cast<float*>(arena->zeros(ws * sizeof(float)));
  const cudaError_t e = wgmma ? kernels::conv2d_nhwc_wgmma_forward(q, splits, workspace, nullptr)
                              : kernels::conv2d_nhwc_mma_forward(q, workspace, nullptr);
  out->resize(n);
  if (e != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) {
    std::printf("    launch failed: %s\n", cudaGetErrorString(e != cudaSuccess ? e : cudaGetLastError()));
    return false;
  }
  return cudaMemcpy(out->data(), q.dst, n * 2, cudaMemcpyDeviceToHost) == cudaSuccess;
}

void test_case(const Case& k, kernels::HalfType type) {
  const char* dtype = type == kernels::HalfType::kBF16 ? "bf16" : "fp16";
  const double bound = type == kernels::HalfType::kBF16 ? 1.5e-2 : 2e-3;
  DeviceArena arena;
  kernels::Conv2dNhwcParams p = cm4j_test::conv_params<kernels::Conv2dNhwcParams>(k);
  const int hu = k.up ? 2 * k.h : k.h, wu = k.up ? 2 * k.w : k.w;
  p.h_out = (hu + 2 * p.pad - k.kernel) / k.stride + 1;
  p.w_out = (wu + 2 * p.pad - k.kernel) / k.stride + 1;
  p.type = type;
  const int c_in = k.c1 + k.c2, K = c_in * k.kernel * k.kernel;
  const size_t pixels = static_cast<size_t>(k.batch) * k.h * k.w;
  const size_t out_n = static_cast<size_t>(k.batch) * p.h_out * p.w_out * k.c_out;
  p.src1 = arena.copy(random_bits(pixels * k.c1, 1.0f, type));
  p.src2 = k.c2 ? arena.copy(random_bits(pixels * k.c2, 1.0f, type)) : nullptr;
  p.weight = arena.copy(random_bits(static_cast<size_t>(K) * k.c_out, 1.0f / std::sqrt(float(K)), type));
  std::normal_distribution<float> nd;
  std::vector<float> bias(k.c_out), bbc(static_cast<size_t>(k.batch) * k.c_out);
  for (float& e : bias) e = 0.1f * nd(g_rng);
  for (float& e : bbc) e = 0.5f * nd(g_rng);
  p.bias = arena.copy(bias);
  p.bias_bc = k.bbc ? arena.copy(bbc) : nullptr;
  p.residual = k.residual ? arena.copy(random_bits(out_n, 1.0f, type)) : nullptr;
  if (k.norm) {
    std::vector<float> coeffs(static_cast<size_t>(k.batch) * 3 * c_in);
    for (size_t i = 0; i < coeffs.size(); ++i) {
      const size_t row = i / c_in % 3;
      coeffs[i] = row == 0 ? 0.3f * nd(g_rng) : row == 1 ? 1.0f + 0.5f * nd(g_rng) : 0.5f * nd(g_rng);
    }
    p.norm = arena.copy(coeffs);
    p.norm_silu = k.norm == 2;
  }
  const int rule_splits = kernels::conv2d_nhwc_mma_splits(p);
  std::vector<uint16_t> want;
  const bool ran = run(p, false, 0, &arena, &want);
  std::vector<int> split_counts{rule_splits};
  if (rule_splits != 1) split_counts.push_back(1);
  for (const int splits : split_counts) {
    std::vector<uint16_t> got;
    const bool ok_run = ran && run(p, true, splits, &arena, &got);
    double diff = 0, norm = 0;
    size_t same = 0;
    bool finite = true;
    for (size_t i = 0; ok_run && i < out_n; ++i) {
      const double g = from_bits(got[i], type), w = from_bits(want[i], type);
      finite = finite && std::isfinite(g);
      diff += (g - w) * (g - w);
      norm += w * w;
      same += got[i] == want[i];
    }
    const double rel = norm > 0 ? std::sqrt(diff / norm) : INFINITY;
    // Each output within a few roundings of the mma kernel's, against its size or the
    // outputs' RMS: a summation order moves an output by an ulp or two, a wrong operand by
    // about the RMS (which the relative L2 over a whole tensor could dilute).
    const double rms = std::sqrt(norm / std::max<size_t>(out_n, 1));
    double worst = 0;
    for (size_t i = 0; ok_run && i < out_n; ++i) {
      const double g = from_bits(got[i], type), w = from_bits(want[i], type);
      worst = std::max(worst, std::fabs(g - w) / (std::fabs(w) + rms));
    }
    const double element_bound = 16 * (type == kernels::HalfType::kBF16 ? 0x1p-8 : 0x1p-11);
    // The last image alone: the same bits as in the batch, though its rows sit elsewhere in
    // the tiles (the order of an output's sum depends on neither).
    bool invariant = true;
    if (ok_run && k.batch > 1) {
      const int last = k.batch - 1;
      const size_t out_image = out_n / k.batch;
      kernels::Conv2dNhwcParams one = p;
      one.batch = 1;
      one.src1 = static_cast<const uint16_t*>(p.src1) + last * (pixels / k.batch) * k.c1;
      if (p.src2) one.src2 = static_cast<const uint16_t*>(p.src2) + last * (pixels / k.batch) * k.c2;
      if (p.residual) one.residual = static_cast<const uint16_t*>(p.residual) + last * out_image;
      if (p.bias_bc) one.bias_bc = p.bias_bc + last * k.c_out;
      if (p.norm) one.norm = p.norm + static_cast<size_t>(last) * 3 * c_in;
      std::vector<uint16_t> alone;
      invariant = run(one, true, splits, &arena, &alone) &&
                  std::memcmp(alone.data(), got.data() + last * out_image, out_image * 2) == 0;
    }
#ifdef CM4J_CUDA_EMULATION
    // The emulator sums both kernels in k order: the same bits where the splits are the same.
    const bool bits = same == out_n || splits != rule_splits;
#else
    const bool bits = true;
#endif
    const bool ok = ok_run && finite && rel <= bound && worst <= element_bound && invariant && bits;
    if (!ok) ++g_failures;
    std::printf("%-4s: wgmma %s %-16s b%d %d+%d>%d %dx%d k%d%s%s splits %d: rel L2 %.3g of the mma "
                "kernel's (bound %.1e), worst output %.2g (bound %.1e), %.1f%% of its bits, the "
                "last image alone %s\n",
                ok ? "ok" : "FAIL", dtype, k.name, k.batch, k.c1, k.c2, k.c_out, k.h, k.w, k.kernel,
                k.up ? " up" : "", k.norm == 2 ? " norm+silu" : k.norm ? " norm" : "", splits, rel,
                bound, worst, element_bound, out_n ? 100.0 * same / out_n : 0.0,
                invariant ? "the same bits" : "DIFFERS");
  }
}

// Whether `name` contains one of the comma-separated parts of `filter` (empty: all).
bool selected(const std::string& filter, const std::string& name) {
  if (filter.empty()) return true;
  size_t i = 0;
  while (i <= filter.size()) {
    const size_t j = std::min(filter.find(',', i), filter.size());
    if (j > i && name.find(filter.substr(i, j - i)) != std::string::npos) return true;
    i = j + 1;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::string filter;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--filter=", 9) == 0) {
      filter = argv[i] + 9;
    } else {
      std::fprintf(stderr, "usage: %s [--filter=A,B]\n", argv[0]);
      return 2;
    }
  }
  int n = 0;
  cudaDeviceProp prop;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0 ||
      cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    std::printf("test_cuda_wgmma: skipped: no CUDA device\n");
    return 77;
  }
  if (!kernels::conv2d_nhwc_wgmma_device_ok(prop.major, prop.minor)) {
    std::printf("test_cuda_wgmma: skipped: %s is compute capability %d.%d, the kernel needs 9.0\n",
                prop.name, prop.major, prop.minor);
    return 77;
  }
  std::printf("test_cuda_wgmma on %s\n", prop.name);
  // imagenet64 (192/384/576/768 channels; 64x64 to 8x8), lsun_mini's 1x1 and 3x3, and the
  // fused norms the NHWC mode makes; then tails (c_out not a multiple of 128, M of 128).
  //                  name              b  c1   c2   h   w   co    k  s  p  up     bbc    res    norm
  const Case cases[] = {{"res0 conv",      2, 192, 0,   64, 64, 192,  3, 1, 1, false, true,  true,  2},
                        {"down1 conv1",    2, 192, 0,   32, 32, 384,  3, 1, 1, false, true,  false, 2},
                        {"down1 short",    2, 192, 0,   32, 32, 384,  1, 1, 0, false, false, true,  0},
                        {"down2 conv1",    2, 384, 0,   16, 16, 576,  3, 1, 1, false, true,  false, 2},
                        {"attn qkv",       2, 576, 0,   16, 16, 1728, 1, 1, 0, false, false, false, 1},
                        {"mid conv",       2, 768, 0,   8,  8,  768,  3, 1, 1, false, true,  true,  2},
                        {"up0 cat conv",   2, 768, 768, 8,  8,  768,  3, 1, 1, false, false, false, 2},
                        {"up0 cat short",  2, 768, 768, 8,  8,  768,  1, 1, 0, false, false, true,  0},
                        {"up cat+upsample",1, 768, 384, 16, 16, 384,  3, 1, 1, true,  true,  false, 0},
                        {"up3 cat conv",   1, 384, 192, 64, 64, 192,  3, 1, 1, false, false, false, 2},
                        {"stride2",        2, 192, 0,   64, 64, 192,  3, 2, 1, false, false, false, 0},
                        {"lsun conv1",     2, 64,  0,   16, 16, 128,  3, 1, 1, false, true,  false, 2},
                        {"lsun short",     2, 128, 0,   8,  8,  256,  1, 1, 0, false, false, true,  0},
                        {"tails",          3, 40,  16,  5,  7,  136,  3, 1, 1, true,  true,  true,  1}};
  for (const Case& k : cases) {
    if (!selected(filter, k.name)) continue;
    test_case(k, kernels::HalfType::kF16);
    test_case(k, kernels::HalfType::kBF16);
  }
  std::printf("test_cuda_wgmma: %d failure(s)\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}
#else
int main() {
  std::printf("test_cuda_wgmma: skipped: built without CUDA\n");
  return 77;
}
#endif

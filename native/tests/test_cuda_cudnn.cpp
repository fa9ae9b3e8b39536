// The CUDA backend's conv2d against cuDNN's cudnnConvolutionForward (fp32, NCHW) at the
// imagenet64 shapes, plus a timing table (ours vs cuDNN, CUDA events, median of 10 runs):
// a second, independent reference next to test_cuda_ops (which compares with the CPU
// backend), and a speed reference.
//
// cuDNN is loaded at run time (cudnn_dl.h: $CM4J_CUDNN_LIB, then libcudnn.so.9 and
// libcudnn.so); the dozen legacy-API functions used are resolved with dlsym, with their
// prototypes and enum values declared here (cuDNN 9 cudnn_ops.h / cudnn_cnn.h). Exit 77
// (skipped) with the reason when no CUDA device is usable or cuDNN cannot be loaded or
// initialized.
//
// Checked: cuDNN with CUDNN_FMA_MATH (no TF32, no tensor cores) and the two direct GEMM
// algorithms, IMPLICIT_GEMM and IMPLICIT_PRECOMP_GEMM; relative L2 error
// ||ours - cudnn|| / ||cudnn|| <= 1e-5 with no NaN (outputs are poisoned with NaN before
// each checked run). Inputs are fresh random numbers every run (the seed is printed;
// CM4J_TEST_SEED=<n> repeats a run). cuDNN gets what our fused conv reads implicitly
// materialized: the channel concat of the two sources and the nearest-2x upsampled input;
// the bias is added with cudnnAddTensor (inside cuDNN's timed region: ours fuses it).
// Reported only (not checked): the fastest of every cuDNN forward algorithm with FMA math
// (GEMM, FFT, FFT_TILING, WINOGRAD, WINOGRAD_NONFUSED too), whose numerics differ by design.
//
// Attention is compared with cuDNN in test_cuda_cudnn_attn.
#include <algorithm>
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
#include "cuda_test_util.h"
#include "test_util.h"
#ifdef CM4J_HAVE_CUDA
#include "cuda/cuda_backend.h"
#include "cudnn_dl.h"
#endif

using namespace cm4j;
using namespace cm4j_test;  // Buf, conv_params, g_rng, randn, uniform, CudnnLib, time_ms

#ifdef CM4J_HAVE_CUDA
namespace {

// ---- the slice of the cuDNN legacy API used here ----------------------------------------
typedef struct cudnnTensorStruct* cudnnTensorDescriptor_t;
typedef struct cudnnFilterStruct* cudnnFilterDescriptor_t;
typedef struct cudnnConvolutionStruct* cudnnConvolutionDescriptor_t;
constexpr int CUDNN_TENSOR_NCHW = 0;         // cudnnTensorFormat_t
constexpr int CUDNN_CROSS_CORRELATION = 1;   // cudnnConvolutionMode_t
constexpr int kAlgoCount = 8;                // cudnnConvolutionFwdAlgo_t 0..7
const char* const kAlgoNames[kAlgoCount] = {"implicit_gemm", "implicit_precomp_gemm", "gemm",
                                            "direct", "fft", "fft_tiling", "winograd",
                                            "winograd_nonfused"};

struct Cudnn : CudnnLib {
  cudnnStatus_t (*CreateTensorDescriptor)(cudnnTensorDescriptor_t*) = nullptr;
  cudnnStatus_t (*DestroyTensorDescriptor)(cudnnTensorDescriptor_t) = nullptr;
  cudnnStatus_t (*SetTensor4dDescriptor)(cudnnTensorDescriptor_t, int format, int data_type,
                                         int n, int c, int h, int w) = nullptr;
  cudnnStatus_t (*CreateFilterDescriptor)(cudnnFilterDescriptor_t*) = nullptr;
  cudnnStatus_t (*DestroyFilterDescriptor)(cudnnFilterDescriptor_t) = nullptr;
  // Note the order: data type, then format (the tensor descriptor's is format first).
  cudnnStatus_t (*SetFilter4dDescriptor)(cudnnFilterDescriptor_t, int data_type, int format,
                                         int k, int c, int h, int w) = nullptr;
  cudnnStatus_t (*CreateConvolutionDescriptor)(cudnnConvolutionDescriptor_t*) = nullptr;
  cudnnStatus_t (*DestroyConvolutionDescriptor)(cudnnConvolutionDescriptor_t) = nullptr;
  cudnnStatus_t (*SetConvolution2dDescriptor)(cudnnConvolutionDescriptor_t, int pad_h,
                                              int pad_w, int u, int v, int dilation_h,
                                              int dilation_w, int mode,
                                              int compute_type) = nullptr;
  cudnnStatus_t (*SetConvolutionMathType)(cudnnConvolutionDescriptor_t, int math_type) = nullptr;
  cudnnStatus_t (*GetConvolution2dForwardOutputDim)(cudnnConvolutionDescriptor_t,
                                                    cudnnTensorDescriptor_t,
                                                    cudnnFilterDescriptor_t, int* n, int* c,
                                                    int* h, int* w) = nullptr;
  cudnnStatus_t (*GetConvolutionForwardWorkspaceSize)(cudnnHandle_t, cudnnTensorDescriptor_t,
                                                      cudnnFilterDescriptor_t,
                                                      cudnnConvolutionDescriptor_t,
                                                      cudnnTensorDescriptor_t, int algo,
                                                      size_t* bytes) = nullptr;
  cudnnStatus_t (*ConvolutionForward)(cudnnHandle_t, const void* alpha, cudnnTensorDescriptor_t,
                                      const void* x, cudnnFilterDescriptor_t, const void* w,
                                      cudnnConvolutionDescriptor_t, int algo, void* workspace,
                                      size_t workspace_bytes, const void* beta,
                                      cudnnTensorDescriptor_t, void* y) = nullptr;
  cudnnStatus_t (*AddTensor)(cudnnHandle_t, const void* alpha, cudnnTensorDescriptor_t,
                             const void* a, const void* beta, cudnnTensorDescriptor_t,
                             void* c) = nullptr;
};

// Loads cuDNN and resolves the functions; false with the reason in *why.
bool load_cudnn(Cudnn* c, std::string* why) {
  if (!open_cudnn(c, why)) return false;
  std::string missing;
  auto sym = [&](auto* fn, const char* name) { c->sym(fn, name, &missing); };
  sym(&c->CreateTensorDescriptor, "cudnnCreateTensorDescriptor");
  sym(&c->DestroyTensorDescriptor, "cudnnDestroyTensorDescriptor");
  sym(&c->SetTensor4dDescriptor, "cudnnSetTensor4dDescriptor");
  sym(&c->CreateFilterDescriptor, "cudnnCreateFilterDescriptor");
  sym(&c->DestroyFilterDescriptor, "cudnnDestroyFilterDescriptor");
  sym(&c->SetFilter4dDescriptor, "cudnnSetFilter4dDescriptor");
  sym(&c->CreateConvolutionDescriptor, "cudnnCreateConvolutionDescriptor");
  sym(&c->DestroyConvolutionDescriptor, "cudnnDestroyConvolutionDescriptor");
  sym(&c->SetConvolution2dDescriptor, "cudnnSetConvolution2dDescriptor");
  sym(&c->SetConvolutionMathType, "cudnnSetConvolutionMathType");
  sym(&c->GetConvolution2dForwardOutputDim, "cudnnGetConvolution2dForwardOutputDim");
  sym(&c->GetConvolutionForwardWorkspaceSize, "cudnnGetConvolutionForwardWorkspaceSize");
  sym(&c->ConvolutionForward, "cudnnConvolutionForward");
  sym(&c->AddTensor, "cudnnAddTensor");
  if (!missing.empty()) {
    *why = "cuDNN at " + c->path + " lacks " + missing;
    return false;
  }
  return true;
}

constexpr double kBound = 1e-5;
constexpr int kReps = 10;
int g_cases = 0;

struct Case {
  const char* name;
  int batch, c1, c2, h, w, c_out, kernel, stride, pad;
  bool up;
};

struct Compared {
  double rel = INFINITY;
  size_t nan = 0;
};

Compared compare(const std::vector<float>& got, const std::vector<float>& ref) {
  Compared c;
  if (got.size() != ref.size() || ref.empty()) return c;
  for (float v : got) c.nan += std::isfinite(v) ? 0 : 1;
  c.rel = cm4j_test::rel_l2(got.data(), ref.data(), ref.size());
  return c;
}

void run_case(Backend* gpu, const Cudnn& dnn, cudnnHandle_t handle, const Case& k) {
  ++g_cases;
  const cudaStream_t stream = cuda_backend_stream(gpu);
  const int c_in = k.c1 + k.c2;
  const int hi = k.up ? 2 * k.h : k.h, wi = k.up ? 2 * k.w : k.w;  // what the conv sees
  ConvParams p = conv_params(k);
  const int ho = p.h_out(), wo = p.w_out();
  const size_t out_n = static_cast<size_t>(k.batch) * k.c_out * ho * wo;
  const size_t plane = static_cast<size_t>(k.h) * k.w;
  const int fan_in = c_in * k.kernel * k.kernel;

  auto s1 = randn(static_cast<size_t>(k.batch) * k.c1 * plane);
  auto s2 = randn(static_cast<size_t>(k.batch) * k.c2 * plane);
  auto wt = uniform(static_cast<size_t>(k.c_out) * fan_in, -1.0f / std::sqrt(fan_in),
                    1.0f / std::sqrt(fan_in));
  auto bias = randn(k.c_out, 0.1f);
  // cuDNN's input: cat(src1, src2) over channels, then nearest 2x when up.
  std::vector<float> x(static_cast<size_t>(k.batch) * c_in * hi * wi);
  for (int b = 0; b < k.batch; ++b)
    for (int c = 0; c < c_in; ++c) {
      const float* src = c < k.c1 ? &s1[(static_cast<size_t>(b) * k.c1 + c) * plane]
                                  : &s2[(static_cast<size_t>(b) * k.c2 + (c - k.c1)) * plane];
      float* dst = &x[(static_cast<size_t>(b) * c_in + c) * hi * wi];
      for (int y = 0; y < hi; ++y)
        for (int xx = 0; xx < wi; ++xx)
          dst[static_cast<size_t>(y) * wi + xx] =
              k.up ? src[static_cast<size_t>(y / 2) * k.w + xx / 2] : src[static_cast<size_t>(y) * k.w + xx];
    }

  char shape[160];
  std::snprintf(shape, sizeof shape, "%s b%d %d%s>%d %dx%d%s k%d s%d", k.name, k.batch, k.c1,
                k.c2 ? ("+" + std::to_string(k.c2)).c_str() : "", k.c_out, k.h, k.w,
                k.up ? " up" : "", k.kernel, k.stride);

  // Ours.
  std::unique_ptr<Weight> weight;
  Status s = gpu->prepare_conv(wt.data(), k.c_out, c_in, k.kernel, &weight);
  Buf b1(gpu, s1), bb(gpu, bias), ours(gpu, out_n);
  std::unique_ptr<Buf> b2;
  if (k.c2) b2 = std::make_unique<Buf>(gpu, s2);
  ConvArgs a;
  a.src1 = b1.p;
  a.src2 = b2 ? b2->p : nullptr;
  a.weight = weight.get();
  a.bias = bb.p;
  a.dst = ours.p;
  std::vector<float> got;
  double ours_ms = -1;
  if (s.ok()) {
    ours.poison();
    s = gpu->conv2d(p, a);
    if (s.ok()) s = gpu->synchronize();
    got = ours.get();
    if (s.ok()) ours_ms = time_ms(stream, kReps, [&] { return gpu->conv2d(p, a).ok(); });
  }
  CHECK(s.ok(), "%s: our conv2d: %s", shape, s.message.c_str());

  // cuDNN.
  Buf bx(gpu, x), bw(gpu, wt), ref(gpu, out_n);
  cudnnTensorDescriptor_t xd = nullptr, yd = nullptr, bd = nullptr;
  cudnnFilterDescriptor_t wd = nullptr;
  cudnnConvolutionDescriptor_t cd = nullptr;
  std::string setup_error;
  auto ck = [&](cudnnStatus_t st, const char* what) {
    if (st != CUDNN_STATUS_SUCCESS && setup_error.empty()) setup_error = std::string(what) + ": " + dnn.err(st);
  };
  ck(dnn.CreateTensorDescriptor(&xd), "cudnnCreateTensorDescriptor");
  ck(dnn.CreateTensorDescriptor(&yd), "cudnnCreateTensorDescriptor");
  ck(dnn.CreateTensorDescriptor(&bd), "cudnnCreateTensorDescriptor");
  ck(dnn.CreateFilterDescriptor(&wd), "cudnnCreateFilterDescriptor");
  ck(dnn.CreateConvolutionDescriptor(&cd), "cudnnCreateConvolutionDescriptor");
  if (setup_error.empty()) {
    ck(dnn.SetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, k.batch, c_in, hi, wi),
       "cudnnSetTensor4dDescriptor(x)");
    ck(dnn.SetTensor4dDescriptor(yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, k.batch, k.c_out, ho, wo),
       "cudnnSetTensor4dDescriptor(y)");
    ck(dnn.SetTensor4dDescriptor(bd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, k.c_out, 1, 1),
       "cudnnSetTensor4dDescriptor(bias)");
    ck(dnn.SetFilter4dDescriptor(wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, k.c_out, c_in, k.kernel,
                                 k.kernel),
       "cudnnSetFilter4dDescriptor");
    ck(dnn.SetConvolution2dDescriptor(cd, k.pad, k.pad, k.stride, k.stride, 1, 1,
                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
       "cudnnSetConvolution2dDescriptor");
    ck(dnn.SetConvolutionMathType(cd, CUDNN_FMA_MATH), "cudnnSetConvolutionMathType(FMA)");
  }
  if (setup_error.empty()) {
    int n = 0, c = 0, h = 0, w = 0;
    ck(dnn.GetConvolution2dForwardOutputDim(cd, xd, wd, &n, &c, &h, &w),
       "cudnnGetConvolution2dForwardOutputDim");
    if (setup_error.empty() && (n != k.batch || c != k.c_out || h != ho || w != wo)) {
      setup_error = "cuDNN output " + std::to_string(n) + "x" + std::to_string(c) + "x" +
                    std::to_string(h) + "x" + std::to_string(w) + " differs from ours";
    }
  }
  CHECK(setup_error.empty(), "%s: cuDNN setup: %s", shape, setup_error.c_str());

  const float one = 1.0f, zero = 0.0f;
  double rel[kAlgoCount], ms[kAlgoCount];
  std::string algo_error[kAlgoCount];
  for (int algo = 0; algo < kAlgoCount; ++algo) {
    rel[algo] = INFINITY;
    ms[algo] = -1;
    if (!setup_error.empty() || algo == 3) continue;  // DIRECT has no implementation
    size_t ws_bytes = 0;
    cudnnStatus_t st = dnn.GetConvolutionForwardWorkspaceSize(handle, xd, wd, cd, yd, algo,
                                                              &ws_bytes);
    if (st != CUDNN_STATUS_SUCCESS) {
      algo_error[algo] = dnn.err(st);
      continue;
    }
    if (ws_bytes > (size_t{1} << 30)) {
      algo_error[algo] = "workspace " + std::to_string(ws_bytes >> 20) + " MiB";
      continue;
    }
    Buf ws(gpu, (ws_bytes + sizeof(float) - 1) / sizeof(float) + 1);
    auto forward = [&]() {
      cudnnStatus_t r = dnn.ConvolutionForward(handle, &one, xd, bx.p, wd, bw.p, cd, algo, ws.p,
                                               ws_bytes, &zero, yd, ref.p);
      if (r == CUDNN_STATUS_SUCCESS) r = dnn.AddTensor(handle, &one, bd, bb.p, &one, yd, ref.p);
      if (r != CUDNN_STATUS_SUCCESS) algo_error[algo] = dnn.err(r);
      return r == CUDNN_STATUS_SUCCESS;
    };
    ref.poison();
    if (!forward() || cudaStreamSynchronize(stream) != cudaSuccess) {
      if (algo_error[algo].empty()) algo_error[algo] = cudaGetErrorString(cudaGetLastError());
      continue;
    }
    auto want = ref.get();
    Compared cmp = compare(got, want);
    rel[algo] = cmp.nan ? INFINITY : cmp.rel;
    if (algo <= 1) {  // the checked ones: direct implicit GEMMs
      CHECK(cmp.nan == 0, "%s: %zu NaN/Inf in our output (vs cuDNN %s)", shape, cmp.nan,
            kAlgoNames[algo]);
      CHECK(cmp.rel <= kBound, "%s: rel L2 %.3e vs cuDNN %s > %.0e", shape, cmp.rel,
            kAlgoNames[algo], kBound);
    }
    ms[algo] = time_ms(stream, kReps, forward);
  }
  for (int algo = 0; algo <= 1; ++algo) {
    CHECK(!setup_error.empty() || algo_error[algo].empty(), "%s: cuDNN %s failed: %s", shape,
          kAlgoNames[algo], algo_error[algo].c_str());
  }
  int best = -1;
  for (int algo = 0; algo < kAlgoCount; ++algo)
    if (ms[algo] >= 0 && (best < 0 || ms[algo] < ms[best])) best = algo;
  const bool ok = s.ok() && setup_error.empty() && rel[0] <= kBound && rel[1] <= kBound;
  char best_txt[64] = "n/a";
  if (best >= 0)
    std::snprintf(best_txt, sizeof best_txt, "%s %s (%.1e)", fmt_ms(ms[best]).c_str(),
                  kAlgoNames[best], rel[best]);
  std::printf("| %-40s | %9.2e | %9.2e | %8s | %8s | %8s | %-36s | %-4s |\n", shape, rel[0],
              rel[1], fmt_ms(ours_ms).c_str(), fmt_ms(ms[0]).c_str(), fmt_ms(ms[1]).c_str(),
              best_txt, ok ? "ok" : "FAIL");
  for (int algo = 0; algo < kAlgoCount; ++algo)
    if (!algo_error[algo].empty())
      std::printf("    cuDNN %s: %s\n", kAlgoNames[algo], algo_error[algo].c_str());
  if (yd) dnn.DestroyTensorDescriptor(yd);
  if (xd) dnn.DestroyTensorDescriptor(xd);
  if (bd) dnn.DestroyTensorDescriptor(bd);
  if (wd) dnn.DestroyFilterDescriptor(wd);
  if (cd) dnn.DestroyConvolutionDescriptor(cd);
}

}  // namespace

int main() {
  std::string why;
  if (cuda_device_count(&why) == 0) {
    std::printf("test_cuda_cudnn: skipped: no CUDA device: %s\n", why.c_str());
    return 77;
  }
  std::string e;
  auto gpu = make_cuda_backend(0, CM4J_F32, &e);  // kernels: $CM4J_CUDA_KERNELS, else default
  if (!gpu) {
    std::printf("test_cuda_cudnn: FAIL: cannot create the CUDA backend: %s\n", e.c_str());
    return 1;
  }
  Cudnn dnn;
  if (!load_cudnn(&dnn, &why)) {
    std::printf("test_cuda_cudnn: skipped: %s\n", why.c_str());
    return 77;
  }
  cudnnHandle_t handle = nullptr;
  cudnnStatus_t st = dnn.Create(&handle);
  if (st == CUDNN_STATUS_SUCCESS) st = dnn.SetStream(handle, cuda_backend_stream(gpu.get()));
  if (st != CUDNN_STATUS_SUCCESS) {
    std::printf("test_cuda_cudnn: skipped: cuDNN %zu from %s does not initialize: %s\n",
                dnn.GetVersion(), dnn.path.c_str(), dnn.err(st).c_str());
    return 77;
  }
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("CM4J_TEST_SEED")) seed = std::strtoull(s, nullptr, 10);
  g_rng.seed(seed);
  const char* kernels = std::getenv("CM4J_CUDA_KERNELS");
  std::printf("test_cuda_cudnn: cuDNN %zu from %s; fp32, CUDNN_FMA_MATH (no TF32); ours: %s "
              "kernels\n",
              dnn.GetVersion(), dnn.path.c_str(), kernels && *kernels ? kernels : "default");
  std::printf("test_cuda_cudnn: seed %llu (CM4J_TEST_SEED=%llu repeats this run); times: "
              "median of %d, ms, bias included\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed), kReps);
  std::printf("| %-40s | %9s | %9s | %8s | %8s | %8s | %-36s | %-4s |\n", "case",
              "rel L2 ig", "rel L2 pg", "ours ms", "ig ms", "pg ms",
              "fastest cuDNN ms, algo (rel L2)", "ok");
  std::printf("|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(42, '-').c_str(),
              std::string(11, '-').c_str(), std::string(11, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str(), std::string(38, '-').c_str(),
              std::string(6, '-').c_str());

  // imagenet64 (block_out_channels 192/384/576/768).
  //                       name          b  c1   c2   h   w   co    k  s  p  up
  const Case cases[] = {{"res 64x64",    2, 192, 0,   64, 64, 192,  3, 1, 1, false},
                        {"res 32x32",    2, 384, 0,   32, 32, 384,  3, 1, 1, false},
                        {"res 16x16",    2, 576, 0,   16, 16, 576,  3, 1, 1, false},
                        {"res 8x8",      2, 768, 0,   8,  8,  768,  3, 1, 1, false},
                        {"qkv 1x1",      2, 384, 0,   32, 32, 1152, 1, 1, 0, false},
                        {"up cat",       2, 384, 192, 64, 64, 192,  3, 1, 1, false},
                        {"upsampler",    2, 576, 0,   16, 16, 576,  3, 1, 1, true},
                        {"downsample s2",2, 192, 0,   64, 64, 192,  3, 2, 1, false}};
  for (const Case& k : cases) run_case(gpu.get(), dnn, handle, k);

  dnn.Destroy(handle);
  std::printf("test_cuda_cudnn: %d case(s), %d failed check(s) (seed %llu)\n", g_cases,
              cm4j_test::failures, static_cast<unsigned long long>(seed));
  return cm4j_test::failures ? 1 : 0;
}

#else  // no CUDA backend in this build

int main() {
  std::printf("test_cuda_cudnn: skipped: built without the CUDA backend\n");
  return 77;
}

#endif

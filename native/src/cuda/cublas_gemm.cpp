#include "cuda/cublas_gemm.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "conv2d_nhwc_mma.cuh"

namespace cm4j {

namespace {

// cublas_api.h / library_types.h values (enums passed as int, as the ABI does).
constexpr int kSuccess = 0;           // CUBLAS_STATUS_SUCCESS
constexpr int kOpN = 0;               // CUBLAS_OP_N
constexpr int kR32F = 0, kR16F = 2, kR16BF = 14;  // cudaDataType CUDA_R_*
constexpr int kCompute32F = 68;       // CUBLAS_COMPUTE_32F
constexpr int kGemmDefault = -1;      // CUBLAS_GEMM_DEFAULT
constexpr size_t kWorkspaceBytes = 32 << 20;  // cuBLAS's advice for sm_90

struct Api {
  int (*Create)(void**) = nullptr;
  int (*Destroy)(void*) = nullptr;
  int (*SetStream)(void*, cudaStream_t) = nullptr;
  int (*SetWorkspace)(void*, void*, size_t) = nullptr;
  int (*GemmEx)(void*, int, int, int, int, int, const void*, const void*, int, int, const void*,
                int, int, const void*, void*, int, int, int, int) = nullptr;
  std::string problem;  // why the library is unusable; empty when it loaded
};

// The library, loaded once per process and never unloaded.
const Api& api() {
  static Api a;
  static std::once_flag once;
  std::call_once(once, [] {
    // CM4J_CUBLAS_LIB, where set, is the only library tried (a missing one: no cuBLAS).
    const char* own = std::getenv("CM4J_CUBLAS_LIB");
    void* lib = nullptr;
    if (own && *own) {
      if (!(lib = dlopen(own, RTLD_NOW | RTLD_LOCAL))) {
        a.problem = std::string("cuBLAS not loaded (CM4J_CUBLAS_LIB=") + own + ")";
        return;
      }
    } else {
      for (const char* name : {"libcublas.so.12", "libcublas.so.11", "libcublas.so"})
        if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
    }
    if (!lib) {
      a.problem = "cuBLAS not found (libcublas.so.12, .11 or .so; CM4J_CUBLAS_LIB names another)";
      return;
    }
    std::string missing;
    auto sym = [&](auto* fn, const char* name) {
      void* p = dlsym(lib, name);
      if (!p) missing += std::string(missing.empty() ? "" : ", ") + name;
      std::memcpy(fn, &p, sizeof p);
    };
    sym(&a.Create, "cublasCreate_v2");
    sym(&a.Destroy, "cublasDestroy_v2");
    sym(&a.SetStream, "cublasSetStream_v2");
    sym(&a.SetWorkspace, "cublasSetWorkspace_v2");
    sym(&a.GemmEx, "cublasGemmEx");
    if (!missing.empty()) a.problem = "cuBLAS lacks " + missing;
  });
  return a;
}

}  // namespace

bool cublas_conv_supports(const kernels::Conv2dNhwcParams& p) {
  return kernels::conv2d_nhwc_params_ok(p) && p.kernel == 1 && p.stride == 1 && p.pad == 0 &&
         !p.upsample && !p.norm;
}

CublasGemm* CublasGemm::open(std::string* why) {
  const Api& a = api();
  if (!a.problem.empty()) {
    *why = a.problem;
    return nullptr;
  }
  CublasGemm* g = new CublasGemm();
  if (a.Create(&g->handle_) != kSuccess) {
    g->handle_ = nullptr;
    *why = "cublasCreate failed";
  } else if (cudaMalloc(&g->workspace_, kWorkspaceBytes) != cudaSuccess) {
    cudaGetLastError();
    g->workspace_ = nullptr;
    *why = "no memory for cuBLAS's workspace";
  } else if (a.SetWorkspace(g->handle_, g->workspace_, kWorkspaceBytes) != kSuccess) {
    *why = "cublasSetWorkspace failed";
  } else {
    return g;
  }
  delete g;
  return nullptr;
}

CublasGemm::~CublasGemm() {
  if (handle_) api().Destroy(handle_);
  if (workspace_) cudaFree(workspace_);
}

cudaError_t CublasGemm::conv(const kernels::Conv2dNhwcParams& p, float* sums, cudaStream_t stream) {
  if (!cublas_conv_supports(p) || !sums) return cudaErrorInvalidValue;
  const Api& a = api();
  if (a.SetStream(handle_, stream) != kSuccess) return cudaErrorUnknown;
  // Row-major [M, c_out] = [M, c_in] x [c_in, c_out] is column-major
  // sums^T [c_out, M] = weight^T [c_out, c_in] x src^T [c_in, M]: no transposes. The packed
  // 1x1 weight's rows are the input channels, src1's first, then src2's.
  // One GEMM per image: cuBLAS picks its algorithm (and its own split of k) by the problem's
  // size, so only the same M in every call gives an image the same bits batched or alone.
  const int m = p.h_out * p.w_out;
  const int type = p.type == kernels::HalfType::kBF16 ? kR16BF : kR16F;
  const float one = 1.0f, zero = 0.0f;
  const char* w = static_cast<const char*>(p.weight);
  const char* src1 = static_cast<const char*>(p.src1);
  const char* src2 = static_cast<const char*>(p.src2);
  int s = kSuccess;
  for (int b = 0; b < p.batch && s == kSuccess; ++b) {
    float* image_sums = sums + static_cast<size_t>(b) * m * p.c_out;
    s = a.GemmEx(handle_, kOpN, kOpN, p.c_out, m, p.c_in1, &one, w, type, p.c_out,
                 src1 + static_cast<size_t>(b) * m * p.c_in1 * 2, type, p.c_in1, &zero,
                 image_sums, kR32F, p.c_out, kCompute32F, kGemmDefault);
    if (s == kSuccess && p.c_in2 > 0)
      s = a.GemmEx(handle_, kOpN, kOpN, p.c_out, m, p.c_in2, &one,
                   w + static_cast<size_t>(p.c_in1) * p.c_out * 2, type, p.c_out,
                   src2 + static_cast<size_t>(b) * m * p.c_in2 * 2, type, p.c_in2, &one,
                   image_sums, kR32F, p.c_out, kCompute32F, kGemmDefault);
  }
  if (s != kSuccess) return cudaErrorUnknown;
  return kernels::conv2d_nhwc_epilogue(p, sums, 1, stream);
}

}  // namespace cm4j

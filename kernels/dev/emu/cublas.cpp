// CPU stand-in for libcublas, built by run.sh as a shared library that the emulated backend
// dlopens through CM4J_CUBLAS_LIB: the five functions native/src/cuda/cublas_gemm.cpp calls,
// with cuBLAS's documented semantics (column-major, C = alpha op(A) op(B) + beta C; here
// op = N only, fp16/bf16 A and B, fp32 C, fp32 compute). Emulated device memory is host
// memory, so the GEMM reads the pointers directly, one sum in double per output. It runs at
// call time: a stream capture does not record it (its state is the executable's, not this
// library's), so an emulated graph replay does not redo it; the graph tests run without it.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstddef>

namespace {

constexpr int kSuccess = 0, kNotInitialized = 1, kInvalidValue = 7;
constexpr int kR32F = 0, kR16F = 2, kR16BF = 14, kCompute32F = 68;
int g_handle;  // the one handle's address

float load(const void* p, int type, size_t i) {
  return type == kR16F ? __half2float(static_cast<const __half*>(p)[i])
                       : __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
}

}  // namespace

extern "C" {

int cublasCreate_v2(void** handle) {
  *handle = &g_handle;
  return kSuccess;
}
int cublasDestroy_v2(void* handle) { return handle == &g_handle ? kSuccess : kNotInitialized; }
int cublasSetStream_v2(void* handle, void*) { return handle == &g_handle ? kSuccess : kNotInitialized; }
int cublasSetWorkspace_v2(void* handle, void* workspace, size_t bytes) {
  if (handle != &g_handle) return kNotInitialized;
  return workspace && bytes ? kSuccess : kInvalidValue;
}

int cublasGemmEx(void* handle, int transa, int transb, int m, int n, int k, const void* alpha,
                 const void* a, int a_type, int lda, const void* b, int b_type, int ldb,
                 const void* beta, void* c, int c_type, int ldc, int compute, int /*algo*/) {
  if (handle != &g_handle) return kNotInitialized;
  const bool half_type = a_type == kR16F || a_type == kR16BF;
  if (transa != 0 || transb != 0 || !half_type || b_type != a_type || c_type != kR32F ||
      compute != kCompute32F || m < 0 || n < 0 || k < 0 || lda < m || ldb < k || ldc < m)
    return kInvalidValue;
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  float* out = static_cast<float*>(c);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double sum = 0;
      for (int l = 0; l < k; ++l)
        sum += static_cast<double>(load(a, a_type, i + static_cast<size_t>(l) * lda)) *
               load(b, b_type, l + static_cast<size_t>(j) * ldb);
      float& o = out[i + static_cast<size_t>(j) * ldc];
      o = static_cast<float>(al * sum) + (be == 0.0f ? 0.0f : be * o);  // beta 0: C not read
    }
  return kSuccess;
}

}  // extern "C"

// cuDNN loaded at run time for the cuDNN cross-checks (test_cuda_cudnn: conv,
// test_cuda_cudnn_attn: attention), and the CUDA-event timer both use. Header-only, like
// cuda_test_util.h; include only when CM4J_HAVE_CUDA is defined.
//
// cuDNN is not a build dependency: the library is dlopen'ed and each test resolves the
// functions it calls with dlsym, declaring their prototypes and enum values itself (cuDNN 9
// cudnn_graph.h / cudnn_ops.h / cudnn_cnn.h / cudnn_adv.h; the same since cuDNN 8).
// The library is looked for as $CM4J_CUDNN_LIB (a path or a name), then libcudnn.so.9 and
// libcudnn.so; its sub-libraries (libcudnn_ops/cnn/adv/graph/engines_*.so.9) are preloaded
// from the folder it was found in, so a pip wheel's lib folder (nvidia/cudnn/lib) works
// without LD_LIBRARY_PATH.
#pragma once

#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace cm4j_test {

typedef int cudnnStatus_t;  // CUDNN_STATUS_SUCCESS = 0
typedef struct cudnnContext* cudnnHandle_t;
constexpr int CUDNN_STATUS_SUCCESS = 0;
constexpr int CUDNN_DATA_FLOAT = 0;  // cudnnDataType_t
constexpr int CUDNN_DEFAULT_MATH = 0;  // cudnnMathType_t: TF32 allowed on sm_80+
constexpr int CUDNN_FMA_MATH = 3;      // cudnnMathType_t: no tensor cores, no TF32

// The library and the handful of functions every test calls.
struct CudnnLib {
  void* lib = nullptr;
  std::string path;  // where it was loaded from
  size_t (*GetVersion)() = nullptr;
  const char* (*GetErrorString)(cudnnStatus_t) = nullptr;
  cudnnStatus_t (*Create)(cudnnHandle_t*) = nullptr;
  cudnnStatus_t (*Destroy)(cudnnHandle_t) = nullptr;
  cudnnStatus_t (*SetStream)(cudnnHandle_t, cudaStream_t) = nullptr;

  std::string err(cudnnStatus_t s) const {
    const char* m = GetErrorString ? GetErrorString(s) : nullptr;
    return std::string(m ? m : "?") + " (" + std::to_string(s) + ")";
  }

  // Resolves `name` into *fn, from the library or, failing that, from anything loaded
  // globally (the preloaded sub-libraries); appends the name to *missing when absent.
  template <typename Fn>
  void sym(Fn* fn, const char* name, std::string* missing) const {
    void* p = dlsym(lib, name);
    if (!p) p = dlsym(RTLD_DEFAULT, name);
    if (!p) *missing += std::string(missing->empty() ? "" : ", ") + name;
    std::memcpy(fn, &p, sizeof p);
  }
};

inline std::string cudnn_dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

// cuDNN 9's libcudnn.so.9 is a shim that dlopens its sub-libraries by name; loading them
// first, by path, from the shim's own folder makes them found there. Several passes: a
// sub-library whose dependencies are not loaded yet may load on a later one.
inline void cudnn_preload_sublibraries(const std::string& dir) {
  if (dir.empty()) return;
  const char* names[] = {"libcudnn_graph.so.9",
                         "libcudnn_engines_precompiled.so.9",
                         "libcudnn_engines_runtime_compiled.so.9",
                         "libcudnn_heuristic.so.9",
                         "libcudnn_ops.so.9",
                         "libcudnn_cnn.so.9",
                         "libcudnn_adv.so.9"};
  const int n = static_cast<int>(sizeof names / sizeof names[0]);
  std::vector<bool> done(n, false);
  for (int pass = 0; pass < n; ++pass) {
    bool progress = false;
    for (int i = 0; i < n; ++i) {
      if (done[i]) continue;
      if (dlopen((dir + "/" + names[i]).c_str(), RTLD_NOW | RTLD_GLOBAL)) {
        done[i] = true;
        progress = true;
      }
    }
    if (!progress) break;
  }
}

// Loads cuDNN and resolves the common functions; false with the reason in *why (one
// line: the device check's summary shows the last line of a skip).
inline bool open_cudnn(CudnnLib* c, std::string* why) {
  std::vector<std::string> names;
  if (const char* env = std::getenv("CM4J_CUDNN_LIB")) {
    if (*env) names.push_back(env);
  }
  names.push_back("libcudnn.so.9");
  names.push_back("libcudnn.so");
  std::string tried;
  for (const std::string& name : names) {
    if (name.find('/') != std::string::npos) cudnn_preload_sublibraries(cudnn_dir_of(name));
    void* h = dlopen(name.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (h) {
      c->lib = h;
      c->path = name;
      break;
    }
    const char* e = dlerror();
    std::printf("    dlopen %s: %s\n", name.c_str(), e ? e : "not found");
    tried += (tried.empty() ? "" : ", ") + name;
  }
  if (!c->lib) {
    *why = "cannot load cuDNN (tried " + tried + "; set CM4J_CUDNN_LIB to libcudnn.so.9's path)";
    return false;
  }
  char origin[4096] = "";
  if (dlinfo(c->lib, RTLD_DI_ORIGIN, origin) == 0 && origin[0]) {
    c->path = std::string(origin) + "/" + c->path.substr(c->path.rfind('/') + 1);
    cudnn_preload_sublibraries(origin);
  }
  std::string missing;
  c->sym(&c->GetVersion, "cudnnGetVersion", &missing);
  c->sym(&c->GetErrorString, "cudnnGetErrorString", &missing);
  c->sym(&c->Create, "cudnnCreate", &missing);
  c->sym(&c->Destroy, "cudnnDestroy", &missing);
  c->sym(&c->SetStream, "cudnnSetStream", &missing);
  if (!missing.empty()) {
    *why = "cuDNN at " + c->path + " lacks " + missing;
    return false;
  }
  return true;
}

// Median of `reps` timed runs of fn (enqueues on stream), in ms; negative when fn failed.
template <typename Fn>
double time_ms(cudaStream_t stream, int reps, Fn fn) {
  cudaEvent_t t0, t1;
  if (cudaEventCreate(&t0) != cudaSuccess) return -1;
  if (cudaEventCreate(&t1) != cudaSuccess) {
    cudaEventDestroy(t0);
    return -1;
  }
  std::vector<float> ms;
  bool ok = true;
  for (int r = 0; r < reps && ok; ++r) {
    cudaEventRecord(t0, stream);
    ok = fn();
    cudaEventRecord(t1, stream);
    float t = 0;
    if (ok) ok = cudaEventSynchronize(t1) == cudaSuccess &&
                 cudaEventElapsedTime(&t, t0, t1) == cudaSuccess;
    ms.push_back(t);
  }
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  if (!ok) return -1;
  std::sort(ms.begin(), ms.end());
  return 0.5 * (ms[(reps - 1) / 2] + ms[reps / 2]);
}

inline std::string fmt_ms(double ms) {
  char b[32];
  if (ms < 0) return "n/a";
  std::snprintf(b, sizeof b, "%.3f", ms);
  return b;
}

}  // namespace cm4j_test

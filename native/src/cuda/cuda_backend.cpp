// The CUDA backend's construction, memory (weights, activations and their NHWC conversion),
// staging buffer, CUDA graphs and factory; the ops are in the files named after their kernel
// family (cuda_backend_impl.h lists them).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "cuda/cuda_backend_impl.h"
#include "elementwise_nhwc.cuh"
#include "launch_mode.h"

namespace cm4j {
namespace cuda {

Status cuda_error(cudaError_t e, const std::string& op) {
  if (e == cudaSuccess) return Status::Ok();
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  int code = e == cudaErrorMemoryAllocation ? CM4J_ERR_OUT_OF_MEMORY : CM4J_ERR_DEVICE;
  return {code, "CUDA error in " + op + ": " + cudaGetErrorString(e)};
}

CudaBackend::CudaBackend(int device, CudaKernels kernel_set, kernels::ConvOperand operand,
                         cudaStream_t stream, const Options& options)
    : device_(device),
      kernels_(kernel_set),
      operand_(operand),
      nhwc_(kernel_set == CudaKernels::kCandidate && operand != kernels::ConvOperand::kF32),
      half_(operand == kernels::ConvOperand::kBF16 ? kernels::HalfType::kBF16
                                                   : kernels::HalfType::kF16),
      stream_(stream),
      sync_each_op_(options.sync_each_op),
      graphs_(options.graphs && !options.sync_each_op),
      norm_fusion_(options.norm_fusion),
      programmatic_launches_(options.programmatic_launches) {
  if (nhwc_) tuner_ = std::make_unique<ConvTuner>(options.tuning, device, options.wgmma);
}

CudaBackend::~CudaBackend() {
  cudaSetDevice(device_);
  cudaStreamSynchronize(stream_);
  tuner_.reset();  // its cuBLAS handle works on stream_
  cudaFree(staging_.data);
  cudaFree(counters_.data);
  for (auto& f : freq_tables_) cudaFree(f.second);
  cudaFree(labels_);
  for (float* p : live_) cudaFree(p);
  cudaStreamDestroy(stream_);
}

Status CudaBackend::alloc(size_t bytes, float** out) {
  *out = nullptr;
  cudaSetDevice(device_);
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes == 0 ? sizeof(float) : bytes);
  if (e != cudaSuccess)
    return cuda_error(e, "alloc (" + std::to_string(bytes) + " bytes)");
  *out = static_cast<float*>(p);
  std::lock_guard<std::mutex> lock(mu_);
  live_.insert(*out);
  return Status::Ok();
}

void CudaBackend::free(float* p) {
  if (!p) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (live_.erase(p) == 0) return;  // not ours, or already freed
  }
  cudaSetDevice(device_);
  cudaStreamSynchronize(stream_);  // queued work may still read it
  cudaFree(p);
}

Status CudaBackend::upload(float* dst, const float* src, size_t count) {
  cudaSetDevice(device_);
  cudaError_t e =
      cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyHostToDevice, stream_);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
  return cuda_error(e, "upload");
}

Status CudaBackend::download(float* dst, const float* src, size_t count) {
  cudaSetDevice(device_);
  cudaError_t e =
      cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyDeviceToHost, stream_);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
  return cuda_error(e, "download");
}

Status CudaBackend::upload_activation(float* dst, const float* src, const ActShape& shape) {
  if (!nhwc_) return upload(dst, src, shape.numel());
  cudaSetDevice(device_);
  float* staging = nullptr;
  Status s = staging_buffer(shape.numel(), "upload_activation", &staging);
  if (!s.ok()) return s;
  cudaError_t e = cudaMemcpyAsync(staging, src, shape.numel() * sizeof(float),
                                  cudaMemcpyHostToDevice, stream_);
  if (e == cudaSuccess)
    e = kernels::nchw_to_nhwc(staging, dst, half_, shape.batch, shape.channels,
                              shape.h * shape.w, stream_);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
  return cuda_error(e, "upload_activation");
}

Status CudaBackend::download_activation(float* dst, const float* src, const ActShape& shape) {
  if (!nhwc_) return download(dst, src, shape.numel());
  cudaSetDevice(device_);
  float* staging = nullptr;
  Status s = staging_buffer(shape.numel(), "download_activation", &staging);
  if (!s.ok()) return s;
  cudaError_t e = kernels::nhwc_to_nchw(src, staging, half_, shape.batch, shape.channels,
                                        shape.h * shape.w, stream_);
  if (e == cudaSuccess)
    e = cudaMemcpyAsync(dst, staging, shape.numel() * sizeof(float), cudaMemcpyDeviceToHost,
                        stream_);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
  return cuda_error(e, "download_activation");
}

Status CudaBackend::activation_from_f32(const float* src, float* dst, const ActShape& shape) {
  if (!nhwc_) return invalid("activation_from_f32: activations are plain float32");
  cudaSetDevice(device_);
  return finish(kernels::nchw_to_nhwc(src, dst, half_, shape.batch, shape.channels,
                                      shape.h * shape.w, stream_),
                "activation_from_f32");
}

Status CudaBackend::activation_to_f32(const float* src, float* dst, const ActShape& shape) {
  if (!nhwc_) return invalid("activation_to_f32: activations are plain float32");
  cudaSetDevice(device_);
  return finish(kernels::nhwc_to_nchw(src, dst, half_, shape.batch, shape.channels,
                                      shape.h * shape.w, stream_),
                "activation_to_f32");
}

Status CudaBackend::upload_weight(const float* host, size_t count, const char* op,
                                  std::unique_ptr<DeviceWeight>* out) {
  cudaSetDevice(device_);
  auto dw = std::make_unique<DeviceWeight>();
  dw->device = device_;
  dw->count = count;
  cudaError_t e = cudaMalloc(&dw->data, count * sizeof(float));
  if (e != cudaSuccess) {
    dw->data = nullptr;
    return cuda_error(e, std::string(op) + " (" + std::to_string(count * sizeof(float)) +
                             " bytes)");
  }
  // On our stream (a legacy-stream cudaMemcpy from pageable memory may return before
  // its DMA lands, and nothing would order it before our non-blocking stream's kernels).
  e = cudaMemcpyAsync(dw->data, host, count * sizeof(float), cudaMemcpyHostToDevice, stream_);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
  if (e != cudaSuccess) return cuda_error(e, op);
  *out = std::move(dw);
  return Status::Ok();
}

Status CudaBackend::grow_scratch(ScratchBuffer* buffer, size_t bytes, bool zero,
                                 const char* what, const char* op) {
  if (buffer->bytes >= bytes) return Status::Ok();
  cudaStreamSynchronize(stream_);
  cudaFree(buffer->data);
  buffer->data = nullptr;
  buffer->bytes = 0;
  cudaError_t e = cudaMalloc(&buffer->data, bytes);
  // On stream_, which does not wait for the legacy default stream's work: queued before the
  // kernels that count on the zeros.
  if (e == cudaSuccess && zero) e = cudaMemsetAsync(buffer->data, 0, bytes, stream_);
  if (e != cudaSuccess) {
    cudaFree(buffer->data);
    buffer->data = nullptr;
    return cuda_error(e, std::string(op) + " (" + std::to_string(bytes) + " bytes of " + what + ")");
  }
  buffer->bytes = bytes;
  ++scratch_epoch_;  // graphs captured with the old buffer are stale
  return Status::Ok();
}

Status CudaBackend::staging_buffer(size_t floats, const char* op, float** out) {
  Status s = grow_scratch(&staging_, floats * sizeof(float), false, "staging", op);
  *out = static_cast<float*>(staging_.data);
  return s;
}

Status CudaBackend::counter_buffer(size_t count, const char* op, unsigned** out) {
  // At least a page of counters: a few growths at most.
  Status s = grow_scratch(&counters_, std::max<size_t>(count, 1024) * sizeof(unsigned), true,
                          "arrival counters", op);
  *out = static_cast<unsigned*>(counters_.data);
  return s;
}

Status CudaBackend::finish(cudaError_t e, const char* op) {
  if (e == cudaSuccess && sync_each_op_) e = cudaStreamSynchronize(stream_);
  return cuda_error(e, op);
}

Status CudaBackend::synchronize() {
  cudaSetDevice(device_);
  return cuda_error(cudaStreamSynchronize(stream_), "synchronize");
}

namespace {

// The graph's programmatic edges (a kernel node that may start before the one it depends on
// finishes): what the capture made of the programmatic launches; 0 where the runtime cannot
// say (before CUDA 12.3).
size_t programmatic_edges(cudaGraph_t graph) {
#if CUDART_VERSION >= 12030
#if CUDART_VERSION >= 13000
  const auto edges = cudaGraphGetEdges;
#else
  const auto edges = cudaGraphGetEdges_v2;
#endif
  size_t n = 0;
  if (edges(graph, nullptr, nullptr, nullptr, &n) != cudaSuccess || n == 0) {
    cudaGetLastError();
    return 0;
  }
  std::vector<cudaGraphNode_t> from(n), to(n);
  std::vector<cudaGraphEdgeData> data(n);
  if (edges(graph, from.data(), to.data(), data.data(), &n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  size_t programmatic = 0;
  for (size_t i = 0; i < n; ++i)
    programmatic += data[i].type == cudaGraphDependencyTypeProgrammatic;
  return programmatic;
#else
  (void)graph;
  return 0;
#endif
}

}  // namespace

Status CudaBackend::capture(const std::function<Status()>& queue,
                            std::unique_ptr<CapturedWork>* out) {
  cudaSetDevice(device_);
  cudaError_t e = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess) return cuda_error(e, "capture");
  capturing_ = true;  // the conv tuner measures nothing meanwhile
  Status s;
  {
    kernels::ProgrammaticLaunches programmatic(programmatic_launches_);
    s = queue();
  }
  capturing_ = false;
  cudaGraph_t graph = nullptr;
  e = cudaStreamEndCapture(stream_, &graph);  // ends it whatever queue() did
  if (s.ok() && e != cudaSuccess) s = cuda_error(e, "capture");
  auto g = std::make_unique<DeviceGraph>();
  g->device = device_;
  if (s.ok() && programmatic_launches_) g->programmatic_edges = programmatic_edges(graph);
  if (s.ok()) s = cuda_error(cudaGraphInstantiate(&g->exec, graph, 0), "capture (instantiate)");
  if (graph) cudaGraphDestroy(graph);
  if (!s.ok()) return s;
  *out = std::move(g);
  return Status::Ok();
}

Status CudaBackend::replay(const CapturedWork& work) {
  auto* g = dynamic_cast<const DeviceGraph*>(&work);
  if (!g || g->device != device_) return invalid("replay: not a graph of this backend");
  cudaSetDevice(device_);
  return finish(cudaGraphLaunch(g->exec, stream_), "replay");
}

}  // namespace cuda

namespace {

const char* dtype_name(int dtype) {
  switch (dtype) {
    case CM4J_F32: return "fp32";
    case CM4J_F16: return "fp16";
    case CM4J_BF16: return "bf16";
    default: return "unknown";
  }
}

// An on/off switch from the environment: unset or empty leaves *value as it is; any text
// but on/off/1/0 is refused by name.
bool read_switch(const char* name, bool* value, std::string* error) {
  const char* text = std::getenv(name);
  if (!text || !*text) return true;
  if (std::strcmp(text, "on") == 0 || std::strcmp(text, "1") == 0) {
    *value = true;
    return true;
  }
  if (std::strcmp(text, "off") == 0 || std::strcmp(text, "0") == 0) {
    *value = false;
    return true;
  }
  *error = std::string(name) + "=" + text + ": expected on or off";
  return false;
}

}  // namespace

bool parse_cuda_kernels(const char* name, CudaKernels* out) {
  if (!name || !*name || std::strcmp(name, "default") == 0) {
    *out = CudaKernels::kDefault;
    return true;
  }
  if (std::strcmp(name, "reference") == 0) {
    *out = CudaKernels::kReference;
    return true;
  }
  if (std::strcmp(name, "candidate") == 0) {
    *out = CudaKernels::kCandidate;
    return true;
  }
  return false;
}

int cuda_device_count(std::string* error) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (error) *error = std::string("CUDA unavailable: ") + cudaGetErrorString(e);
    return 0;
  }
  if (n == 0 && error) *error = "CUDA unavailable: no CUDA device found";
  return n;
}

std::unique_ptr<Backend> make_cuda_backend_with(int device, int dtype, CudaKernels kernel_set,
                                                std::string* error) {
  std::string scratch;
  if (!error) error = &scratch;
  const int n = cuda_device_count(error);
  if (n == 0) return nullptr;
  if (device < 0 || device >= n) {
    *error = "CUDA device " + std::to_string(device) + " does not exist (" +
             std::to_string(n) + " device" + (n == 1 ? "" : "s") + " found)";
    return nullptr;
  }
  kernels::ConvOperand operand;
  switch (dtype) {
    case CM4J_F32: operand = kernels::ConvOperand::kF32; break;
    case CM4J_F16: operand = kernels::ConvOperand::kF16; break;
    case CM4J_BF16: operand = kernels::ConvOperand::kBF16; break;
    default:
      *error = "CUDA backend: unknown dtype " + std::to_string(dtype);
      return nullptr;
  }
  // The environment's switches, refused before anything is allocated. CUDA graphs: unset,
  // on in the candidate set only, until a GPU run verifies them.
  cuda::CudaBackend::Options options;
  options.graphs = kernel_set == CudaKernels::kCandidate;
  const char* tuning_env = std::getenv("CM4J_TUNING");
  if (!parse_tuning_mode(tuning_env, &options.tuning)) {
    *error = std::string("CM4J_TUNING=") + tuning_env + ": expected off, cached or full";
    return nullptr;
  }
  if (!read_switch("CM4J_CUDA_SYNC", &options.sync_each_op, error) ||
      !read_switch("CM4J_CUDA_GRAPHS", &options.graphs, error) ||
      !read_switch("CM4J_CUDA_NORM_FUSION", &options.norm_fusion, error) ||
      !read_switch("CM4J_CUDA_WGMMA", &options.wgmma, error) ||
      !read_switch("CM4J_CUDA_PDL", &options.programmatic_launches, error))
    return nullptr;
  cudaError_t e = cudaSetDevice(device);
  cudaDeviceProp prop;
  if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, device);
  if (e == cudaSuccess) {
    // Programmatic dependent launch: kernels compiled from sm_90+ PTX, so run on a 9.0+ card
    // (below sm_90 the kernels' wait is compiled out, and a card may run them from older PTX).
    options.programmatic_launches =
        options.programmatic_launches && cuda_kernels_ptx_version() >= 90;
    // The fp16/bf16 conv runs on sm_80+ tensor cores.
    if (operand != kernels::ConvOperand::kF32 && prop.major < 8) {
      *error = std::string("CUDA backend: ") + dtype_name(dtype) + " needs compute capability 8.0+, " +
               prop.name + " is " + std::to_string(prop.major) + "." + std::to_string(prop.minor);
      return nullptr;
    }
  }
  cudaStream_t stream = nullptr;
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (e == cudaSuccess) e = cuda_probe_kernels(stream);
  if (e != cudaSuccess) {
    cudaGetLastError();
    std::string what = "CUDA device " + std::to_string(device);
    if (cudaGetDeviceProperties(&prop, device) == cudaSuccess)
      what += " (" + std::string(prop.name) + ", sm_" + std::to_string(prop.major) +
              std::to_string(prop.minor) + ")";
    *error = "CUDA unavailable: " + what + ": " + cudaGetErrorString(e);
    if (stream) cudaStreamDestroy(stream);
    return nullptr;
  }
  return std::make_unique<cuda::CudaBackend>(device, kernel_set, operand, stream, options);
}

std::unique_ptr<Backend> make_cuda_backend(int device, int dtype, std::string* error) {
  const char* env = std::getenv("CM4J_CUDA_KERNELS");
  CudaKernels kernel_set;
  if (!parse_cuda_kernels(env, &kernel_set)) {
    if (error)
      *error = std::string("CM4J_CUDA_KERNELS=") + env +
               ": expected default, reference or candidate";
    return nullptr;
  }
  return make_cuda_backend_with(device, dtype, kernel_set, error);
}

cudaStream_t cuda_backend_stream(Backend* backend) {
  auto* b = dynamic_cast<cuda::CudaBackend*>(backend);
  return b ? b->stream() : nullptr;
}

}  // namespace cm4j

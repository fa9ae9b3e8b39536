// CUDA-only entry points beyond backend.h, for the native GPU tests and the benchmark.
// Include only when CM4J_HAVE_CUDA is defined (the CUDA runtime headers are needed).
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "backend.h"

namespace cm4j {

// Which kernel variant runs each op. make_cuda_backend takes it from the environment
// variable CM4J_CUDA_KERNELS ("default" when unset):
//   default    the shared-memory tiled conv and the other simple kernels
//   reference  a one-thread-per-output conv (slow, the simplest possible gather)
//   candidate  the default set plus every variant no GPU has run yet (opt-in until a device
//              check verifies it): the time path as one kernel (time_embedding.cu); with
//              dtype fp16/bf16 the NHWC mode: activations stored channels-last in that type
//              between ops, every activation op a kernels/*_nhwc.cu kernel
enum class CudaKernels { kDefault, kReference, kCandidate };

// Parses a CM4J_CUDA_KERNELS value; false for unknown names.
bool parse_cuda_kernels(const char* name, CudaKernels* out);

// make_cuda_backend with an explicit kernel choice instead of the environment's. dtype
// CM4J_F16 / CM4J_BF16 (sm_80+) runs convolutions on tensor cores with operands in that
// type; activations and every other op stay fp32.
std::unique_ptr<Backend> make_cuda_backend_with(int device, int dtype, CudaKernels kernel_set,
                                                std::string* error);

// The stream a CUDA backend queues all its work on; nullptr (the legacy default stream)
// when `backend` is not a CUDA backend.
cudaStream_t cuda_backend_stream(Backend* backend);

// Runs a one-thread kernel on `stream` and waits: catches a missing kernel image for the
// device's architecture (and a broken driver) when the backend is created, not mid-model.
cudaError_t cuda_probe_kernels(cudaStream_t stream);

// The PTX version (e.g. 90) the current device's copy of the kernels was compiled from: below
// 90 (a build without sm_90, JIT-compiled on a newer card) they lack the wait that
// programmatic launch relies on (kernels/launch_mode.h); 0 when it cannot be read.
int cuda_kernels_ptx_version();

}  // namespace cm4j

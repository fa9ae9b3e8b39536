#include "cuda/cuda_backend.h"
#include "launch.cuh"

// Resource ceilings, per thread and per block, for every template instance on sm_80 and
// sm_90 (kernels/dev/ptxas-check.sh holds ptxas to them, and to no spills):
// ptxas budget: probe_kernel 8 registers, 0 bytes shared

namespace cm4j {

namespace {
__global__ void probe_kernel(int* out) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  *out = 42;
}
}  // namespace

cudaError_t cuda_probe_kernels(cudaStream_t stream) {
  int* d = nullptr;
  cudaError_t e = cudaMalloc(&d, sizeof(int));
  if (e != cudaSuccess) return e;
  CM4J_LAUNCH(probe_kernel, 1, 1, stream, d);
  e = cudaGetLastError();
  int h = 0;
  if (e == cudaSuccess) e = cudaMemcpyAsync(&h, d, sizeof(int), cudaMemcpyDeviceToHost, stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
  cudaFree(d);
  if (e == cudaSuccess && h != 42) e = cudaErrorUnknown;
  return e;
}

int cuda_kernels_ptx_version() {
  cudaFuncAttributes attributes;
  if (cudaFuncGetAttributes(&attributes, probe_kernel) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return attributes.ptxVersion;
}

}  // namespace cm4j

#include "scheduler.cuh"

#include "launch.cuh"

namespace cm4j {
namespace kernels {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535LL * 16;  // grid-stride loops cover larger tensors

unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < kMaxBlocks ? b : kMaxBlocks);
}

// x and y may alias, so neither is __restrict__.
__global__ void scale_model_input_kernel(const float* x, const float* __restrict__ divisor,
                                         float* y, int64_t n, int64_t image) {
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < n;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[o] = __fdiv_rn(x[o], divisor[o / image]);
}

// Java's Math.min(Math.max(d, -1f), 1f): comparisons, not fminf/fmaxf, which would turn
// NaN into a bound.
__device__ __forceinline__ float clip_unit(float d) {
  d = d < -1.0f ? -1.0f : d;
  return d > 1.0f ? 1.0f : d;
}

__global__ void scheduler_step_kernel(const SchedulerStepParams p, int64_t n) {
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < n;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = o / p.image;
    float denoised = __fadd_rn(__fmul_rn(p.c_out[b], p.model_output[o]),
                               __fmul_rn(p.c_skip[b], p.sample[o]));
    if (p.clip) denoised = clip_unit(denoised);
    const float z = __fmul_rn(p.noise ? p.noise[o] : 0.0f, p.s_noise);
    p.prev[o] = __fadd_rn(denoised, __fmul_rn(z, p.noise_scale[b]));
  }
}

}  // namespace

cudaError_t scale_model_input_forward(const float* x, const float* divisor, float* y, int batch,
                                      int64_t image, cudaStream_t stream) {
  if (!x || !divisor || !y || batch < 1 || image < 1) return cudaErrorInvalidValue;
  const int64_t n = batch * image;
  CM4J_LAUNCH(scale_model_input_kernel, blocks_for(n), kThreads, stream, x, divisor, y, n, image);
  return cudaGetLastError();
}

cudaError_t scheduler_step_forward(const SchedulerStepParams& p, cudaStream_t stream) {
  if (!p.model_output || !p.sample || !p.c_skip || !p.c_out || !p.noise_scale || !p.prev ||
      p.batch < 1 || p.image < 1)
    return cudaErrorInvalidValue;
  const int64_t n = p.batch * p.image;
  CM4J_LAUNCH(scheduler_step_kernel, blocks_for(n), kThreads, stream, p, n);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace cm4j

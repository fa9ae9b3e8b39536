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

// x and y may alias, so neither is __restrict__ (nor is divisor: launch_mode.h).
__global__ void scale_model_input_kernel(const float* x, const float* divisor,
                                         float* y, int64_t n, int64_t image) {
  CM4J_WAIT_PREVIOUS_KERNEL();
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
  CM4J_WAIT_PREVIOUS_KERNEL();
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

#define CM4J_GRID_STRIDE(o, n)                                                       \
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < (n); \
       o += static_cast<int64_t>(gridDim.x) * blockDim.x)

__global__ void edit_denoise_kernel(const EditStepParams p, int64_t n, int64_t image) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  CM4J_GRID_STRIDE(o, n) {
    const int64_t b = o / image;
    p.model_output[o] = clip_unit(__fadd_rn(__fmul_rn(p.c_out[b], p.model_output[o]),
                                            __fmul_rn(p.c_skip[b], p.sample[o])));
  }
}

// One thread per (b, c, patch): the patch's sum row by row, left to right, as the CPU.
__global__ void edit_patch_means_kernel(const EditStepParams p, int64_t n) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  const int cells = p.size / p.patch;
  const float area = static_cast<float>(p.patch * p.patch);
  CM4J_GRID_STRIDE(o, n) {
    const int64_t plane = o / (cells * cells);
    const int pr = static_cast<int>(o % (cells * cells)) / cells;
    const int pc = static_cast<int>(o % cells);
    const float* corner = p.model_output + plane * p.size * p.size +
                          static_cast<int64_t>(pr * p.patch) * p.size + pc * p.patch;
    float sum = 0.0f;
    for (int i = 0; i < p.patch; ++i)
      for (int j = 0; j < p.patch; ++j) sum = __fadd_rn(sum, corner[i * p.size + j]);
    p.workspace[o] = __fdiv_rn(sum, area);
  }
}

__device__ __forceinline__ float luma(const EditStepParams& p, const float* x, int64_t plane) {
  return __fadd_rn(__fadd_rn(__fmul_rn(p.q0, x[0]), __fmul_rn(p.q1, x[plane])),
                   __fmul_rn(p.q2, x[2 * plane]));
}

__global__ void edit_replace_kernel(const EditStepParams p, int64_t n, int64_t image) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  const int64_t plane = static_cast<int64_t>(p.size) * p.size;
  CM4J_GRID_STRIDE(o, n) {
    const int64_t b = o / image;
    const int64_t within = o % image;
    const int c = static_cast<int>(within / plane);
    const int64_t pixel = within % plane;
    const float d = p.model_output[o];
    float r = d;
    if (p.replacement == 1) {
      const float m = p.mask_keep[b * plane + pixel];
      r = __fadd_rn(__fmul_rn(m, p.reference[o]), __fmul_rn(__fsub_rn(1.0f, m), d));
    } else if (p.replacement == 2) {
      const int64_t first = b * image + pixel;  // channel 0 of this pixel
      const float shift = __fsub_rn(luma(p, p.reference + first, plane),
                                    luma(p, p.model_output + first, plane));
      const float q = c == 0 ? p.q0 : c == 1 ? p.q1 : p.q2;
      r = __fadd_rn(d, __fmul_rn(q, shift));
    } else if (p.replacement == 3) {
      const int cells = p.size / p.patch;
      const int row = static_cast<int>(pixel / p.size), col = static_cast<int>(pixel % p.size);
      const float mean = p.workspace[((b * p.channels + c) * cells + row / p.patch) * cells +
                                     col / p.patch];
      r = __fadd_rn(__fsub_rn(d, mean), p.reference[o]);
    }
    p.sample[o] = p.noise ? __fadd_rn(r, __fmul_rn(p.noise[o], p.noise_scale[b])) : r;
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

cudaError_t edit_step_forward(const EditStepParams& p, cudaStream_t stream) {
  if (!p.model_output || !p.sample || !p.c_skip || !p.c_out || !p.noise_scale || p.batch < 1 ||
      p.channels < 1 || p.size < 1 || p.replacement < 0 || p.replacement > 3)
    return cudaErrorInvalidValue;
  // What each replacement reads (backend.h's edit_step_problem, checked here too so that no
  // caller can reach a division by a zero patch or a null reference)
  if ((p.replacement != 0 && !p.reference) || (p.replacement == 1 && !p.mask_keep) ||
      (p.replacement == 2 && p.channels != 3) ||
      (p.replacement == 3 && (p.patch < 1 || p.size % p.patch != 0 || !p.workspace)))
    return cudaErrorInvalidValue;
  const int64_t image = static_cast<int64_t>(p.channels) * p.size * p.size;
  const int64_t n = p.batch * image;
  CM4J_LAUNCH(edit_denoise_kernel, blocks_for(n), kThreads, stream, p, n, image);
  if (p.replacement == 3) {
    const int64_t cells = p.size / p.patch;
    const int64_t patches = static_cast<int64_t>(p.batch) * p.channels * cells * cells;
    CM4J_LAUNCH(edit_patch_means_kernel, blocks_for(patches), kThreads, stream, p, patches);
  }
  CM4J_LAUNCH(edit_replace_kernel, blocks_for(n), kThreads, stream, p, n, image);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace cm4j

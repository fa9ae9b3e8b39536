// The consistency-model scheduler's elementwise arithmetic (backend.h: scale_model_input,
// scheduler_step), bit for bit the CPU backend's and the Java scheduler's: every operation
// is a round-to-nearest intrinsic (__fmul_rn, __fadd_rn, __fdiv_rn), which nvcc never
// contracts into a fused multiply-add (it does contract a*b + c written plainly).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace cm4j {
namespace kernels {

// y[b, i] = x[b, i] / divisor[b]; x, y [B, image] (may alias), divisor [B], all on the device.
cudaError_t scale_model_input_forward(const float* x, const float* divisor, float* y, int batch,
                                      int64_t image, cudaStream_t stream);

// denoised = c_out[b] * model_output + c_skip[b] * sample, clamped to [-1, 1] when clip
// (NaN stays NaN); prev = denoised + (noise * s_noise) * noise_scale[b].
struct SchedulerStepParams {
  int batch = 1;
  int64_t image = 0;  // elements per image
  bool clip = false;
  float s_noise = 1.0f;
  const float* model_output = nullptr;  // [B, image]
  const float* sample = nullptr;        // [B, image]
  const float* noise = nullptr;         // [B, image], or null for zeros
  const float* c_skip = nullptr;        // [B]
  const float* c_out = nullptr;         // [B]
  const float* noise_scale = nullptr;   // [B]
  float* prev = nullptr;                // [B, image]; may alias sample
};

cudaError_t scheduler_step_forward(const SchedulerStepParams& p, cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

// The consistency-model scheduler's and the editing loop's elementwise arithmetic (backend.h:
// scale_model_input, scheduler_step, edit_step), bit for bit the CPU backend's and the Java
// loops': every operation is a round-to-nearest intrinsic (__fmul_rn, __fadd_rn, __fsub_rn,
// __fdiv_rn), which nvcc never contracts into a fused multiply-add (it does contract a*b + c
// written plainly).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

// Resource ceilings, per thread and per block, for every template instance on sm_80 and
// sm_90 (kernels/dev/ptxas-check.sh holds ptxas to them, and to no spills):
// ptxas budget: scale_model_input_kernel 32 registers, 0 bytes shared
// ptxas budget: scheduler_step_kernel 32 registers, 0 bytes shared
// ptxas budget: edit_denoise_kernel 32 registers, 0 bytes shared
// ptxas budget: edit_replace_kernel 40 registers, 0 bytes shared
// ptxas budget: edit_patch_means_kernel 32 registers, 0 bytes shared

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

// The zero-shot editing loop's step (backend.h: edit_step): each patch sum of superres is one
// thread's sequential loop in the CPU's order.
struct EditStepParams {
  int batch = 1, channels = 0, size = 0;
  int replacement = 0;  // backend.h EditReplacement: 0 none, 1 inpaint, 2 colorize, 3 superres
  int patch = 0;
  float q0 = 0, q1 = 0, q2 = 0;  // the unit luma axis (colorize)
  float* model_output = nullptr;      // [B, C, S, S], replaced by the denoised d
  float* sample = nullptr;            // [B, C, S, S]
  const float* reference = nullptr;   // [B, C, S, S] or null
  const float* mask_keep = nullptr;   // [B, S, S]
  const float* noise = nullptr;       // [B, C, S, S] or null
  const float* c_skip = nullptr;      // [B]
  const float* c_out = nullptr;       // [B]
  const float* noise_scale = nullptr; // [B]
  float* workspace = nullptr;         // [B, C, S/p, S/p] (superres)
};

// d = clamp(c_out * model_output + c_skip * sample); sample = R(y, d) (+ noise * noise_scale).
cudaError_t edit_step_forward(const EditStepParams& p, cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

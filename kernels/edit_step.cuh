// The zero-shot editing loop's step (backend.h: edit_step), bit for bit the CPU backend's and
// the Java loop's: every operation is a round-to-nearest intrinsic (__fmul_rn, __fadd_rn,
// __fsub_rn, __fdiv_rn), which nvcc never contracts into a fused multiply-add, and each patch
// sum of superres is one thread's sequential loop in the CPU's order.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace cm4j {
namespace kernels {

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

// The consistency-model sampling loop on one backend (cm4j_unet_sample, and with an edit step
// cm4j_unet_edit): the sample goes up once, every step scales it, runs the UNet plan with its
// inputs and output in backend memory and applies the scheduler's (or the edit's) step
// there, and the final sample comes down once.
#pragma once

#include <cstdint>

#include "plan.h"

namespace cm4j {

// The editing loop's extra inputs (cm4j_unet_edit): each step applies edit_step with them
// instead of scheduler_step. Host memory, already validated.
struct EditLoopArgs {
  EditReplacement replacement = EditReplacement::kNone;
  int patch = 0;                        // kSuperres
  const float* reference = nullptr;     // [B, image], or null for kNone
  const float* mask_keep = nullptr;     // [B, S * S], kInpaint
};

// Host memory, already validated (engine.cpp). Per-step values are [steps, batch], row s
// for step s; see cm4j_unet_sample in cm4j.h for the arithmetic.
struct SampleLoopArgs {
  int batch = 1, steps = 1;
  int64_t image = 0;                      // elements per image, C * S * S
  ActShape shape;                         // [B, C, S, S] of the UNet's input and output
  const float* sample_in = nullptr;       // [B, image]
  const float* timesteps = nullptr;       // [steps, B]
  const float* input_scale = nullptr;     // [steps, B]
  const float* c_skip = nullptr;          // [steps, B]
  const float* c_out = nullptr;           // [steps, B]
  const float* noise_scale = nullptr;     // [steps, B]
  const float* noise = nullptr;           // [steps, B, image], or null for zeros
  float s_noise = 1.0f;
  bool clip = false;
  float* sample_out = nullptr;            // [B, image]; may be sample_in
  const EditLoopArgs* edit = nullptr;     // set: the editing loop (clip and s_noise unused)
};

// ctx: the context a forward pass of `plan` runs with (backend, arena, class labels, taps);
// its host sample, timestep and output are not used.
Status run_sample_loop(const Plan& plan, ExecContext ctx, const SampleLoopArgs& a);

}  // namespace cm4j

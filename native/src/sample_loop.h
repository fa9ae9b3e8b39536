// The consistency-model sampling loop on one backend (cm4j_unet_sample, and with an edit step
// cm4j_unet_edit): the sample goes up once, every step scales it, runs the UNet plan with its
// inputs and output in backend memory and applies the scheduler's (or the edit's) step
// there, and the final sample comes down once.
#pragma once

#include <cstdint>
#include <vector>

#include "plan.h"
#include "plan_graphs.h"

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

// The backend buffers of the sampling loops (the sample, the model's input and output, the
// per-step tables, the noise, the editing loop's), kept from one call to the next: a call of
// the same shape gets the same buffers, so the passes captured for it (plan_graphs.h, keyed
// by those buffers) are replayed rather than captured again.
class LoopBuffers {
 public:
  explicit LoopBuffers(Backend* backend) : backend_(backend) {}
  ~LoopBuffers();
  LoopBuffers(const LoopBuffers&) = delete;
  LoopBuffers& operator=(const LoopBuffers&) = delete;

  // A call's allocations come in the same order each time: the i-th is the i-th slot's
  // buffer when that holds exactly `floats`, else a new one (from there on).
  void begin() { next_ = 0; }
  Status alloc(size_t floats, float** out);
  void release();

 private:
  struct Slot {
    float* p;
    size_t floats;
  };
  Backend* backend_;
  std::vector<Slot> slots_;
  size_t next_ = 0;
};

// ctx: the context a forward pass of `plan` runs with (backend, arena, class labels, taps);
// its host sample, timestep and output are not used. Each step's pass goes through
// `graphs` (captured and replayed where the backend can); buffers come from `buffers`.
Status run_sample_loop(const Plan& plan, PlanGraphs& graphs, LoopBuffers& buffers,
                       ExecContext ctx, const SampleLoopArgs& a);

}  // namespace cm4j

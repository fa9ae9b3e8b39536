// The editing loop's step (backend.h: edit_step), bit for bit the Java loop's
// (io.cm4j.edit.Editing, Replacement): compiled with -ffp-contract=off like scheduler.cpp (see
// CMakeLists.txt), so no product and sum are fused into one rounding. One pool task per image.
#include "cm4j.h"
#include "cpu/ops.h"

namespace cm4j {
namespace cpu {

namespace {

// Java's Math.min(Math.max(d, -1f), 1f): NaN stays NaN.
inline float clip_unit(float d) {
  d = d < -1.0f ? -1.0f : d;
  return d > 1.0f ? 1.0f : d;
}

// R(y, d) of image b into x (the noise comes after).
void replace(const EditStepParams& p, const EditStepArgs& a, int64_t b, const float q[3]) {
  const int64_t plane = static_cast<int64_t>(p.size) * p.size;
  const int64_t begin = b * p.channels * plane;
  const float* d = a.model_output + begin;
  const float* y = a.reference ? a.reference + begin : nullptr;
  float* x = a.sample + begin;
  switch (p.replacement) {
    case EditReplacement::kNone:
      for (int64_t i = 0; i < p.channels * plane; ++i) x[i] = d[i];
      break;
    case EditReplacement::kInpaint: {
      const float* mask = a.mask_keep + b * plane;
      for (int c = 0; c < p.channels; ++c)
        for (int64_t i = 0; i < plane; ++i) {
          const float m = mask[i];
          x[c * plane + i] = m * y[c * plane + i] + (1.0f - m) * d[c * plane + i];
        }
      break;
    }
    case EditReplacement::kColorize:
      for (int64_t i = 0; i < plane; ++i) {
        const float qy = (q[0] * y[i] + q[1] * y[plane + i]) + q[2] * y[2 * plane + i];
        const float qd = (q[0] * d[i] + q[1] * d[plane + i]) + q[2] * d[2 * plane + i];
        const float shift = qy - qd;
        for (int c = 0; c < 3; ++c) x[c * plane + i] = d[c * plane + i] + q[c] * shift;
      }
      break;
    case EditReplacement::kSuperres: {
      const int s = p.size, patch = p.patch, cells = s / patch;
      const float area = static_cast<float>(patch * patch);
      float* means = a.workspace + b * p.channels * cells * cells;
      for (int c = 0; c < p.channels; ++c)
        for (int pr = 0; pr < cells; ++pr)
          for (int pc = 0; pc < cells; ++pc) {
            const float* corner = d + c * plane + (pr * patch) * s + pc * patch;
            float sum = 0.0f;
            for (int i = 0; i < patch; ++i)
              for (int j = 0; j < patch; ++j) sum += corner[i * s + j];
            means[(c * cells + pr) * cells + pc] = sum / area;
          }
      for (int c = 0; c < p.channels; ++c)
        for (int r = 0; r < s; ++r)
          for (int col = 0; col < s; ++col) {
            const int64_t k = c * plane + r * s + col;
            x[k] = (d[k] - means[(c * cells + r / patch) * cells + col / patch]) + y[k];
          }
      break;
    }
  }
}

}  // namespace

Status edit_step(CpuContext& ctx, const EditStepParams& p, const EditStepArgs& a) {
  if (const char* problem = edit_step_problem(p, a)) return invalid(problem);
  float q[3];
  edit_luma_axis(q);
  const int64_t image = static_cast<int64_t>(p.channels) * p.size * p.size;
  const bool ok = ctx.pool.parallel_for(p.batch, [&](int b, int /*worker*/) {
    const float c_out = a.c_out[b], c_skip = a.c_skip[b], noise_scale = a.noise_scale[b];
    float* d = a.model_output + b * image;
    const float* x = a.sample + b * image;
    for (int64_t i = 0; i < image; ++i) d[i] = clip_unit(c_out * d[i] + c_skip * x[i]);
    replace(p, a, b, q);
    if (a.noise) {
      const float* e = a.noise + b * image;
      float* next = a.sample + b * image;
      for (int64_t i = 0; i < image; ++i) next[i] = next[i] + e[i] * noise_scale;
    }
  });
  return ok ? Status::Ok() : Status{CM4J_ERR_INTERNAL, "cpu: edit_step failed"};
}

}  // namespace cpu
}  // namespace cm4j

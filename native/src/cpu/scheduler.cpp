// The scheduler's elementwise arithmetic (backend.h: scale_model_input, scheduler_step),
// bit for bit the Java scheduler's: this file is compiled with -ffp-contract=off (see
// CMakeLists.txt), so a*b + c*d stays two rounded products and a rounded sum where a target
// with FMA would otherwise fuse them.
#include <algorithm>

#include "cm4j.h"
#include "cpu/ops.h"

namespace cm4j {
namespace cpu {

namespace {

// Elements per pool task: large enough to amortize the dispatch, small enough to spread
// a batch-1 64x64 image (12288 values) over a few cores.
constexpr int64_t kChunk = 4096;

// Runs fn(b, begin, end) over the [batch, image] elements in chunks on the pool, split
// further where a chunk crosses from image b to b + 1.
template <typename Fn>
bool for_chunks(CpuContext& ctx, int batch, int64_t image, const Fn& fn) {
  const int64_t n = batch * image;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  return ctx.pool.parallel_for(static_cast<int>(chunks), [&](int c, int /*worker*/) {
    const int64_t end = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < end;) {
      const int64_t b = i / image;
      const int64_t stop = std::min(end, (b + 1) * image);
      fn(b, i, stop);
      i = stop;
    }
  });
}

// Java's Math.min(Math.max(d, -1f), 1f): NaN stays NaN (both comparisons are false).
inline float clip_unit(float d) {
  d = d < -1.0f ? -1.0f : d;
  return d > 1.0f ? 1.0f : d;
}

}  // namespace

Status scale_model_input(CpuContext& ctx, const float* x, const float* divisor, float* y,
                         int batch, int64_t image) {
  if (!x || !divisor || !y) return invalid("scale_model_input: null pointer");
  if (batch <= 0 || image <= 0) return invalid("scale_model_input: bad shape");
  const bool ok = for_chunks(ctx, batch, image, [&](int64_t b, int64_t begin, int64_t end) {
    const float d = divisor[b];
    for (int64_t i = begin; i < end; ++i) y[i] = x[i] / d;
  });
  return ok ? Status::Ok() : Status{CM4J_ERR_INTERNAL, "cpu: scale_model_input failed"};
}

Status scheduler_step(CpuContext& ctx, const SchedulerStepParams& p, const SchedulerStepArgs& a) {
  if (!a.model_output || !a.sample || !a.c_skip || !a.c_out || !a.noise_scale || !a.prev)
    return invalid("scheduler_step: null pointer");
  if (p.batch <= 0 || p.image <= 0) return invalid("scheduler_step: bad shape");
  const bool ok = for_chunks(ctx, p.batch, p.image, [&](int64_t b, int64_t begin, int64_t end) {
    const float c_out = a.c_out[b], c_skip = a.c_skip[b], noise_scale = a.noise_scale[b];
    for (int64_t i = begin; i < end; ++i) {
      float denoised = c_out * a.model_output[i] + c_skip * a.sample[i];
      if (p.clip) denoised = clip_unit(denoised);
      const float z = (a.noise ? a.noise[i] : 0.0f) * p.s_noise;
      a.prev[i] = denoised + z * noise_scale;
    }
  });
  return ok ? Status::Ok() : Status{CM4J_ERR_INTERNAL, "cpu: scheduler_step failed"};
}

}  // namespace cpu
}  // namespace cm4j

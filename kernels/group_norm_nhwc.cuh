// Group normalisation over channels-last fp16/bf16 activations (the NHWC mode, nhwc.cuh)
// with fp32 two-pass statistics, fused with the time-embedding scale/shift and SiLU, as
// group_norm.cuh:
//   y = (x - mean) / sqrt(var + eps) * gamma + beta;  y = y * (1 + scale) + shift;  silu(y)
#pragma once

#include <cuda_runtime.h>

#include "nhwc.cuh"

// Resource ceilings, per thread and per block, for every template instance on sm_80 and
// sm_90 (kernels/dev/ptxas-check.sh holds ptxas to them, and to no spills):
// ptxas budget: group_norm_nhwc_stats_kernel 48 registers, 64 bytes shared
// ptxas budget: group_norm_nhwc_apply_kernel 48 registers, 1024 bytes shared

namespace cm4j {
namespace kernels {

struct GroupNormNhwcParams {
  int batch = 1, channels = 0, hw = 0, groups = 32;
  float eps = 1e-5f;
  bool silu = false;
  HalfType type = HalfType::kF16;
  // The input is cat(x, x2) along channels when x2 is set: channels 0..c1 from x, c1..C
  // from x2, each source with its own channel count per pixel.
  const void* x = nullptr;       // [B, HW, C], or [B, HW, c1] with x2
  const void* x2 = nullptr;      // [B, HW, C - c1] or null
  int c1 = 0;                    // channels of x when x2 is set
  const float* gamma = nullptr;  // [C] or null (1)
  const float* beta = nullptr;   // [C] or null (0)
  const float* scale = nullptr;  // [B, C] fp32 with row stride scale_stride, or null
  const float* shift = nullptr;  // same, or null
  int scale_stride = 0;
  void* y = nullptr;             // [B, HW, C]; may alias x when x2 is null
  // Instead of y (then null): each channel's affine map y = (x - center) * mul + add into
  // [B, 3, C] fp32 (center, mul, add rows), for a conv that applies it, then SiLU, as it
  // gathers x (Conv2dNhwcParams::norm). The apply kernel computes the same map the same way.
  float* coeffs = nullptr;
  // With coeffs: one arrival counter per (image, group), zero at rest (each launch leaves
  // them so), group_norm_nhwc_counters(p) of them: the last stats block of a group writes
  // its maps, so the norm is one launch.
  unsigned* counters = nullptr;
};

// Two launches that each fill the card at any batch (one block per (image, group), 32 blocks
// at batch 1, would use a quarter of an H100): a stats kernel over chunks of each group's
// pixels writes every chunk's (mean, M2), and an apply kernel over chunks of every image
// merges them in chunk order (Chan et al.'s pairwise update, fp32) and normalizes. Chunks
// depend on one image's shape only, so an image gets the same bits batched or alone.
// With coeffs there is no second launch: the stats block that finishes a group last merges
// its chunks and writes the group's per-channel maps instead of y.
// `workspace`: group_norm_nhwc_workspace_floats(p) floats of device memory, free while the
// kernels run (on the backend's stream, ops are in order). groups <= kMaxNormGroups.
constexpr int kMaxNormGroups = 128;
size_t group_norm_nhwc_workspace_floats(const GroupNormNhwcParams& p);
inline size_t group_norm_nhwc_counters(const GroupNormNhwcParams& p) {
  return static_cast<size_t>(p.batch) * p.groups;
}
cudaError_t group_norm_nhwc_forward(const GroupNormNhwcParams& p, float* workspace,
                                    cudaStream_t stream);

}  // namespace kernels
}  // namespace cm4j

// GroupNorm (+ scale/shift modulation + SiLU) in one read-statistics, one write pass per
// (image, group). Statistics are two-pass (mean, then centered squares) with double
// accumulators, so they stay exact to float precision even for large-mean groups. The
// input may be the channel concat of two tensors (x, x2), read in place channel by
// channel; a group may straddle the two. With coeffs instead of y, only the statistics are
// taken and each channel's affine map is written for the conv that reads x.
#include <cmath>

#include "cm4j.h"
#include "cpu/ops.h"

namespace cm4j {
namespace cpu {

Status group_norm(CpuContext& ctx, const GroupNormParams& p, const GroupNormArgs& a) {
  if (a.x == nullptr || (a.y == nullptr) == (a.coeffs == nullptr))
    return invalid("group_norm: null x, or not exactly one of y and coeffs");
  if (p.batch <= 0 || p.channels <= 0 || p.hw <= 0 || p.groups <= 0 || p.channels % p.groups != 0)
    return invalid("group_norm: channels " + std::to_string(p.channels) + " not divisible into " +
                   std::to_string(p.groups) + " groups");
  if ((a.scale != nullptr || a.shift != nullptr) && a.scale_stride < p.channels)
    return invalid("group_norm: scale_stride smaller than channels");
  if (a.x2 != nullptr && (a.c1 <= 0 || a.c1 >= p.channels))
    return invalid("group_norm: c1 must split the channels when x2 is given");
  const int per_group = p.channels / p.groups;
  const size_t group_size = static_cast<size_t>(per_group) * p.hw;
  const int c1 = a.x2 ? a.c1 : p.channels;  // channels held by x
  const int c2 = p.channels - c1;           // channels held by x2
  const size_t hw = p.hw;
  // Channel c of image b: [hw] in x or x2.
  const auto channel = [&](int b, int c) {
    return c < c1 ? a.x + (static_cast<size_t>(b) * c1 + c) * hw
                  : a.x2 + (static_cast<size_t>(b) * c2 + c - c1) * hw;
  };

  const auto task = [&](int t, int /*worker*/) {
    const int b = t / p.groups;
    const int g = t % p.groups;
    double total = 0;
    for (int i = 0; i < per_group; ++i) total += ctx.vec->sum(channel(b, g * per_group + i), hw);
    const double mean = total / group_size;
    double squares = 0;
    for (int i = 0; i < per_group; ++i) squares += ctx.vec->centered_squares(channel(b, g * per_group + i), hw, mean);
    const double var = squares / group_size;  // biased, like torch
    const double rstd = 1.0 / std::sqrt(var + p.eps);
    for (int i = 0; i < per_group; ++i) {
      const int c = g * per_group + i;
      // y = (x - mean) * rstd * gamma + beta, then * (1 + scale) + shift, as one affine map.
      double mul = rstd * (a.gamma ? a.gamma[c] : 1.0f);
      double add = a.beta ? a.beta[c] : 0.0f;
      if (a.scale) {
        const double s = 1.0 + a.scale[static_cast<size_t>(b) * a.scale_stride + c];
        mul *= s;
        add *= s;
      }
      if (a.shift) add += a.shift[static_cast<size_t>(b) * a.scale_stride + c];
      if (a.coeffs) {  // [B, 3, C]: the conv reading x applies the map (ConvArgs::norm)
        float* coeffs = a.coeffs + static_cast<size_t>(b) * 3 * p.channels + c;
        coeffs[0] = static_cast<float>(mean);
        coeffs[p.channels] = static_cast<float>(mul);
        coeffs[2 * p.channels] = static_cast<float>(add);
        continue;
      }
      float* y = a.y + (static_cast<size_t>(b) * p.channels + c) * hw;  // [hw]
      ctx.vec->affine_act(channel(b, c), y, hw, static_cast<float>(mean), static_cast<float>(mul),
                          static_cast<float>(add), p.silu);
    }
  };
  if (!ctx.pool.parallel_for(p.batch * p.groups, task))
    return {CM4J_ERR_INTERNAL, "cpu: group_norm task failed"};
  return Status::Ok();
}

}  // namespace cpu
}  // namespace cm4j

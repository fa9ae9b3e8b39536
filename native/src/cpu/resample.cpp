// 2x spatial resampling between UNet levels: average pooling (Downsample2D without conv)
// and nearest-neighbour upsampling (Upsample2D's interpolate before its conv).
#include "cm4j.h"
#include "cpu/ops.h"

namespace cm4j {
namespace cpu {

Status avg_pool2(CpuContext& ctx, const float* x, float* y, int batch, int channels, int h, int w) {
  if (x == nullptr || y == nullptr) return invalid("avg_pool2: null pointer");
  if (batch <= 0 || channels <= 0 || h < 2 || w < 2) return invalid("avg_pool2: bad shape");
  const int ho = h / 2, wo = w / 2;  // floor, like torch's AvgPool2d(2)
  const auto task = [&](int plane, int /*worker*/) {
    const float* in = x + static_cast<size_t>(plane) * h * w;  // [h, w]
    float* out = y + static_cast<size_t>(plane) * ho * wo;      // [h/2, w/2]
    for (int oy = 0; oy < ho; ++oy) {
      const float* r0 = in + (2 * oy) * w;
      const float* r1 = r0 + w;
      for (int ox = 0; ox < wo; ++ox)
        out[oy * wo + ox] = ((r0[2 * ox] + r0[2 * ox + 1]) + (r1[2 * ox] + r1[2 * ox + 1])) * 0.25f;
    }
  };
  if (!ctx.pool.parallel_for(batch * channels, task)) return {CM4J_ERR_INTERNAL, "cpu: avg_pool2 failed"};
  return Status::Ok();
}

Status upsample_nearest2(CpuContext& ctx, const float* x, float* y, int batch, int channels,
                         int h, int w) {
  if (x == nullptr || y == nullptr) return invalid("upsample_nearest2: null pointer");
  if (batch <= 0 || channels <= 0 || h <= 0 || w <= 0) return invalid("upsample_nearest2: bad shape");
  const auto task = [&](int plane, int /*worker*/) {
    const float* in = x + static_cast<size_t>(plane) * h * w;  // [h, w]
    float* out = y + static_cast<size_t>(plane) * 4 * h * w;    // [2h, 2w]
    for (int iy = 0; iy < h; ++iy) {
      float* r0 = out + (2 * iy) * (2 * w);
      float* r1 = r0 + 2 * w;
      for (int ix = 0; ix < w; ++ix) r0[2 * ix] = r0[2 * ix + 1] = in[iy * w + ix];
      for (int i = 0; i < 2 * w; ++i) r1[i] = r0[i];
    }
  };
  if (!ctx.pool.parallel_for(batch * channels, task))
    return {CM4J_ERR_INTERNAL, "cpu: upsample_nearest2 failed"};
  return Status::Ok();
}

}  // namespace cpu
}  // namespace cm4j

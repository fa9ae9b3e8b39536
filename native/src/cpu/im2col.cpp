#include "cpu/im2col.h"

#include <algorithm>
#include <cstring>

namespace cm4j {
namespace cpu {

ConvPanels::ConvPanels(const ConvParams& p, const float* src1, const float* src2)
    : src1_(src1),
      src2_(src2),
      c1_(p.c_in1),
      c2_(p.c_in2),
      h_in_(p.h_in),
      w_in_(p.w_in),
      kernel_(p.kernel),
      stride_(p.stride),
      pad_(p.pad),
      upsample_(p.upsample),
      h_virt_(p.upsample ? 2 * p.h_in : p.h_in),
      w_virt_(p.upsample ? 2 * p.w_in : p.w_in),
      w_out_(p.w_out()),
      hw_out_(p.h_out() * p.w_out()),
      panels_per_image_((p.h_out() * p.w_out() + kNR - 1) / kNR) {}

void ConvPanels::gather_row(const float* plane, int iy, int ox, int kx, int len,
                            float* dst) const {
  if (iy < 0 || iy >= h_virt_) {
    std::fill(dst, dst + len, 0.0f);
    return;
  }
  const int ix0 = ox * stride_ + kx - pad_;
  if (stride_ == 1 && !upsample_) {
    // The common case: a contiguous slice of one input row, zero-extended at the edges.
    const float* row = plane + static_cast<int64_t>(iy) * w_in_;
    if (len == kNR && ix0 >= 0 && ix0 + kNR <= w_in_) {
      std::memcpy(dst, row + ix0, sizeof(float) * kNR);  // whole panel inside: fixed-size copy
      return;
    }
    const int lo = std::min(len, std::max(0, -ix0));
    const int hi = std::max(lo, std::min(len, w_in_ - ix0));
    std::fill(dst, dst + lo, 0.0f);
    if (hi > lo) std::memcpy(dst + lo, row + ix0 + lo, sizeof(float) * (hi - lo));
    std::fill(dst + hi, dst + len, 0.0f);
    return;
  }
  const int shift = upsample_ ? 1 : 0;  // virtual -> stored coordinate
  const float* row = plane + static_cast<int64_t>(iy >> shift) * w_in_;
  if (stride_ == 1) {
    // Upsampled row: every stored value appears twice; copy pairs after an odd start.
    const int lo = std::min(len, std::max(0, -ix0));
    const int hi = std::max(lo, std::min(len, w_virt_ - ix0));
    std::fill(dst, dst + lo, 0.0f);
    std::fill(dst + hi, dst + len, 0.0f);
    int i = lo;
    if (i < hi && ((ix0 + i) & 1)) {
      dst[i] = row[(ix0 + i) >> 1];
      ++i;
    }
    const float* s = row + ((ix0 + i) >> 1);
    const int pairs = (hi - i) / 2;
    float* d = dst + i;
    for (int j = 0; j < pairs; ++j) d[2 * j] = d[2 * j + 1] = s[j];
    if (i + 2 * pairs < hi) d[2 * pairs] = s[pairs];
    return;
  }
  for (int i = 0; i < len; ++i) {
    const int ix = ix0 + i * stride_;
    dst[i] = (ix >= 0 && ix < w_virt_) ? row[ix >> shift] : 0.0f;
  }
}

void ConvPanels::pack(int k0, int kc, int q0, int nq, float* dst) const {
  // Split each panel's pixels into runs along output rows (one run per panel when
  // w_out >= kNR), once for all kc rows.
  Segment runs[kMaxPanels * kNR];
  int run_end[kMaxPanels];  // runs of panel i end at run_end[i]
  int valid[kMaxPanels];
  int count = 0;
  for (int i = 0; i < nq; ++i) {
    const int q = q0 + i;
    const int image = q / panels_per_image_;
    const int n0 = (q % panels_per_image_) * kNR;
    valid[i] = std::max(0, std::min(kNR, hw_out_ - n0));
    for (int n = n0; n < n0 + valid[i];) {
      const int oy = n / w_out_;
      const int ox = n % w_out_;
      const int len = std::min(w_out_ - ox, n0 + valid[i] - n);
      runs[count++] = {image, oy, ox, len, n - n0};
      n += len;
    }
    run_end[i] = count;
  }

  // Row k of every panel in turn: the (c, ky, kx) decode and the source plane are worked
  // out once per row, not once per panel, and the rows of one input channel stay in L1.
  const int64_t plane_size = static_cast<int64_t>(h_in_) * w_in_;
  const size_t panel_stride = static_cast<size_t>(kc) * kNR;
  int c = k0 / (kernel_ * kernel_);
  int ky = k0 % (kernel_ * kernel_) / kernel_;
  int kx = k0 % kernel_;
  for (int k = 0; k < kc; ++k) {
    for (int i = 0, r = 0; i < nq; ++i) {
      float* o = dst + i * panel_stride + k * kNR;
      for (; r < run_end[i]; ++r) {
        const Segment& g = runs[r];
        const float* plane =
            c < c1_ ? src1_ + (static_cast<int64_t>(g.image) * c1_ + c) * plane_size
                    : src2_ + (static_cast<int64_t>(g.image) * c2_ + c - c1_) * plane_size;
        gather_row(plane, g.oy * stride_ + ky - pad_, g.ox, kx, g.len, o + g.offset);
      }
      for (int j = valid[i]; j < kNR; ++j) o[j] = 0.0f;
    }
    if (++kx == kernel_) {
      kx = 0;
      if (++ky == kernel_) {
        ky = 0;
        ++c;
      }
    }
  }
}

}  // namespace cpu
}  // namespace cm4j

// The convolution's B operand gathered straight into GEMM panels (implicit im2col):
// row k = (c, ky, kx) in torch's weight order, column n = output pixel (oy, ox) of one
// image, B[k, n] = cat(src1, src2)[c, oy*stride + ky - pad, ox*stride + kx - pad], read
// through the nearest-2x upsample when asked and zero outside the image. Only the
// kc x nq*kNR block the GEMM is about to use exists at any time, so scratch stays small
// whatever the layer size, and the channel concat is never copied.
#pragma once

#include "backend.h"
#include "cpu/gemm.h"

namespace cm4j {
namespace cpu {

class ConvPanels : public PanelSource {
 public:
  ConvPanels(const ConvParams& p, const float* src1, const float* src2);
  // Column panels per image: one image's output pixels padded up to a multiple of kNR.
  int panels_per_image() const { return panels_per_image_; }
  // nq must not exceed kMaxPanels (the GEMM's Blocking::nq).
  void pack(int k0, int kc, int q0, int nq, float* dst) const override;
  static constexpr int kMaxPanels = 16;

 private:
  // One run of a panel's pixels inside one output row of one image; offset is the run's
  // first column within the panel.
  struct Segment {
    int image, oy, ox, len, offset;
  };
  // Fills dst[0..len) with input row iy (virtual, i.e. upsampled, coordinates) of plane
  // at columns ox*stride + kx - pad, zero outside the input.
  void gather_row(const float* plane, int iy, int ox, int kx, int len, float* dst) const;

  const float* src1_;
  const float* src2_;
  int c1_, c2_, h_in_, w_in_;
  int kernel_, stride_, pad_;
  bool upsample_;
  int h_virt_, w_virt_;  // input size after the optional upsample
  int w_out_, hw_out_;
  int panels_per_image_;
};

}  // namespace cpu
}  // namespace cm4j

// The convolution's B operand gathered straight into the bf16 B layout (gemm_bf16.h) with
// AVX-512 masked loads and AVX-512-BF16 rounding (so only on the amx and avx512bf16 paths), for stride-1 convs without the fused upsample (all but six of the
// real model's convs): each run of a panel's output pixels along one output row is one or
// two masked loads per k row (the padding and the columns past the image are masked-off
// lanes, which AVX-512 never reads), two k rows are rounded to bf16 and interleaved into
// k pairs in registers. Same values as ConvPanels + convert_b16_avx512, without the fp32
// staging pass. Other convs, and the portable bf16 path, use ConvertedPanels(ConvPanels).
#pragma once

#include "backend.h"
#include "cpu/gemm_bf16.h"

namespace cm4j {
namespace cpu {

struct ConvGeometry16 {
  const float* src1;
  const float* src2;
  int c1, c2, h_in, w_in, kernel, pad;
  int w_out, hw_out, panels_per_image;
};

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void conv_gather16_avx512bf16(
    const ConvGeometry16& g, int k0, int rows, int kc, int q, uint16_t* dst);
#endif

class ConvPanels16 : public Panel16Source {
 public:
  // Usable for p when the bf16 path is amx or avx512bf16 (both imply AVX-512-BF16).
  static bool usable(const ConvParams& p, Bf16Path path) {
    return path != Bf16Path::kGeneric && p.stride == 1 && !p.upsample;
  }
  ConvPanels16(const ConvParams& p, const float* src1, const float* src2)
      : g_{src1,      src2,       p.c_in1,  p.c_in2,
           p.h_in,    p.w_in,     p.kernel, p.pad,
           p.w_out(), p.h_out() * p.w_out(), (p.h_out() * p.w_out() + kNR - 1) / kNR} {}
  void pack16(int k0, int rows, int kc, int q, uint16_t* dst, float*) const override {
#if defined(__x86_64__) || defined(__i386__)
    conv_gather16_avx512bf16(g_, k0, rows, kc, q, dst);
#else
    (void)k0, (void)rows, (void)kc, (void)q, (void)dst;
#endif
  }

 private:
  ConvGeometry16 g_;
};

}  // namespace cpu
}  // namespace cm4j

// The Winograd transforms compiled for AVX-512: the same code as the generic ones
// (winograd_transforms.h), inlined into functions with the avx512f target, where a 16-tile
// vector is one zmm register. isa.cpp decides at run time whether they are called.
// x86 only: elsewhere winograd_kernels() never asks for them and nothing here is built.
#if defined(__x86_64__) || defined(__i386__)
#include "cpu/winograd.h"
#include "cpu/winograd_transforms.h"

namespace cm4j {
namespace cpu {

namespace {

__attribute__((target("avx512f"))) void input2_avx512(const float* d, float* v, int64_t vs) {
  wino::input_tile(wino::kBT2, d, v, vs);
}
__attribute__((target("avx512f"))) void input4_avx512(const float* d, float* v, int64_t vs) {
  wino::input_tile(wino::kBT4, d, v, vs);
}
__attribute__((target("avx512f"))) void output2_avx512(const float* mv, int64_t ms, float* y) {
  wino::output_tile(wino::kAT2, mv, ms, y);
}
__attribute__((target("avx512f"))) void output4_avx512(const float* mv, int64_t ms, float* y) {
  wino::output_tile(wino::kAT4, mv, ms, y);
}

}  // namespace

const WinogradKernels& winograd_kernels_avx512() {
  static const WinogradKernels kernels = {input2_avx512, input4_avx512, output2_avx512,
                                          output4_avx512};
  return kernels;
}

}  // namespace cpu
}  // namespace cm4j

#endif  // x86

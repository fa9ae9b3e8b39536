#include "cpu/attention_bf16.h"

#include <cstring>

namespace cm4j {
namespace cpu {

void pack_b16_matrix(const float* src, int rows, int cols, int64_t ld, uint16_t* dst) {
  const int kp = pad_k16(rows);
  const int panels = (cols + kNR - 1) / kNR;
  for (int q = 0; q < panels; ++q) {
    uint16_t* panel = dst + static_cast<size_t>(q) * kp * kNR;
    for (int k = 0; k < kp; ++k) {
      uint16_t* blk = panel + static_cast<size_t>(k / kKB16) * kKB16 * kNR;
      const int kk = k % kKB16;
      for (int col = 0; col < kNR; ++col) {
        const int c = q * kNR + col;
        const uint16_t v = k < rows && c < cols ? float_to_bf16(src[k * ld + c]) : 0;
        blk[(col / 16) * 512 + (kk / 2) * 32 + (col % 16) * 2 + (kk & 1)] = v;
      }
    }
  }
}

void PackedPanels16::pack16(int k0, int, int kc, int q, uint16_t* dst, float*) const {
  std::memcpy(dst, packed(k0, q), sizeof(uint16_t) * kc * kNR);
}

AttentionBf16Kernels attention_bf16_kernels(Bf16Path path) {
#if defined(__x86_64__) || defined(__i386__)
  if (path != Bf16Path::kGeneric)
    return {pack_b16_matrix_avx512bf16, pack_a16_strided_avx512bf16, softmax_b16_avx512bf16};
#else
  (void)path;
#endif
  return {pack_b16_matrix, pack_a16_strided, nullptr};
}

}  // namespace cpu
}  // namespace cm4j

// The bf16 attention's operand packing: Q, K^T and V rounded to bf16 straight into the
// gemm16 layouts (gemm_bf16.h), and the softmax writing its probabilities as gemm16 B
// panels, so no fp32 copy of S or P is staged between the two products. A portable
// version of each, and one for CPUs with AVX-512-BF16 (the amx and avx512bf16 paths).
#pragma once

#include <cstdint>

#include "cpu/gemm_bf16.h"
#include "cpu/isa.h"

namespace cm4j {
namespace cpu {

// Whole B panels of src [rows, cols] (row stride ld): panel q at dst + q * pad_k16(rows)
// * kNR, in the layout gemm16 reads, rows and columns past the matrix zero.
using PackB16Matrix = void (*)(const float* src, int rows, int cols, int64_t ld, uint16_t* dst);
// pack_a16_strided (gemm_bf16.h) with the same arguments.
using PackA16Strided = void (*)(const float* src, int m, int k, int64_t row_stride,
                                int64_t col_stride, uint16_t* dst);
// Softmax down each column of s [rows, cols] (row stride ld), left unnormalized and
// written as B panels like PackB16Matrix: P[j, i] = exp(s[j, i] - max_j s[:, i]) rounded to
// bf16, and inv_sum[i] = 1 / the fp32 sum of the exps. max is cols floats of scratch.
using SoftmaxB16 = void (*)(float* s, int rows, int cols, int64_t ld, float* max, float* inv_sum,
                            uint16_t* dst);

struct AttentionBf16Kernels {
  PackB16Matrix pack_b;
  PackA16Strided pack_a;
  SoftmaxB16 softmax;  // null: the ISA's fp32 softmax_columns (vecmath.h), then pack_b
};
// The portable kernels (the generic bf16 path) or the AVX-512-BF16 ones.
AttentionBf16Kernels attention_bf16_kernels(Bf16Path path);

void pack_b16_matrix(const float* src, int rows, int cols, int64_t ld, uint16_t* dst);
#if defined(__x86_64__) || defined(__i386__)
void pack_b16_matrix_avx512bf16(const float* src, int rows, int cols, int64_t ld, uint16_t* dst);
void pack_a16_strided_avx512bf16(const float* src, int m, int k, int64_t row_stride,
                                 int64_t col_stride, uint16_t* dst);
void softmax_b16_avx512bf16(float* s, int rows, int cols, int64_t ld, float* max, float* inv_sum,
                            uint16_t* dst);
#endif

// gemm16's B operand already packed in whole panels (pad_k16(k) rows each): read in place.
class PackedPanels16 : public Panel16Source {
 public:
  PackedPanels16(const uint16_t* data, int k) : data_(data), kp_(pad_k16(k)) {}
  const uint16_t* packed(int k0, int q) const override {
    return data_ + (static_cast<int64_t>(q) * kp_ + k0) * kNR;
  }
  void pack16(int k0, int, int kc, int q, uint16_t* dst, float*) const override;

 private:
  const uint16_t* data_;
  int kp_;
};

}  // namespace cpu
}  // namespace cm4j

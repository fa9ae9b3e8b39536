// The AVX-512-BF16 kernels of attention_bf16.h: rounding by VCVTNE2PS2BF16 (round to
// nearest even, the same values as float_to_bf16) and 16 lanes at a time.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "cpu/attention_bf16.h"
#include "cpu/bf16_x86.h"
#include "cpu/exp_avx512.h"

namespace cm4j {
namespace cpu {

#define CM4J_BF16_X86 __attribute__((target("avx512f,avx512bw,avx512bf16")))

namespace {

CM4J_BF16_X86 inline __mmask16 lanes(int n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF)
                 : n <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << n) - 1);
}

// Where rows k, k+1 (k even) of half h of column panel q start in the B panels.
inline uint16_t* b_pair(uint16_t* dst, int kp, int q, int k, int h) {
  return dst + static_cast<size_t>(q) * kp * kNR + static_cast<size_t>(k / kKB16) * kKB16 * kNR +
         h * 512 + (k % kKB16) / 2 * 32;
}

}  // namespace

CM4J_BF16_X86 void pack_b16_matrix_avx512bf16(const float* src, int rows, int cols, int64_t ld,
                                              uint16_t* dst) {
  const int kp = pad_k16(rows);
  const __m512 zero = _mm512_setzero_ps();
  for (int k = 0; k < kp; k += 2)
    for (int c = 0; c < (cols + kNR - 1) / kNR * kNR; c += 16) {
      const __mmask16 m = lanes(cols - c);
      const __m512 lo = k < rows ? _mm512_maskz_loadu_ps(m, src + k * ld + c) : zero;
      const __m512 hi = k + 1 < rows ? _mm512_maskz_loadu_ps(m, src + (k + 1) * ld + c) : zero;
      _mm512_store_si512(b_pair(dst, kp, c / kNR, k, c % kNR / 16), pair16(lo, hi));
    }
}

CM4J_BF16_X86 void pack_a16_strided_avx512bf16(const float* src, int m, int k, int64_t row_stride,
                                               int64_t col_stride, uint16_t* dst) {
  if (col_stride != 1 && row_stride != 1) {  // neither way streams: the portable loop
    pack_a16_strided(src, m, k, row_stride, col_stride, dst);
    return;
  }
  const int kp = pad_k16(k);
  const int panels = (m + kMR16 - 1) / kMR16;
  const __m512 zero = _mm512_setzero_ps();
  for (int p = 0; p < panels; ++p)
    for (int kb = 0; kb < kp; kb += kKB16) {
      uint16_t* blk = dst + (static_cast<size_t>(p) * kp + kb) * kMR16;  // [32 rows][32 k]
      if (col_stride == 1) {
        // Rows are contiguous in the source: 32 k values of a row are two loads, rounded
        // in order into one 64-byte row of the block.
        for (int r = 0; r < kMR16; ++r) {
          const int row = p * kMR16 + r;
          const float* s = src + row * row_stride + kb;
          const __m512 lo = row < m ? _mm512_maskz_loadu_ps(lanes(k - kb), s) : zero;
          const __m512 hi = row < m ? _mm512_maskz_loadu_ps(lanes(k - kb - 16), s + 16) : zero;
          _mm512_store_si512(blk + r * kKB16, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
      } else {
        // Columns are contiguous (attention's K^T: a channel's keys): two columns of 16 rows
        // become 16 (col, col + 1) pairs, scattered one per row of the block.
        const __m512i row_index = _mm512_mullo_epi32(
            _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
            _mm512_set1_epi32(kKB16 / 2));
        for (int h = 0; h < 2; ++h) {
          const int r0 = p * kMR16 + h * 16;
          const __mmask16 rm = lanes(m - r0);
          for (int i = 0; i < kKB16 / 2; ++i) {
            const int c = kb + 2 * i;
            const __m512 lo = c < k ? _mm512_maskz_loadu_ps(rm, src + c * col_stride + r0) : zero;
            const __m512 hi =
                c + 1 < k ? _mm512_maskz_loadu_ps(rm, src + (c + 1) * col_stride + r0) : zero;
            _mm512_i32scatter_epi32(reinterpret_cast<int*>(blk + h * 16 * kKB16) + i, row_index,
                                    pair16(lo, hi), 4);
          }
        }
      }
    }
}

CM4J_BF16_X86 void softmax_b16_avx512bf16(float* s, int rows, int cols, int64_t ld, float* max,
                                          float* inv_sum, uint16_t* dst) {
  const int kp = pad_k16(rows);
  const int padded = (cols + kNR - 1) / kNR * kNR;
  for (int i = 0; i < padded; i += 16) {
    const __mmask16 m = lanes(cols - i);
    __m512 mx = _mm512_maskz_loadu_ps(m, s + i);
    for (int j = 1; j < rows; ++j) mx = _mm512_max_ps(mx, _mm512_maskz_loadu_ps(m, s + j * ld + i));
    _mm512_store_ps(max + i, mx);
    _mm512_store_ps(inv_sum + i, _mm512_setzero_ps());
  }
  // Two rows at a time: their exps are one pair row of the B panels. Columns past cols
  // (and rows past rows) are written as zero.
  for (int k = 0; k < kp; k += 2)
    for (int i = 0; i < padded; i += 16) {
      const __mmask16 m = lanes(cols - i);
      const __m512 mx = _mm512_load_ps(max + i);
      const __m512 e0 =
          k < rows ? _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + k * ld + i), mx)))
                   : _mm512_setzero_ps();
      const __m512 e1 = k + 1 < rows
                            ? _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(
                                                         _mm512_maskz_loadu_ps(m, s + (k + 1) * ld + i), mx)))
                            : _mm512_setzero_ps();
      _mm512_store_ps(inv_sum + i, _mm512_add_ps(_mm512_load_ps(inv_sum + i), _mm512_add_ps(e0, e1)));
      _mm512_store_si512(b_pair(dst, kp, i / kNR, k, i % kNR / 16), pair16(e0, e1));
    }
  for (int i = 0; i < padded; i += 16)
    _mm512_store_ps(inv_sum + i, _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_load_ps(inv_sum + i)));
}

}  // namespace cpu
}  // namespace cm4j

#endif  // x86

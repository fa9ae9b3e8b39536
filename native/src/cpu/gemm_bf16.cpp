#include <algorithm>
#include <cstring>

#include "cpu/gemm_bf16.h"

namespace cm4j {
namespace cpu {

void pack_a16(const float* src, int m, int k, uint16_t* dst) {
  const int kp = pad_k16(k);
  const int panels = (m + kMR16 - 1) / kMR16;
  for (int p = 0; p < panels; ++p) {
    uint16_t* out = dst + static_cast<size_t>(p) * kp * kMR16;
    for (int kb = 0; kb < kp; kb += kKB16) {
      uint16_t* blk = out + static_cast<size_t>(kb) * kMR16;  // [32 rows][32 k]
      for (int r = 0; r < kMR16; ++r) {
        const int row = p * kMR16 + r;
        for (int kk = 0; kk < kKB16; ++kk) {
          const int c = kb + kk;
          blk[r * kKB16 + kk] =
              (row < m && c < k) ? float_to_bf16(src[static_cast<size_t>(row) * k + c]) : 0;
        }
      }
    }
  }
}

void pack_a16_strided(const float* src, int m, int k, int64_t row_stride, int64_t col_stride,
                      uint16_t* dst) {
  const int kp = pad_k16(k);
  const int panels = (m + kMR16 - 1) / kMR16;
  const size_t total = static_cast<size_t>(panels) * kp * kMR16;
  std::memset(dst, 0, total * sizeof(uint16_t));
  // Walk the source along its unit stride so the reads stream.
  if (row_stride == 1) {
    for (int c = 0; c < k; ++c) {
      const float* s = src + c * col_stride;
      uint16_t* col = dst + static_cast<size_t>(c / kKB16) * kKB16 * kMR16 + c % kKB16;
      for (int r = 0; r < m; ++r)
        col[static_cast<size_t>(r / kMR16) * kp * kMR16 + (r % kMR16) * kKB16] = float_to_bf16(s[r]);
    }
  } else {
    for (int r = 0; r < m; ++r) {
      const float* s = src + r * row_stride;
      uint16_t* row = dst + static_cast<size_t>(r / kMR16) * kp * kMR16 + (r % kMR16) * kKB16;
      for (int c = 0; c < k; ++c)
        row[static_cast<size_t>(c / kKB16) * kKB16 * kMR16 + c % kKB16] = float_to_bf16(s[c * col_stride]);
    }
  }
}

void convert_b16(const float* src, int rows, int kc, uint16_t* dst) {
  for (int k = 0; k < kc; ++k) {
    uint16_t* blk = dst + static_cast<size_t>(k / kKB16) * kKB16 * kNR;
    const int kk = k % kKB16;
    for (int col = 0; col < kNR; ++col) {
      const uint16_t v = k < rows ? float_to_bf16(src[k * kNR + col]) : 0;
      blk[(col / 16) * 512 + (kk / 2) * 32 + (col % 16) * 2 + (kk & 1)] = v;
    }
  }
}

// Portable kernel: bf16 widened to fp32 (exact), products summed in fp32.
void tile16_generic(int kc, const uint16_t* a, const uint16_t* b, const TileOut& o) {
  float acc[kMR16][kNR];
  std::memset(acc, 0, sizeof(acc));
  for (int kb = 0; kb < kc; kb += kKB16) {
    const uint16_t* ab = a + static_cast<size_t>(kb) * kMR16;
    const uint16_t* bb = b + static_cast<size_t>(kb) * kNR;
    for (int r = 0; r < o.rows; ++r) {
      for (int pr = 0; pr < kKB16 / 2; ++pr) {
        const float a0 = bf16_to_float(ab[r * kKB16 + 2 * pr]);
        const float a1 = bf16_to_float(ab[r * kKB16 + 2 * pr + 1]);
        for (int half = 0; half < 2; ++half) {
          const uint16_t* br = bb + half * 512 + pr * 32;
          for (int c = 0; c < 16; ++c)
            acc[r][half * 16 + c] +=
                a0 * bf16_to_float(br[2 * c]) + a1 * bf16_to_float(br[2 * c + 1]);
        }
      }
    }
  }
  for (int r = 0; r < o.rows; ++r)
    store_row_scalar(o, r * o.ldc, o.bias ? o.bias[r] : 0.0f, acc[r], o.cols);
}

Bf16Kernel bf16_kernel(Bf16Path path) {
  switch (path) {
#if defined(__x86_64__) || defined(__i386__)
    case Bf16Path::kAmx: return tile16_amx;
    case Bf16Path::kAvx512Bf16: return tile16_avx512bf16;
#endif
    default: return tile16_generic;
  }
}

size_t gemm16_scratch_floats(const Blocking16& blk) {
  const size_t staging = static_cast<size_t>(blk.kc) * kNR;             // fp32 [kc][32]
  const size_t block = static_cast<size_t>(blk.kc) * blk.nq * kNR / 2;  // bf16 block
  return staging + block;
}

void gemm16(Bf16Kernel kernel, const PackedA16& a, int p0, int p1, const Panel16Source& b,
            int q0, int q1, const OutSpec& out, const Blocking16& blk, float* scratch) {
  const int K = a.k;
  const int kp = pad_k16(K);
  float* staging = scratch;
  uint16_t* block = reinterpret_cast<uint16_t*>(scratch + static_cast<size_t>(blk.kc) * kNR);
  const int nk = std::max(1, (kp + blk.kc - 1) / blk.kc);
  const int kc_even = pad_k16((kp + nk - 1) / nk);
  for (int qs = q0; qs < q1; qs += blk.nq) {
    const int nq = std::min(blk.nq, q1 - qs);
    for (int k0 = 0; k0 < kp; k0 += kc_even) {
      const int kc = std::min(kc_even, kp - k0);
      const int rows = std::min(kc, K - k0);  // real rows of B in this block
      for (int i = 0; i < nq; ++i)
        if (b.packed(k0, qs + i) == nullptr)
          b.pack16(k0, rows, kc, qs + i, block + static_cast<size_t>(i) * kc * kNR, staging);
      const bool first = k0 == 0;
      const bool last = k0 + kc == kp;
      for (int p = p0; p < p1; ++p) {
        const uint16_t* ap = a.panel(p) + static_cast<size_t>(k0) * kMR16;
        const int row0 = p * kMR16;
        const int mrows = std::min(kMR16, out.m - row0);
        for (int q = qs; q < qs + nq; ++q) {
          TileOut t;
          if (!tile_out(out, q, row0, mrows, first, last, &t)) continue;
          const uint16_t* bq = b.packed(k0, q);
          kernel(kc, ap, bq ? bq : block + static_cast<size_t>(q - qs) * kc * kNR, t);
        }
      }
    }
  }
}

}  // namespace cpu
}  // namespace cm4j

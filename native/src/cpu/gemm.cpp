#include "cpu/gemm.h"

#include <algorithm>
#include <cstring>

namespace cm4j {
namespace cpu {

void pack_a(const float* src, int m, int k, int64_t row_stride, int64_t col_stride, float* dst) {
  const int panels = (m + kMR - 1) / kMR;
  for (int p = 0; p < panels; ++p) {
    float* out = dst + static_cast<size_t>(p) * k * kMR;  // [k][kMR]
    const int r0 = p * kMR;
    const int rows = std::min(kMR, m - r0);
    if (rows < kMR) std::memset(out, 0, sizeof(float) * k * kMR);
    // Walk the source along its unit stride so the reads stream.
    if (row_stride == 1) {
      for (int c = 0; c < k; ++c) {
        const float* s = src + r0 + c * col_stride;
        for (int r = 0; r < rows; ++r) out[c * kMR + r] = s[r];
      }
    } else {
      for (int r = 0; r < rows; ++r) {
        const float* s = src + (r0 + r) * row_stride;
        for (int c = 0; c < k; ++c) out[c * kMR + r] = s[c * col_stride];
      }
    }
  }
}

void MatrixPanels::pack(int k0, int kc, int q0, int nq, float* dst) const {
  for (int q = q0; q < q0 + nq; ++q) {
    const int c0 = q * kNR;
    const int valid = std::max(0, std::min(kNR, n_ - c0));
    float* out = dst + static_cast<size_t>(q - q0) * kc * kNR;  // [kc][kNR]
    for (int k = 0; k < kc; ++k) {
      const float* s = b_ + (k0 + k) * ld_ + c0;
      float* o = out + k * kNR;
      std::memcpy(o, s, sizeof(float) * valid);
      std::fill(o + valid, o + kNR, 0.0f);
    }
  }
}

size_t gemm_scratch_floats(const Blocking& blk) {
  return static_cast<size_t>(blk.kc) * blk.nq * kNR;
}

void gemm(TileKernel kernel, const PackedA& a, int p0, int p1, const PanelSource& b, int q0,
          int q1, const OutSpec& out, const Blocking& blk, float* scratch) {
  const int K = a.k;
  // Even k-blocks: 1728 = 4 x 432 rather than 4 x 384 + 192 (a short tail block costs a
  // full pass over C for little arithmetic).
  const int nk = std::max(1, (K + blk.kc - 1) / blk.kc);
  const int kc_even = (K + nk - 1) / nk;
  for (int qs = q0; qs < q1; qs += blk.nq) {
    const int nq = std::min(blk.nq, q1 - qs);
    for (int k0 = 0; k0 < K; k0 += kc_even) {
      const int kc = std::min(kc_even, K - k0);
      const bool in_place = b.packed(k0, qs) != nullptr;
      if (!in_place) b.pack(k0, kc, qs, nq, scratch);  // [nq][kc][kNR], stays in L2
      const bool first = k0 == 0;
      const bool last = k0 + kc == K;
      for (int p = p0; p < p1; ++p) {
        const float* ap = a.panel(p) + static_cast<size_t>(k0) * kMR;  // [kc][kMR], in L1
        const int row0 = p * kMR;
        const int rows = std::min(kMR, out.m - row0);
        for (int q = qs; q < qs + nq; ++q) {
          TileOut t;
          if (!tile_out(out, q, row0, rows, first, last, &t)) continue;
          kernel(kc, ap, in_place ? b.packed(k0, q) : scratch + static_cast<size_t>(q - qs) * kc * kNR,
                 t);
        }
      }
    }
  }
}

// Portable kernel: plain loops that the compiler vectorizes for the baseline ISA (SSE2 on
// x86-64). The tile is done in 4 x 8 sub-tiles so the accumulators fit in 16 registers.
namespace {
constexpr int kGenM = 4;
constexpr int kGenN = 8;
}  // namespace

void tile_generic(int kc, const float* a, const float* b, const TileOut& o) {
  for (int row0 = 0; row0 < o.rows; row0 += kGenM) {
    for (int col0 = 0; col0 < o.cols; col0 += kGenN) {
      float acc[kGenM][kGenN] = {};
      for (int k = 0; k < kc; ++k) {
        const float* ak = a + k * kMR + row0;
        const float* bk = b + k * kNR + col0;
        for (int r = 0; r < kGenM; ++r)
          for (int j = 0; j < kGenN; ++j) acc[r][j] += ak[r] * bk[j];
      }
      const int rows = std::min(kGenM, o.rows - row0);
      const int cols = std::min(kGenN, o.cols - col0);
      for (int r = 0; r < rows; ++r)
        store_row_scalar(o, (row0 + r) * o.ldc + col0, o.bias ? o.bias[row0 + r] : 0.0f, acc[r],
                         cols);
    }
  }
}

TileKernel tile_kernel(Isa isa) {
  switch (isa) {
#if defined(__x86_64__) || defined(__i386__)
    case Isa::kAvx512: return tile_avx512;
    case Isa::kAvx2: return tile_avx2;
#endif
    default: return tile_generic;
  }
}

}  // namespace cpu
}  // namespace cm4j

// Packed SGEMM: C[M, N] = A[M, K] * B[K, N] with a fused epilogue, the engine of conv2d
// and attention. A (weights, or an on-the-fly operand) is packed in panels of kMR rows,
// B arrives through a PanelSource that writes panels of kNR columns (the conv's im2col
// gather is such a source, so no column matrix is ever materialized). A kMR x kNR tile
// kernel per ISA does the arithmetic; this file's driver does the cache blocking.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "cpu/isa.h"

namespace cm4j {
namespace cpu {

// One tile is kMR x kNR: 12 x 32 keeps 24 AVX-512 accumulators in registers, and every
// channel count of the real model (192, 384, 576, 768) is a multiple of 12. The AVX2 and
// generic kernels split the same tile into sub-tiles, so packed weights do not depend on
// the ISA.
constexpr int kMR = 12;
constexpr int kNR = 32;

// A in panels: panel p holds rows p*kMR.. as [k][kMR] (kMR consecutive floats per k),
// rows past m are zero.
struct PackedA {
  const float* data = nullptr;
  int m = 0, k = 0;
  int panels() const { return (m + kMR - 1) / kMR; }
  const float* panel(int p) const { return data + static_cast<size_t>(p) * k * kMR; }
};

inline size_t packed_a_floats(int m, int k) {
  return static_cast<size_t>((m + kMR - 1) / kMR) * kMR * k;
}
// Packs A[r, c] = src[r * row_stride + c * col_stride] (r < m, c < k) into dst, which
// holds packed_a_floats(m, k). Strides let one routine pack weights ([M, K] row-major)
// and transposed activations (attention's K^T).
void pack_a(const float* src, int m, int k, int64_t row_stride, int64_t col_stride, float* dst);

// The B operand, delivered in panels of kNR columns.
class PanelSource {
 public:
  virtual ~PanelSource() = default;
  // Writes rows k0..k0+kc of column panels q0..q0+nq as dst[q - q0][k - k0][0..kNR);
  // columns past the operand's valid ones must be written as zero.
  virtual void pack(int k0, int kc, int q0, int nq, float* dst) const = 0;
  // Rows k0.. of panel q as [kc][kNR], 64-byte aligned, when the operand already holds
  // them so (gemm() then reads them in place rather than through pack); else null.
  virtual const float* packed(int /*k0*/, int /*q*/) const { return nullptr; }
};

// B stored as a row-major matrix [K, n] with row stride ld (one image's worth of columns).
class MatrixPanels : public PanelSource {
 public:
  MatrixPanels(const float* b, int64_t ld, int n) : b_(b), ld_(ld), n_(n) {}
  void pack(int k0, int kc, int q0, int nq, float* dst) const override;

 private:
  const float* b_;
  int64_t ld_;
  int n_;
};

// Where C goes and what is added on the way. Column panels are grouped by image: panel q
// belongs to image q / panels_per_image, whose C block is [m, n_valid] at
// c + image * image_stride with row stride ldc. Batching images along N lets one pass
// over the weights serve the whole batch.
struct OutSpec {
  float* c = nullptr;
  int64_t ldc = 0;
  int64_t image_stride = 0;
  int panels_per_image = 1;
  int n_valid = 0;  // valid columns per image
  int m = 0;        // valid rows
  // Applied once the full K sum is in, in this order: + bias[row], + residual, * scale.
  const float* bias = nullptr;  // [m] for image 0; image b at bias + b * bias_image_stride
  int64_t bias_image_stride = 0;
  const float* residual = nullptr;  // laid out like c, may not alias it
  float scale = 1.0f;
};

// What the tile kernel gets: one kMR x kNR tile of C, of which rows x cols are valid.
struct TileOut {
  float* c;
  int64_t ldc;
  int rows, cols;
  bool accumulate;  // C += tile (a later k-block) rather than C = tile
  bool finish;      // last k-block: apply bias, residual, scale
  const float* bias;      // [rows] or null
  const float* residual;  // tile-aligned like c, or null
  float scale;
};

// The tile of C at rows row0..row0+rows of column panel q, for a k-block that is the
// first (C = tile) and/or the last (epilogue) of the K sum. False where the tile has no
// valid row or column (the padding panels past n_valid, or rows past m).
inline bool tile_out(const OutSpec& out, int q, int row0, int rows, bool first, bool last,
                     TileOut* t) {
  const int image = q / out.panels_per_image;
  const int col0 = (q % out.panels_per_image) * kNR;
  const int cols = std::min(kNR, out.n_valid - col0);
  if (cols <= 0 || rows <= 0) return false;
  const int64_t offset = image * out.image_stride + row0 * out.ldc + col0;
  t->c = out.c + offset;
  t->ldc = out.ldc;
  t->rows = rows;
  t->cols = cols;
  t->accumulate = !first;
  t->finish = last;
  t->bias = out.bias ? out.bias + image * out.bias_image_stride + row0 : nullptr;
  t->residual = out.residual ? out.residual + offset : nullptr;
  t->scale = out.scale;
  return true;
}

// The portable epilogue for one row of a tile: cols accumulated values into C at o.c + at,
// with + C (later k-blocks), then + bias, + residual, * scale (last k-block).
inline void store_row_scalar(const TileOut& o, int64_t at, float bias, const float* acc,
                             int cols) {
  float* c = o.c + at;
  const float* res = o.residual ? o.residual + at : nullptr;
  for (int j = 0; j < cols; ++j) {
    float v = acc[j];
    if (o.accumulate) v += c[j];
    if (o.finish) {
      v += bias;
      if (res) v += res[j];
      v *= o.scale;
    }
    c[j] = v;
  }
}

// c (+)= a[kc][kMR] * b[kc][kNR] restricted to the valid rows/cols, then the epilogue.
using TileKernel = void (*)(int kc, const float* a, const float* b, const TileOut& out);

void tile_generic(int kc, const float* a, const float* b, const TileOut& out);
void tile_avx2(int kc, const float* a, const float* b, const TileOut& out);
void tile_avx512(int kc, const float* a, const float* b, const TileOut& out);
TileKernel tile_kernel(Isa isa);

// Cache blocking: B is packed kc rows x nq panels at a time (the block stays in L2 while
// each kMR-row sliver of A, kc x kMR, is reused from L1 across it).
struct Blocking {
  int kc = 384;
  int nq = 8;
};
size_t gemm_scratch_floats(const Blocking& blk);

// Computes the C rows of A panels [p0, p1) for column panels [q0, q1), on the calling
// thread. scratch holds gemm_scratch_floats(blk), 64-byte aligned; it may be null where b
// holds its panels in place (PanelSource::packed never null).
void gemm(TileKernel kernel, const PackedA& a, int p0, int p1, const PanelSource& b, int q0,
          int q1, const OutSpec& out, const Blocking& blk, float* scratch);

}  // namespace cpu
}  // namespace cm4j

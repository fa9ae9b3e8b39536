// The bf16 GEMM of the CPU backend's bf16 mode: C[M, N] (fp32) = A[M, K] * B[K, N] with
// bf16 operands and fp32 accumulation, the same OutSpec epilogue as the fp32 GEMM.
// A (the weights) is rounded to bf16 once at load; B arrives through the same PanelSource
// as the fp32 GEMM (the conv's im2col gather) and is rounded to bf16 (round to nearest
// even) as it is repacked into the bf16 block. One layout serves all kernels:
//   A panel p (rows p*32..p*32+31), k-block j (k = 32j..32j+31): [32 rows][32 k] bf16,
//     i.e. two AMX A tiles of 16 rows x 64 bytes;
//   B panel (kNR = 32 columns), k-block j: [2 halves][16 k pairs][16 columns][2] bf16,
//     i.e. two AMX B tiles in VNNI order, and for AVX-512-BF16 one 64-byte row per k pair
//     and half.
// K is zero-padded to a multiple of 32 on both sides.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/gemm.h"
#include "cpu/isa.h"

namespace cm4j {
namespace cpu {

constexpr int kMR16 = 32;  // rows per bf16 A panel
constexpr int kKB16 = 32;  // k per bf16 block

inline int pad_k16(int k) { return (k + kKB16 - 1) / kKB16 * kKB16; }

// Round to nearest even; NaN stays NaN.
inline uint16_t float_to_bf16(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_float(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

struct PackedA16 {
  const uint16_t* data = nullptr;
  int m = 0, k = 0;  // k: the true K; panels hold pad_k16(k)
  int panels() const { return (m + kMR16 - 1) / kMR16; }
  const uint16_t* panel(int p) const {
    return data + static_cast<size_t>(p) * pad_k16(k) * kMR16;
  }
};

inline size_t packed_a16_elems(int m, int k) {
  return static_cast<size_t>((m + kMR16 - 1) / kMR16) * kMR16 * pad_k16(k);
}
// Packs row-major src [m, k] (row stride k) into dst (packed_a16_elems(m, k) bf16).
void pack_a16(const float* src, int m, int k, uint16_t* dst);
// As pack_a16 for A[r, c] = src[r * row_stride + c * col_stride] (attention's K^T and V).
void pack_a16_strided(const float* src, int m, int k, int64_t row_stride, int64_t col_stride,
                      uint16_t* dst);

// c (+)= a * b for one 32 x 32 tile over kc (a multiple of 32) of K, then the epilogue;
// a: the panel's k-blocks [kc/32][32][32], b: [kc/32][2][16][16][2]. o.rows <= 32.
using Bf16Kernel = void (*)(int kc, const uint16_t* a, const uint16_t* b, const TileOut& out);
void tile16_generic(int kc, const uint16_t* a, const uint16_t* b, const TileOut& out);
void tile16_avx512bf16(int kc, const uint16_t* a, const uint16_t* b, const TileOut& out);
void tile16_amx(int kc, const uint16_t* a, const uint16_t* b, const TileOut& out);
Bf16Kernel bf16_kernel(Bf16Path path);

// Converts fp32 rows [rows][kNR] (row stride kNR) of one column panel into the bf16 B
// layout of kc rows (kc a multiple of 32; rows rows..kc written as zero).
void convert_b16(const float* src, int rows, int kc, uint16_t* dst);
void convert_b16_avx512(const float* src, int rows, int kc, uint16_t* dst);
using ConvertB16 = void (*)(const float* src, int rows, int kc, uint16_t* dst);

// The B operand of gemm16, one column panel at a time: writes rows k0..k0+rows of column
// panel q in the bf16 B layout, kc rows in all (rows..kc written as zero). staging is
// kc * kNR floats of scratch the source may use.
class Panel16Source {
 public:
  virtual ~Panel16Source() = default;
  virtual void pack16(int k0, int rows, int kc, int q, uint16_t* dst, float* staging) const = 0;
  // Rows k0.. of column panel q already in the B layout, to be read in place; null when
  // the source must pack16 them.
  virtual const uint16_t* packed(int k0, int q) const {
    (void)k0, (void)q;
    return nullptr;
  }
};

// Any fp32 PanelSource, gathered into staging and rounded by convert.
class ConvertedPanels : public Panel16Source {
 public:
  ConvertedPanels(const PanelSource& src, ConvertB16 convert) : src_(src), convert_(convert) {}
  void pack16(int k0, int rows, int kc, int q, uint16_t* dst, float* staging) const override {
    src_.pack(k0, rows, q, 1, staging);
    convert_(staging, rows, kc, dst);
  }

 private:
  const PanelSource& src_;
  ConvertB16 convert_;
};

// Measured on the 2-core Xeon (AMX) with the real model's 3x3 convs at batch 4: kc 768 /
// nq 16 beat 512 / 8 by ~20% (fewer partial-sum passes over C; the B block, 768 KiB of
// bf16, still sits in L2).
struct Blocking16 {
  int kc = 768;  // at most; a multiple of 32
  int nq = 16;
};
// Per-thread scratch in floats (64-byte aligned) for gemm16.
size_t gemm16_scratch_floats(const Blocking16& blk);

// As gemm() for bf16: the C rows of A panels [p0, p1) (32 rows each) for column panels
// [q0, q1). out.m is the valid row count.
void gemm16(Bf16Kernel kernel, const PackedA16& a, int p0, int p1, const Panel16Source& b,
            int q0, int q1, const OutSpec& out, const Blocking16& blk, float* scratch);

}  // namespace cpu
}  // namespace cm4j

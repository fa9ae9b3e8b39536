// The bf16 convolution without im2col (amx and avx512bf16 paths). The input is rounded to bf16 once per conv
// into channel pairs on the zero-padded grid (hp x wp: the input after the optional
// nearest-2x upsample plus `pad` on every side), so that 16 consecutive positions of one
// channel pair are one 64-byte row of an AMX B tile in VNNI order, and the 16 rows of a
// tile (16 pairs, a 32-channel block) are a fixed stride apart. An output pixel (oy, ox)
// is grid position n = oy * wp + ox and tap (ky, kx) reads n + ky * wp + kx, so every B
// tile of the GEMM is one strided tile load straight from the packed input, where the
// im2col gather made nine fp32 copies of every value. Two layouts:
//   row-interleaved, when w_out is a multiple of 16 (every layer of the real models but the
//     8x8 ones): [image][channel block][y][pair in block][x][2], so a B tile is 16 rows of
//     one grid row, wp * 4 bytes apart: 4 KiB of contiguous memory at 64x64;
//   planar otherwise: [image][pair][y][x][2] with slack after each plane, where tiles run
//     along the flattened grid across row ends and compute (then drop) the pad columns.
// The weights are packed once, at load, as [32-row panel][channel block of 32][tap][32 rows]
// [32 channels] bf16: exactly the PackedA16 layout of a K = c_pad * taps GEMM whose row k
// is (channel block k / (32 taps), tap (k / 32) % taps, channel k % 32). The few convs this
// path does not cover (stride 2) run gemm16 on that layout through PermutedConvPanels.
//
// Used on the amx and avx512bf16 paths (the packing needs AVX-512-BF16), each with its own
// tile kernel; the portable bf16 path keeps the im2col GEMM of conv2d.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend.h"
#include "cpu/context.h"
#include "cpu/gemm_bf16.h"

namespace cm4j {
namespace cpu {

// Channels are padded to whole 32-channel blocks (one A tile row, 16 B tile rows).
inline int direct16_c_pad(int c_in) { return (c_in + kKB16 - 1) / kKB16 * kKB16; }
inline size_t direct16_weight_elems(int c_out, int c_in, int kernel) {
  return static_cast<size_t>((c_out + kMR16 - 1) / kMR16) * kMR16 * direct16_c_pad(c_in) *
         kernel * kernel;
}
// Packs torch's [c_out, c_in, kernel, kernel] into the layout above
// (direct16_weight_elems bf16, zero past c_out and c_in).
void pack_direct16_weight(const float* w, int c_out, int c_in, int kernel, uint16_t* dst);

// Where the outputs of one conv lie on the padded grid, how they are cut into halves
// (16 positions, one B tile) and tiles (two halves), and where the packed input keeps them.
// Offsets count positions (one bf16 pair, 4 bytes).
struct Direct16Geometry {
  explicit Direct16Geometry(const ConvParams& p);

  int c_in, c_pad, taps;
  int h_in, w_in;      // the sources' stored size
  bool upsample;
  int pad, hp, wp;     // padded grid
  int h_out, w_out;
  bool row_halves;     // w_out % 16 == 0: each half is 16 pixels of one output row, and
                       // the input is row-interleaved; else planar
  int halves, tiles;   // per image
  int64_t pair_step;   // between the rows of a B tile (channel pairs)
  int64_t row_step;    // between grid rows of one pair
  int64_t block_step;  // between channel blocks (16 pairs)
  int tap_offset[9];   // ky * row_step + kx

  // Grid position of half h's first pixel.
  int half_start(int h) const {
    if (!row_halves) return 16 * h;
    const int per_row = w_out / 16;
    return h / per_row * wp + h % per_row * 16;
  }
  // Where half h's first position lies within a channel block.
  int64_t half_offset(int h) const {
    if (!row_halves) return 16 * h;
    const int per_row = w_out / 16;
    return h / per_row * row_step + h % per_row * 16;
  }
  // Where pair cp's grid row y starts within an image.
  int64_t row_offset(int cp, int y) const {
    return cp / 16 * block_step + cp % 16 * pair_step + y * row_step;
  }
  // bf16 elements of one image.
  size_t image_elems() const { return static_cast<size_t>(c_pad / kKB16) * block_step * 2; }
};

// Stride 1 (any kernel/pad, optional upsample) with direct16 weights. Its input packing
// also applies a fused group norm (ConvArgs::norm).
inline bool direct16_usable(const ConvParams& p) { return p.stride == 1; }

// out: the conv's OutSpec (conv2d.cpp): C = [B, c_out, h_out * w_out], per-image bias.
Status conv2d_direct16(CpuContext& ctx, const ConvParams& p, const ConvArgs& a,
                       const PackedA16& weights, const OutSpec& out);

// gemm16's B operand for a direct16 weight and a conv this path does not cover: rows in
// the packed weights' order (block, tap, channel), gathered one row at a time through the
// im2col PanelSource and rounded by convert.
class PermutedConvPanels : public Panel16Source {
 public:
  PermutedConvPanels(const PanelSource& src, int c_in, int kernel, ConvertB16 convert)
      : src_(src), c_in_(c_in), taps_(kernel * kernel), convert_(convert) {}
  void pack16(int k0, int rows, int kc, int q, uint16_t* dst, float* staging) const override;

 private:
  const PanelSource& src_;
  int c_in_, taps_;
  ConvertB16 convert_;
};

#if defined(__x86_64__) || defined(__i386__)
// pack_direct16_weight with AVX-512-BF16 (the same bits; what the amx and avx512bf16 paths use).
void pack_direct16_weight_avx512bf16(const float* w, int c_out, int c_in, int kernel,
                                     uint16_t* dst);
// Channel pair cp of one image of the packed input (image points at its start): channels
// 2cp and 2cp+1 of cat(a.src1, a.src2) (zero past c_in), normalized by a.norm when set
// (ConvArgs), rounded to bf16, padded and optionally upsampled, with the planar layout's
// slack zeroed. The padding stays zero: it pads the normalized tensor.
void pack_direct16_pair(const Direct16Geometry& g, const ConvParams& p, const ConvArgs& a,
                        int image_index, int cp, uint16_t* image);
// acc[32][32] (fp32) = the 32 rows of weight panel a times the two halves at offsets o0
// (columns 0..15) and o1 (16..31) of image x, over every channel and tap.
void direct16_tile_amx(const Direct16Geometry& g, const uint16_t* a, const uint16_t* x,
                       int64_t o0, int64_t o1, float* acc);
// The same with AVX-512-BF16 dot products (CPUs without AMX).
void direct16_tile_avx512bf16(const Direct16Geometry& g, const uint16_t* a, const uint16_t* x,
                              int64_t o0, int64_t o1, float* acc);
// Columns col0..col0+count-1 of acc (count 16: one half; 32: both, when the second
// continues the first on the grid) into C with the epilogue, starting at grid position
// start; only the positions that are output pixels are written.
void direct16_store(const Direct16Geometry& g, const OutSpec& out, int image, int row0, int rows,
                    const float* acc, int col0, int count, int start);
#endif

}  // namespace cpu
}  // namespace cm4j

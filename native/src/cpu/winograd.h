// Winograd convolution F(m x m, 3x3) for the fp32 stride-1, pad-1 3x3 convs (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2015). Each output tile of m x m
// pixels comes from a t x t input tile (t = m + 2) as Y = A^T [ (G g G^T) . (B^T d B) ] A,
// so the c_in sum becomes t*t independent GEMMs, one per transformed position xi:
//   M_xi [c_out, tiles] = U_xi [c_out, c_in] x V_xi [c_in, tiles],
// t*t * c_out * c_in multiplies per tile instead of 9 * m*m * c_out * c_in: 2.25x fewer
// for F(2x2), 4x fewer for F(4x4). The filter transform U = G g G^T is done once at load
// (U_xi packed like any GEMM weight, next to the direct weight that the convs this path
// does not cover still use); the input transform writes V straight into the GEMM's
// B-panel layout, where the GEMM reads it in place; the output transform applies the
// direct path's epilogue (bias, per-image bias, residual, scale) as it writes each output
// pixel. On AVX-512 both move whole rows of 16 tiles at once (winograd_avx512.cpp).
// F(6x6) is not implemented: its transforms' larger coefficients are known to cost roughly
// another order of magnitude of fp32 accuracy per layer over F(4x4) (not measured here).
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend.h"
#include "cpu/gemm.h"
#include "cpu/isa.h"
#include "cpu/thread_pool.h"

namespace cm4j {
namespace cpu {

struct CpuContext;  // context.h includes this header
struct CpuWeight;

// Which algorithm the fp32 3x3 convs use: CM4J_CPU_CONV=direct|winograd|winograd2x2 forces
// one (winograd: F(4x4,3x3), winograd2x2: F(2x2,3x3)); unset, the per-layer rule of
// winograd_tile() picks.
enum class ConvMode { kAuto = 0, kDirect = 1, kWinograd4 = 2, kWinograd2 = 3 };
ConvMode choose_conv_mode();
// CM4J_CPU_CONV, checked: OK when unset or empty or a valid value; otherwise an error naming
// the value and the valid ones (the engine refuses to start, as for CM4J_CPU_ISA).
Status check_conv_override();

// Lanes: the transforms work on 16 tiles at once (one zmm; four SSE registers in the
// generic build), one float of each tile per lane.
constexpr int kWinoLanes = 16;

// Tiles are numbered across the batch: tile n is image n / per_image, tile row
// n % per_image / tiles_x, tile column n % tiles_x.
struct Tiling {
  int m, t, tt;  // output tile m x m, input tile t x t (t = m + 2), tt = t * t
  int h_out, w_out, tiles_x, per_image;
  int64_t total;
};

// The transforms of one ISA, each on one task's share: channels [c0, c1) of the 16 tiles
// n0..n0+15 (those at or past `end` are padding); 2 and 4: F(2x2) and F(4x4).
// input: gathers the t x t input tiles (through the zero padding and the optional
// nearest-2x upsample) and writes V = B^T d B into the GEMMs' panels: channel c's 16
// values of position xi at v + (c - c0) * kNR + xi * v_stride (64-byte aligned).
// output: Y = A^T M A for output channels [c0, c1), channel co's GEMM results of position
// xi at mv + (co - c0) * m_ldc + xi * m_stride (64-byte aligned), into the conv's output
// with its epilogue (out: conv2d.cpp's OutSpec).
using WinogradInput = void (*)(const Tiling& g, const ConvParams& p, const ConvArgs& a, int c0,
                               int c1, int64_t n0, int64_t end, float* v, int64_t v_stride);
using WinogradOutput = void (*)(const Tiling& g, const OutSpec& out, int c0, int c1, int64_t n0,
                                int64_t end, const float* mv, int64_t m_ldc, int64_t m_stride);
struct WinogradKernels {
  WinogradInput input2, input4;
  WinogradOutput output2, output4;
};
const WinogradKernels& winograd_kernels(Isa isa);
const WinogradKernels& winograd_kernels_avx512();

// Output tile size m (2 or 4) for a 3x3 weight [c_out, c_in] under mode, or 0 for none:
// decided once at load, when only the channels are known.
int winograd_tile(ConvMode mode, int c_out, int c_in);
// Whether a conv call can run on a weight's Winograd form of tile size `tile` (stride 1,
// pad 1, 3x3), and, under ConvMode::kAuto, whether it is worth it at this spatial size
// (never the batch: an image's output does not depend on what it is batched with).
bool winograd_usable(ConvMode mode, int tile, const ConvParams& p);

// Floats of the packed transformed weight: t*t PackedA of [c_out, c_in].
size_t winograd_weight_floats(int tile, int c_out, int c_in);
// U_xi = (G g G^T)_xi from torch's [c_out, c_in, 3, 3], packed as t*t PackedA panels, on
// the pool's threads.
void pack_winograd_weight(ThreadPool& pool, const float* w, int tile, int c_out, int c_in,
                          float* dst);

// out: the conv's OutSpec (conv2d.cpp): C = [B, c_out, h_out * w_out] with its epilogue.
Status conv2d_winograd(CpuContext& ctx, const ConvParams& p, const ConvArgs& a,
                       const CpuWeight& w, const OutSpec& out);

}  // namespace cpu
}  // namespace cm4j

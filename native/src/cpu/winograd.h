// Winograd convolution F(m x m, 3x3) for the fp32 stride-1, pad-1 3x3 convs (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2015). Each output tile of m x m
// pixels comes from a t x t input tile (t = m + 2) as Y = A^T [ (G g G^T) . (B^T d B) ] A,
// so the c_in sum becomes t*t independent GEMMs, one per transformed position xi:
//   M_xi [c_out, tiles] = U_xi [c_out, c_in] x V_xi [c_in, tiles],
// t*t * c_out * c_in multiplies per tile instead of 9 * m*m * c_out * c_in: 2.25x fewer
// for F(2x2), 4x fewer for F(4x4). The filter transform U = G g G^T is done once at load
// (U_xi packed like any GEMM weight, next to the direct weight that the convs this path
// does not cover still use); the input transform writes V straight into the GEMM's
// B-panel layout; the output transform applies the direct path's epilogue (bias,
// per-image bias, residual, scale) as it writes each output pixel.
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

// The transforms of one ISA. d: the t x t input tiles of 16 tiles, [t*t][16];
// v: where position xi's 16 values go, v + xi * v_stride (64-byte aligned).
// mv: position xi's 16 GEMM results at mv + xi * m_stride (64-byte aligned);
// y: the m x m output tiles, [m*m][16].
struct WinogradKernels {
  void (*input2)(const float* d, float* v, int64_t v_stride);
  void (*input4)(const float* d, float* v, int64_t v_stride);
  void (*output2)(const float* mv, int64_t m_stride, float* y);
  void (*output4)(const float* mv, int64_t m_stride, float* y);
};
const WinogradKernels& winograd_kernels(Isa isa);
const WinogradKernels& winograd_kernels_avx512();

// Output tile size m (2 or 4) for a 3x3 weight [c_out, c_in] under mode, or 0 for none:
// decided once at load, when only the channels are known.
int winograd_tile(ConvMode mode, int c_out, int c_in);
// Whether a conv call can run on a weight's Winograd form (stride 1, pad 1, 3x3), and,
// under ConvMode::kAuto, whether it is worth it at this spatial size (never the batch: an
// image's output does not depend on what it is batched with).
bool winograd_usable(ConvMode mode, const ConvParams& p);

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

// Winograd's set-up (winograd.h): CM4J_CPU_CONV, the per-layer rule, the filter transform
// and the generic transforms; the convolution itself is in winograd_conv.cpp.
#include "cpu/winograd.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "cm4j.h"
#include "cpu/gemm.h"
#include "cpu/thread_pool.h"
#include "cpu/winograd_tiles.h"

namespace cm4j {
namespace cpu {

namespace {

constexpr struct {
  const char* name;
  ConvMode mode;
} kConvModes[] = {{"direct", ConvMode::kDirect},
                  {"winograd", ConvMode::kWinograd4},
                  {"winograd2x2", ConvMode::kWinograd2}};

}  // namespace

ConvMode choose_conv_mode() {
  const char* env = std::getenv("CM4J_CPU_CONV");
  if (env == nullptr || *env == '\0') return ConvMode::kAuto;
  for (const auto& m : kConvModes)
    if (std::strcmp(env, m.name) == 0) return m.mode;
  return ConvMode::kAuto;  // check_conv_override() has refused it before any backend starts
}

Status check_conv_override() {
  const char* env = std::getenv("CM4J_CPU_CONV");
  if (env == nullptr || *env == '\0') return Status::Ok();
  std::string valid;
  for (const auto& m : kConvModes) {
    if (std::strcmp(env, m.name) == 0) return Status::Ok();
    valid += (valid.empty() ? "" : ", ") + std::string(m.name);
  }
  return {CM4J_ERR_INVALID_ARGUMENT,
          std::string("CM4J_CPU_CONV=") + env + ": unknown value; valid: " + valid};
}

// ---------------------------------------------------------------- the per-layer rule

// Measured with `bench_cpu_ops --isa avx512 --threads 2 --quick --layers` on the 2-vCPU
// AMD EPYC development machine (shared, noisy: compare within a run), imagenet64 shapes,
// GFLOP/s of the direct conv's arithmetic per CPU second, direct -> F(4x4):
//   192 -> 192 @ 64x64: 320 -> 460 (b1), 318 -> 497 (b4)
//   384 -> 384 @ 32x32: 275 -> 627 (b1), 268 -> 702 (b4)
//   576 -> 576 @ 16x16: 293 -> 272 (b1, 16 tiles), 253 -> 658 (b4, 64 tiles)
//   768 -> 768 @ 8x8:   216 ->  69 (b1, 4 tiles),  266 -> 277 (b4, 16 tiles)
// and direct -> F(2x2) (2026-12-02, same machine; every figure within one run):
//   576 -> 576 @ 16x16:        262 -> 419 (b1, 64 tiles), 272 -> 434 (b4)
//   1152+576 -> 576 @ 16x16:   289 -> 492 (b1),           287 -> 436 (b4)
//   768 -> 768 @ 8x8:          228 -> 178 (b1, 16 tiles), 268 -> 470 (b4)
// The GEMMs have one column per tile: under 64 tiles (two kNR panels) most of each panel
// is padding and direct wins. The choice may not depend on the batch (an image must come
// out bit for bit the same batched or alone), so it counts one image's tiles: 64 or more.
// That leaves F(4x4) at 32x32 and up, and F(2x2) at 16x16 (F(4x4) there has 16 tiles an
// image; its 658 at batch 4 is given up). It is made in two steps, since the spatial size
// is only known at the call:
//  - at load, a 3x3 weight gets a Winograd form when c_in and c_out are 64 or more (below,
//    the transforms outweigh the GEMM): F(4x4) up to 384 output channels, F(2x2) up to
//    576. The channel count stands for the level: in these UNets the wider layers are the
//    deeper ones (in imagenet64 the 576-channel convs run at 16x16, two at 32x32, and the
//    768-channel ones at 8x8, where no Winograd form pays, and twice at 16x16). The
//    transformed weights cost memory: t*t/9 times the direct ones (4x, and 1.8x for F(2x2)),
//    kept beside them;
//  - at each call, the form runs when one image has 64 tiles or more of its size.
constexpr int kMinChannels = 64;
constexpr int kMaxOutChannels4 = 384;
constexpr int kMaxOutChannels2 = 576;
constexpr int kMinTiles = 64;

int winograd_tile(ConvMode mode, int c_out, int c_in) {
  switch (mode) {
    case ConvMode::kWinograd4: return 4;
    case ConvMode::kWinograd2: return 2;
    case ConvMode::kDirect: return 0;
    case ConvMode::kAuto: break;
  }
  if (c_in < kMinChannels || c_out < kMinChannels) return 0;
  return c_out <= kMaxOutChannels4 ? 4 : c_out <= kMaxOutChannels2 ? 2 : 0;
}

bool winograd_usable(ConvMode mode, int tile, const ConvParams& p) {
  if (p.kernel != 3 || p.stride != 1 || p.pad != 1) return false;
  if (mode != ConvMode::kAuto) return true;
  return ((p.h_out() + tile - 1) / tile) * ((p.w_out() + tile - 1) / tile) >= kMinTiles;
}

// ---------------------------------------------------------------- filter transform

size_t winograd_weight_floats(int tile, int c_out, int c_in) {
  const int t = tile + 2;
  return static_cast<size_t>(t) * t * packed_a_floats(c_out, c_in);
}

void pack_winograd_weight(ThreadPool& pool, const float* w, int tile, int c_out, int c_in,
                          float* dst) {
  // G (t x 3), in double: U is rounded to float once.
  static const double kG2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  static const double kG4[6][3] = {{1.0 / 4, 0, 0},
                                   {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                   {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                   {0, 0, 1}};
  const int t = tile + 2, tt = t * t;
  const double(*g)[3] = tile == 2 ? kG2 : kG4;
  const size_t per_position = packed_a_floats(c_out, c_in);
  const size_t slab_floats = static_cast<size_t>(c_in) * kMR;  // one panel of one position
  // One task per panel of kMR rows: its t*t slabs are built in a buffer, then copied out
  // one position at a time; writing the t*t positions (megabytes apart) value by value
  // costs a TLB miss a store and made loading imagenet64 30 s slower.
  const int panels = (c_out + kMR - 1) / kMR;
  std::vector<std::unique_ptr<float[]>> buffers(pool.size());  // one per worker, reused
  const auto task = [&](int p, int worker) {
    if (!buffers[worker]) buffers[worker].reset(new float[tt * slab_floats]);
    float* slabs = buffers[worker].get();  // [tt][c_in][kMR]
    const int rows = std::min(kMR, c_out - p * kMR);  // rows past c_out are zero
    // The panel's kMR rows side by side in the innermost index, so that each step below is
    // one operation over every row (vectorized), in the order a row alone would take.
    double f[9][kMR] = {};    // the 3x3 filters of input channel ci
    double gf[6][3][kMR];     // G f
    for (int ci = 0; ci < c_in; ++ci) {
      for (int r = 0; r < rows; ++r)
        for (int j = 0; j < 9; ++j) f[j][r] = w[(static_cast<size_t>(p * kMR + r) * c_in + ci) * 9 + j];
      for (int i = 0; i < t; ++i)
        for (int j = 0; j < 3; ++j)
          for (int r = 0; r < kMR; ++r)
            gf[i][j][r] = g[i][0] * f[j][r] + g[i][1] * f[3 + j][r] + g[i][2] * f[6 + j][r];
      for (int i = 0; i < t; ++i)
        for (int k = 0; k < t; ++k) {
          float* out = slabs + (i * t + k) * slab_floats + static_cast<size_t>(ci) * kMR;
          for (int r = 0; r < kMR; ++r)
            out[r] = static_cast<float>(gf[i][0][r] * g[k][0] + gf[i][1][r] * g[k][1] +
                                        gf[i][2][r] * g[k][2]);
          for (int r = rows; r < kMR; ++r) out[r] = 0.0f;
        }
    }
    for (int xi = 0; xi < tt; ++xi)
      std::memcpy(dst + xi * per_position + p * slab_floats, slabs + xi * slab_floats,
                  sizeof(float) * slab_floats);
  };
  if (!pool.parallel_for(panels, task)) throw std::bad_alloc();  // only allocation can fail
}

// ---------------------------------------------------------------- generic transforms

namespace {

void input2_generic(const Tiling& g, const ConvParams& p, const ConvArgs& a, int c0, int c1,
                    int64_t n0, int64_t end, float* v, int64_t v_stride) {
  wino::input_lanes(wino::kBT2, g, p, a, c0, c1, n0, end, v, v_stride);
}
void input4_generic(const Tiling& g, const ConvParams& p, const ConvArgs& a, int c0, int c1,
                    int64_t n0, int64_t end, float* v, int64_t v_stride) {
  wino::input_lanes(wino::kBT4, g, p, a, c0, c1, n0, end, v, v_stride);
}
void output2_generic(const Tiling& g, const OutSpec& out, int c0, int c1, int64_t n0,
                     int64_t end, const float* mv, int64_t m_ldc, int64_t m_stride) {
  wino::output_lanes(wino::kAT2, g, out, c0, c1, n0, end, mv, m_ldc, m_stride);
}
void output4_generic(const Tiling& g, const OutSpec& out, int c0, int c1, int64_t n0,
                     int64_t end, const float* mv, int64_t m_ldc, int64_t m_stride) {
  wino::output_lanes(wino::kAT4, g, out, c0, c1, n0, end, mv, m_ldc, m_stride);
}

}  // namespace

const WinogradKernels& winograd_kernels(Isa isa) {
  static const WinogradKernels generic = {input2_generic, input4_generic, output2_generic,
                                          output4_generic};
#if defined(__x86_64__) || defined(__i386__)
  if (isa == Isa::kAvx512) return winograd_kernels_avx512();
#endif
  (void)isa;
  return generic;
}

}  // namespace cpu
}  // namespace cm4j

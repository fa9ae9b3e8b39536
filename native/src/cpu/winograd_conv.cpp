// The Winograd convolution itself (winograd.h): tiles gathered and transformed into the
// GEMMs' panels, t*t GEMMs on the ISA's tile kernel, the output transform with the epilogue.
#include <algorithm>
#include <cstring>

#include "cm4j.h"
#include "cpu/context.h"
#include "cpu/cpu_weight.h"
#include "cpu/winograd.h"
#include "cpu/work_split.h"

namespace cm4j {
namespace cpu {

namespace {

// Tiles are numbered across the batch: tile n is image n / per_image, tile row
// n % per_image / tiles_x, tile column n % tiles_x. A chunk of tiles goes through all
// three phases at once, so its V and M stay near the cache; its V is [t*t][panel][c_in][kNR]
// (the GEMM's B panels, one position after another), its M [t*t][c_out][chunk].
struct Tiling {
  int m, t, tt;
  int h_out, w_out, tiles_x, per_image;
  int64_t total;
};

// Floats of V + M for one chunk: about 8 MiB, a share of L3 that leaves the weights room.
constexpr size_t kChunkFloats = size_t{2} << 20;
// Channels per transform task: enough work per task to hide the pool's hand-out.
constexpr int kChannelBlock = 32;

// B operand of one position's GEMM: V already in panels, copied a k-block at a time.
class PrepackedPanels : public PanelSource {
 public:
  PrepackedPanels(const float* v, int c_in) : v_(v), c_in_(c_in) {}
  void pack(int k0, int kc, int q0, int nq, float* dst) const override {
    for (int q = q0; q < q0 + nq; ++q)
      std::memcpy(dst + static_cast<size_t>(q - q0) * kc * kNR,
                  v_ + (static_cast<size_t>(q) * c_in_ + k0) * kNR, sizeof(float) * kc * kNR);
  }

 private:
  const float* v_;
  int c_in_;
};

// The t x t input tiles of channel c for tiles n0..n0+15 (those past `end` zero) into d,
// [t*t][16], read through the zero padding and the optional nearest-2x upsample. T is a
// constant so that a tile inside the image (most of them) is t*t plain loads.
template <int T>
void gather(const Tiling& g, const ConvParams& p, const ConvArgs& a, int c, int64_t n0,
            int64_t end, float* d) {
  const int shift = p.upsample ? 1 : 0;
  const int h_virt = p.h_in << shift, w_virt = p.w_in << shift;
  const int64_t plane = static_cast<int64_t>(p.h_in) * p.w_in;
  for (int l = 0; l < kWinoLanes; ++l) {
    const int64_t n = n0 + l;
    if (n >= end) {
      for (int i = 0; i < T * T; ++i) d[i * kWinoLanes + l] = 0.0f;
      continue;
    }
    const int64_t image = n / g.per_image;
    const int r = static_cast<int>(n % g.per_image);
    const int y0 = r / g.tiles_x * g.m - 1, x0 = r % g.tiles_x * g.m - 1;
    const float* src = c < p.c_in1 ? a.src1 + (image * p.c_in1 + c) * plane
                                   : a.src2 + (image * p.c_in2 + c - p.c_in1) * plane;
    float* out = d + l;
    if (!p.upsample && y0 >= 0 && x0 >= 0 && y0 + T <= p.h_in && x0 + T <= p.w_in) {
      const float* at = src + static_cast<int64_t>(y0) * p.w_in + x0;
#pragma GCC unroll 6
      for (int i = 0; i < T; ++i)
#pragma GCC unroll 6
        for (int j = 0; j < T; ++j) out[(i * T + j) * kWinoLanes] = at[i * p.w_in + j];
      continue;
    }
    for (int i = 0; i < T; ++i) {
      const int iy = y0 + i;
      const bool row_inside = iy >= 0 && iy < h_virt;
      const float* row = row_inside ? src + static_cast<int64_t>(iy >> shift) * p.w_in : src;
      for (int j = 0; j < T; ++j) {
        const int ix = x0 + j;
        const bool inside = row_inside && ix >= 0 && ix < w_virt;
        out[(i * T + j) * kWinoLanes] = inside ? row[ix >> shift] : 0.0f;
      }
    }
  }
}

// Output channel co of tiles n0..n0+15 (y: [m*m][16]) into C with the epilogue.
void scatter(const Tiling& g, const OutSpec& out, int co, int64_t n0, int64_t end,
             const float* y) {
  for (int l = 0; l < kWinoLanes && n0 + l < end; ++l) {
    const int64_t n = n0 + l;
    const int64_t image = n / g.per_image;
    const int r = static_cast<int>(n % g.per_image);
    const int oy0 = r / g.tiles_x * g.m, ox0 = r % g.tiles_x * g.m;
    const float bias = out.bias ? out.bias[image * out.bias_image_stride + co] : 0.0f;
    const int64_t base = image * out.image_stride + static_cast<int64_t>(co) * out.ldc;
    const int rows = std::min(g.m, g.h_out - oy0), cols = std::min(g.m, g.w_out - ox0);
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) {
        const int64_t at = base + static_cast<int64_t>(oy0 + i) * g.w_out + ox0 + j;
        float v = y[(i * g.m + j) * kWinoLanes + l] + bias;
        if (out.residual) v += out.residual[at];
        out.c[at] = v * out.scale;
      }
  }
}

}  // namespace

Status conv2d_winograd(CpuContext& ctx, const ConvParams& p, const ConvArgs& a,
                       const CpuWeight& w, const OutSpec& out) {
  Tiling g;
  g.m = w.wino_tile;
  g.t = g.m + 2;
  g.tt = g.t * g.t;
  g.h_out = p.h_out();
  g.w_out = p.w_out();
  g.tiles_x = (g.w_out + g.m - 1) / g.m;
  g.per_image = (g.h_out + g.m - 1) / g.m * g.tiles_x;
  g.total = static_cast<int64_t>(p.batch) * g.per_image;
  const int c_in = w.c_in, c_out = w.rows;

  // Tiles per chunk: a whole number of panels, at least two, at most what the batch has.
  const size_t per_tile = static_cast<size_t>(g.tt) * (c_in + c_out);
  const int64_t all = (g.total + kNR - 1) / kNR * kNR;
  const int64_t chunk = std::min<int64_t>(
      all, std::max<int64_t>(2 * kNR, static_cast<int64_t>(kChunkFloats / per_tile) / kNR * kNR));
  const int panels = static_cast<int>(chunk / kNR);
  Status st = ctx.reserve_packed_input(per_tile * chunk);
  if (!st.ok()) return st;
  const Blocking blk;
  static_assert(Blocking{}.kc * Blocking{}.nq * kNR >= 36 * kWinoLanes + 16 * kWinoLanes,
                "the GEMM scratch also holds one task's transform tiles");
  st = ctx.reserve_scratch(gemm_scratch_floats(blk));
  if (!st.ok()) return st;
  float* v = ctx.packed_input();                                // [tt][panels][c_in][kNR]
  float* mv = v + static_cast<size_t>(g.tt) * c_in * chunk;     // [tt][c_out][chunk]
  const int64_t v_stride = static_cast<int64_t>(panels) * c_in * kNR;
  const int64_t m_stride = static_cast<int64_t>(c_out) * chunk;
  const WinogradKernels& k = *ctx.wino;
  const auto input = g.m == 2 ? k.input2 : k.input4;
  const auto gather_tiles = g.m == 2 ? gather<4> : gather<6>;
  const auto output = g.m == 2 ? k.output2 : k.output4;

  const int groups = panels * (kNR / kWinoLanes);
  const int in_blocks = (c_in + kChannelBlock - 1) / kChannelBlock;
  const int out_blocks = (c_out + kChannelBlock - 1) / kChannelBlock;
  const int m_panels = w.wino_packed(0).panels();
  const Split split = split_work(c_out, m_panels, panels, blk.nq, ctx.pool.size());

  for (int64_t n0 = 0; n0 < g.total; n0 += chunk) {
    const int64_t end = std::min(g.total, n0 + chunk);
    // V = B^T d B, written into the panels of every position's GEMM.
    const auto transform_in = [&](int task, int worker) {
      const int grp = task % groups, cb = task / groups;
      float* d = ctx.scratch(worker);  // [tt][16]
      const size_t col = static_cast<size_t>(grp) * kWinoLanes;  // tile offset in the chunk
      for (int c = cb * kChannelBlock; c < std::min(c_in, (cb + 1) * kChannelBlock); ++c) {
        gather_tiles(g, p, a, c, n0 + static_cast<int64_t>(col), end, d);
        input(d, v + (col / kNR * c_in + c) * kNR + col % kNR, v_stride);
      }
    };
    // M_xi = U_xi V_xi, t*t GEMMs over the chunk's tiles.
    OutSpec mo;
    mo.ldc = chunk;
    mo.panels_per_image = panels;
    mo.n_valid = static_cast<int>(end - n0);
    mo.m = c_out;
    const auto multiply = [&](int task, int worker) {
      const int xi = task / split.tasks();
      const TaskRange r = task_range(split, task % split.tasks(), m_panels, panels);
      const PackedA u = w.wino_packed(xi);
      const PrepackedPanels b(v + xi * v_stride, c_in);
      OutSpec o = mo;
      o.c = mv + xi * m_stride;
      gemm(ctx.tile, u, r.p0, r.p1, b, r.q0, r.q1, o, blk, ctx.scratch(worker));
    };
    // Y = A^T M A with the epilogue, into the conv's output.
    const auto transform_out = [&](int task, int worker) {
      const int grp = task % groups, cb = task / groups;
      float* y = ctx.scratch(worker);  // [m*m][16]
      const int64_t col = static_cast<int64_t>(grp) * kWinoLanes;
      if (n0 + col >= end) return;
      for (int co = cb * kChannelBlock; co < std::min(c_out, (cb + 1) * kChannelBlock); ++co) {
        output(mv + co * chunk + col, m_stride, y);
        scatter(g, out, co, n0 + col, end, y);
      }
    };
    if (!ctx.pool.parallel_for(groups * in_blocks, transform_in) ||
        !ctx.pool.parallel_for(g.tt * split.tasks(), multiply) ||
        !ctx.pool.parallel_for(groups * out_blocks, transform_out))
      return {CM4J_ERR_INTERNAL, "cpu: winograd conv2d task failed"};
  }
  return Status::Ok();
}

}  // namespace cpu
}  // namespace cm4j

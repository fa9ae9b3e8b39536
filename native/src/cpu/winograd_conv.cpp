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

// The tiles (numbered as in winograd.h's Tiling) go through all three phases a chunk at a
// time, so a chunk's V and M stay near the cache: V is [t*t][panel][c_in][kNR] (the
// GEMM's B panels, one position after another), M [t*t][c_out][chunk]. Floats of V + M
// for one chunk: about 8 MiB, a share of L3 that leaves the weights room.
constexpr size_t kChunkFloats = size_t{2} << 20;
// Channels per transform task: enough work per task to hide the pool's hand-out.
constexpr int kChannelBlock = 32;

// B operand of one position's GEMM: V, already in panels, read in place.
class PrepackedPanels : public PanelSource {
 public:
  PrepackedPanels(const float* v, int c_in) : v_(v), c_in_(c_in) {}
  const float* packed(int k0, int q) const override {
    return v_ + (static_cast<size_t>(q) * c_in_ + k0) * kNR;
  }
  void pack(int k0, int kc, int q0, int nq, float* dst) const override {
    for (int q = q0; q < q0 + nq; ++q)
      std::memcpy(dst + static_cast<size_t>(q - q0) * kc * kNR, packed(k0, q),
                  sizeof(float) * kc * kNR);
  }

 private:
  const float* v_;
  int c_in_;
};

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
  const Blocking blk;  // no GEMM scratch: its B operand, V, is read in place
  float* v = ctx.packed_input();                                // [tt][panels][c_in][kNR]
  float* mv = v + static_cast<size_t>(g.tt) * c_in * chunk;     // [tt][c_out][chunk]
  const int64_t v_stride = static_cast<int64_t>(panels) * c_in * kNR;
  const int64_t m_stride = static_cast<int64_t>(c_out) * chunk;
  const WinogradKernels& k = *ctx.wino;
  const WinogradInput input = g.m == 2 ? k.input2 : k.input4;
  const WinogradOutput output = g.m == 2 ? k.output2 : k.output4;

  const int groups = panels * (kNR / kWinoLanes);
  const int in_blocks = (c_in + kChannelBlock - 1) / kChannelBlock;
  const int out_blocks = (c_out + kChannelBlock - 1) / kChannelBlock;
  const int m_panels = w.wino_packed(0).panels();
  const Split split = split_work(c_out, m_panels, panels, blk.nq, ctx.pool.size());

  for (int64_t n0 = 0; n0 < g.total; n0 += chunk) {
    const int64_t end = std::min(g.total, n0 + chunk);
    // V = B^T d B, written into the panels of every position's GEMM.
    const auto transform_in = [&](int task, int) {
      const int grp = task % groups, cb = task / groups;
      const int c0 = cb * kChannelBlock, c1 = std::min(c_in, c0 + kChannelBlock);
      const size_t col = static_cast<size_t>(grp) * kWinoLanes;  // tile offset in the chunk
      input(g, p, a, c0, c1, n0 + static_cast<int64_t>(col), end,
            v + (col / kNR * c_in + c0) * kNR + col % kNR, v_stride);
    };
    // M_xi = U_xi V_xi, t*t GEMMs over the chunk's tiles.
    OutSpec mo;
    mo.ldc = chunk;
    mo.panels_per_image = panels;
    mo.n_valid = static_cast<int>(end - n0);
    mo.m = c_out;
    const auto multiply = [&](int task, int) {
      const int xi = task / split.tasks();
      const TaskRange r = task_range(split, task % split.tasks(), m_panels, panels);
      const PackedA u = w.wino_packed(xi);
      const PrepackedPanels b(v + xi * v_stride, c_in);
      OutSpec o = mo;
      o.c = mv + xi * m_stride;
      gemm(ctx.tile, u, r.p0, r.p1, b, r.q0, r.q1, o, blk, nullptr);
    };
    // Y = A^T M A with the epilogue, into the conv's output.
    const auto transform_out = [&](int task, int) {
      const int grp = task % groups, cb = task / groups;
      const int c0 = cb * kChannelBlock, c1 = std::min(c_out, c0 + kChannelBlock);
      const int64_t col = static_cast<int64_t>(grp) * kWinoLanes;
      if (n0 + col >= end) return;
      output(g, out, c0, c1, n0 + col, end, mv + c0 * chunk + col, chunk, m_stride);
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

// conv2d as one packed GEMM per layer: out[b] [c_out, HW] = W [c_out, c_in*k*k] x
// cols[c_in*k*k, HW], with the batch laid side by side along N so that one pass over the
// weights serves every image, and bias, time-embedding bias, residual and output scale
// applied by the tile kernel while the tile is still in registers.
#include <algorithm>
#include <vector>

#include "cm4j.h"
#include "cpu/im2col.h"
#include "cpu/im2col_bf16.h"
#include "cpu/ops.h"

namespace cm4j {
namespace cpu {

Status pack_conv_weight(const float* w, int c_out, int c_in, int kernel, bool bf16,
                        std::unique_ptr<Weight>* out) {
  if (w == nullptr || out == nullptr) return invalid("prepare_conv: null pointer");
  if (c_out <= 0 || c_in <= 0 || (kernel != 1 && kernel != 3))
    return invalid("prepare_conv: unsupported shape [" + std::to_string(c_out) + ", " +
                   std::to_string(c_in) + ", " + std::to_string(kernel) + "]");
  auto cw = std::make_unique<CpuWeight>();
  cw->kind = CpuWeight::Kind::kConv;
  cw->rows = c_out;
  cw->cols = c_in * kernel * kernel;
  cw->c_in = c_in;
  cw->kernel = kernel;
  cw->bf16 = bf16;
  cw->floats = bf16 ? (packed_a16_elems(cw->rows, cw->cols) + 1) / 2
                    : packed_a_floats(cw->rows, cw->cols);
  cw->data = alloc_floats(cw->floats);
  if (!cw->data) return out_of_memory("packed conv weight", cw->bytes());
  // torch's [c_out, c_in, k, k] is already A = [c_out, c_in*k*k] row-major.
  if (bf16)
    pack_a16(w, cw->rows, cw->cols, reinterpret_cast<uint16_t*>(cw->data.get()));
  else
    pack_a(w, cw->rows, cw->cols, cw->cols, 1, cw->data.get());
  *out = std::move(cw);
  return Status::Ok();
}

namespace {

// How the [M panels] x [N panels] output grid is cut into tasks.
struct Split {
  int m_chunks = 1, n_chunks = 1;
};

// Task t's share of the grid: A panels [p0, p1) and B panels [q0, q1).
struct TaskRange {
  int p0, p1, q0, q1;
};

TaskRange task_range(const Split& split, int t, int m_panels, int n_panels) {
  const int mi = t % split.m_chunks;
  const int ni = t / split.m_chunks;
  TaskRange r;
  r.p0 = static_cast<int>(static_cast<int64_t>(m_panels) * mi / split.m_chunks);
  r.p1 = static_cast<int>(static_cast<int64_t>(m_panels) * (mi + 1) / split.m_chunks);
  r.q0 = static_cast<int>(static_cast<int64_t>(n_panels) * ni / split.n_chunks);
  r.q1 = static_cast<int>(static_cast<int64_t>(n_panels) * (ni + 1) / split.n_chunks);
  return r;
}

// Wide outputs (many pixels) are cut along N: each task packs only its own columns and
// rereads the weights, which is cheap next to its arithmetic. Tall ones (the 8x8 and 16x16
// layers at small batch, where the weights outweigh the activations) are cut along M so
// each thread streams only its share of the weights.
Split split_work(int m_rows, int m_panels, int n_panels, int nq, int threads) {
  Split s;
  if (threads <= 1) return s;
  if (static_cast<int64_t>(n_panels) * kNR >= m_rows) {
    int chunks = std::max(threads, (n_panels + nq - 1) / nq);
    chunks = (chunks + threads - 1) / threads * threads;  // equal rounds for every thread
    s.n_chunks = std::min(chunks, n_panels);
  } else {
    s.m_chunks = std::min(m_panels, threads);
  }
  return s;
}

Status check(const ConvParams& p, const ConvArgs& a, const CpuWeight** weight) {
  if (a.src1 == nullptr || a.dst == nullptr || a.weight == nullptr)
    return invalid("conv2d: null src1, dst or weight");
  if ((p.c_in2 > 0) != (a.src2 != nullptr)) return invalid("conv2d: src2 does not match c_in2");
  if (p.batch <= 0 || p.c_in1 <= 0 || p.c_in2 < 0 || p.c_out <= 0 || p.h_in <= 0 || p.w_in <= 0)
    return invalid("conv2d: non-positive size");
  if ((p.kernel != 1 && p.kernel != 3) || (p.stride != 1 && p.stride != 2) || p.pad < 0)
    return invalid("conv2d: unsupported kernel/stride/pad");
  if (p.h_out() <= 0 || p.w_out() <= 0) return invalid("conv2d: empty output");
  if (a.bias_bc != nullptr && a.bias_bc_stride != 0 && a.bias_bc_stride < p.c_out)
    return invalid("conv2d: bias_bc_stride smaller than c_out");
  const auto* w = dynamic_cast<const CpuWeight*>(a.weight);
  if (w == nullptr || w->kind != CpuWeight::Kind::kConv) return invalid("conv2d: not a CPU conv weight");
  if (w->rows != p.c_out || w->c_in != p.c_in1 + p.c_in2 || w->kernel != p.kernel)
    return invalid("conv2d: weight shape [" + std::to_string(w->rows) + ", " + std::to_string(w->c_in) +
                   ", " + std::to_string(w->kernel) + "] does not match the call");
  *weight = w;
  return Status::Ok();
}

// The bf16 weights' GEMM: the same work split, over 32-row panels.
Status conv2d_bf16(CpuContext& ctx, const ConvParams& p, const ConvArgs& a, const CpuWeight& w,
                   const ConvPanels& cols, const OutSpec& out) {
  const int batch = p.batch;
  const ConvertedPanels converted(cols, ctx.convert16);
  const bool direct = ConvPanels16::usable(p, ctx.bf16_path);
  const ConvPanels16 direct_cols(p, a.src1, a.src2);
  const Panel16Source& source = direct ? static_cast<const Panel16Source&>(direct_cols)
                                       : static_cast<const Panel16Source&>(converted);
  const Blocking16 blk;
  static_assert(Blocking16{}.nq <= ConvPanels::kMaxPanels, "ConvPanels packs at most kMaxPanels");
  Status st = ctx.reserve_scratch(gemm16_scratch_floats(blk));
  if (!st.ok()) return st;
  const PackedA16 weights = w.packed16();
  const int m_panels = weights.panels();
  const int n_panels = batch * cols.panels_per_image();
  const Split split = split_work(out.m, m_panels, n_panels, blk.nq, ctx.pool.size());
  const auto task = [&](int t, int worker) {
    const TaskRange r = task_range(split, t, m_panels, n_panels);
    gemm16(ctx.tile16, weights, r.p0, r.p1, source, r.q0, r.q1, out, blk, ctx.scratch(worker));
  };
  if (!ctx.pool.parallel_for(split.m_chunks * split.n_chunks, task))
    return {CM4J_ERR_INTERNAL, "cpu: conv2d task failed"};
  return Status::Ok();
}

}  // namespace

Status conv2d(CpuContext& ctx, const ConvParams& p, const ConvArgs& a) {
  const CpuWeight* w = nullptr;
  Status st = check(p, a, &w);
  if (!st.ok()) return st;

  const ConvPanels cols(p, a.src1, a.src2);
  const int hw = p.h_out() * p.w_out();
  const int m = p.c_out;

  // bias + bias_bc folded into one per-image row bias, so the kernel adds one value.
  std::vector<float> image_bias;
  OutSpec out;
  if (a.bias_bc != nullptr) {
    // bias_bc rows may be slices of a wider buffer (every resnet's time_emb_proj at once).
    const size_t bc_stride = a.bias_bc_stride > 0 ? a.bias_bc_stride : m;
    image_bias.resize(static_cast<size_t>(p.batch) * m);  // [B, c_out]
    for (int b = 0; b < p.batch; ++b)
      for (int r = 0; r < m; ++r)
        image_bias[b * m + r] = (a.bias ? a.bias[r] : 0.0f) + a.bias_bc[b * bc_stride + r];
    out.bias = image_bias.data();
    out.bias_image_stride = m;
  } else {
    out.bias = a.bias;
  }
  out.c = a.dst;  // [B, c_out, hw]
  out.ldc = hw;
  out.image_stride = static_cast<int64_t>(m) * hw;
  out.panels_per_image = cols.panels_per_image();
  out.n_valid = hw;
  out.m = m;
  out.residual = a.residual;
  out.scale = p.out_scale;

  if (w->bf16) return conv2d_bf16(ctx, p, a, *w, cols, out);

  const Blocking blk;
  static_assert(Blocking{}.nq <= ConvPanels::kMaxPanels, "ConvPanels packs at most kMaxPanels");
  st = ctx.reserve_scratch(gemm_scratch_floats(blk));
  if (!st.ok()) return st;

  const PackedA weights = w->packed();
  const int m_panels = weights.panels();
  const int n_panels = p.batch * cols.panels_per_image();
  const Split split = split_work(m, m_panels, n_panels, blk.nq, ctx.pool.size());
  const auto task = [&](int t, int worker) {
    const TaskRange r = task_range(split, t, m_panels, n_panels);
    gemm(ctx.tile, weights, r.p0, r.p1, cols, r.q0, r.q1, out, blk, ctx.scratch(worker));
  };
  if (!ctx.pool.parallel_for(split.m_chunks * split.n_chunks, task))
    return {CM4J_ERR_INTERNAL, "cpu: conv2d task failed"};
  return Status::Ok();
}

}  // namespace cpu
}  // namespace cm4j

// conv2d as one packed GEMM per layer: out[b] [c_out, HW] = W [c_out, c_in*k*k] x
// cols[c_in*k*k, HW], with the batch laid side by side along N so that one pass over the
// weights serves every image, and bias, time-embedding bias, residual and output scale
// applied by the tile kernel while the tile is still in registers.
#include <algorithm>
#include <vector>

#include "cm4j.h"
#include "cpu/conv_direct16.h"
#include "cpu/im2col.h"
#include "cpu/ops.h"
#include "cpu/winograd.h"
#include "cpu/work_split.h"

namespace cm4j {
namespace cpu {

namespace {

// Packs a row-major weight of m rows, row_floats floats each, one pool task per panel of
// panel_rows rows: pack(rows of the panel, their count, the panel's panel_elems elements
// of dst). Every packed layout here keeps a panel's rows together, so the panels are
// independent, and the first touch of the fresh buffer (page faults, most of the cost on
// a VM) is shared by every thread. False when a task failed.
template <typename T, typename Pack>
bool pack_panels(ThreadPool& pool, const float* w, int m, size_t row_floats, int panel_rows,
                 size_t panel_elems, T* dst, Pack pack) {
  const auto task = [&](int p, int) {
    const int r0 = p * panel_rows;
    pack(w + r0 * row_floats, std::min(panel_rows, m - r0), dst + p * panel_elems);
  };
  return pool.parallel_for((m + panel_rows - 1) / panel_rows, task);
}

// The direct form: [c_out, c_in*k*k] GEMM panels (fp32, bf16 or direct16).
Status pack_direct(CpuContext& ctx, const float* w, int c_out, int c_in, int kernel, CpuWeight* cw) {
  cw->floats = cw->bf16 ? (packed_a16_elems(cw->rows, cw->cols) + 1) / 2
                        : packed_a_floats(cw->rows, cw->cols);
  cw->data = alloc_weight(ctx.weight_memory, cw->floats);
  if (!cw->data) return out_of_memory("packed conv weight", cw->bytes());
  uint16_t* data16 = reinterpret_cast<uint16_t*>(cw->data.get());
  // torch's [c_out, c_in, k, k] is already A = [c_out, c_in*k*k] row-major.
  const size_t row_floats = static_cast<size_t>(c_in) * kernel * kernel;
  bool packed;
  if (cw->direct16)
    packed = pack_panels(ctx.pool, w, c_out, row_floats, kMR16, kMR16 * static_cast<size_t>(cw->cols),
                         data16, [&](const float* rows, int n, uint16_t* panel) {
#if defined(__x86_64__) || defined(__i386__)
                           pack_direct16_weight_avx512bf16(rows, n, c_in, kernel, panel);  // direct16 implies it
#else
                           pack_direct16_weight(rows, n, c_in, kernel, panel);
#endif
                         });
  else if (cw->bf16)
    packed = pack_panels(ctx.pool, w, c_out, row_floats, kMR16, kMR16 * static_cast<size_t>(pad_k16(cw->cols)),
                         data16, [&](const float* rows, int n, uint16_t* panel) {
                           pack_a16(rows, n, cw->cols, panel);
                         });
  else
    packed = pack_panels(ctx.pool, w, c_out, row_floats, kMR, kMR * row_floats, cw->data.get(),
                         [&](const float* rows, int n, float* panel) {
                           pack_a(rows, n, cw->cols, cw->cols, 1, panel);
                         });
  if (!packed) return {CM4J_ERR_INTERNAL, "cpu: conv weight packing failed"};
  return Status::Ok();
}

}  // namespace

Status pack_conv_weight(CpuContext& ctx, const float* w, int c_out, int c_in, int kernel,
                        const ConvParams* use, std::unique_ptr<Weight>* out) {
  if (w == nullptr || out == nullptr) return invalid("prepare_conv: null pointer");
  if (c_out <= 0 || c_in <= 0 || (kernel != 1 && kernel != 3))
    return invalid("prepare_conv: unsupported shape [" + std::to_string(c_out) + ", " +
                   std::to_string(c_in) + ", " + std::to_string(kernel) + "]");
  auto cw = std::make_unique<CpuWeight>();
  cw->kind = CpuWeight::Kind::kConv;
  cw->rows = c_out;
  cw->c_in = c_in;
  cw->kernel = kernel;
  cw->bf16 = ctx.bf16;
  cw->direct16 = ctx.bf16 && ctx.bf16_path != Bf16Path::kGeneric;
  cw->cols = cw->direct16 ? direct16_c_pad(c_in) * kernel * kernel : c_in * kernel * kernel;
  cw->wino_tile = cw->bf16 || kernel != 3 ? 0 : winograd_tile(ctx.conv_mode, c_out, c_in);
  if (use != nullptr && cw->wino_tile > 0 && !winograd_usable(ctx.conv_mode, cw->wino_tile, *use))
    cw->wino_tile = 0;  // e.g. the 8x8 level: too few tiles per image
  // A known call keeps one form: for imagenet64 that drops the direct copies of the
  // Winograd layers and the Winograd forms of the 8x8 ones, 2212 MB of weights -> 1760 (and
  // the pages an open would zero for them).
  if (use == nullptr || cw->wino_tile == 0) {
    Status st = pack_direct(ctx, w, c_out, c_in, kernel, cw.get());
    if (!st.ok()) return st;
  }
  if (cw->wino_tile > 0) {
    cw->wino_floats = winograd_weight_floats(cw->wino_tile, c_out, c_in);
    cw->wino = alloc_weight(ctx.weight_memory, cw->wino_floats);
    if (!cw->wino) return out_of_memory("Winograd conv weight", cw->wino_floats * sizeof(float));
    pack_winograd_weight(ctx.pool, w, cw->wino_tile, c_out, c_in, cw->wino.get());
  }
  *out = std::move(cw);
  return Status::Ok();
}

namespace {

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

}  // namespace

bool conv_fuses_norm(const CpuContext& ctx, const ConvParams& p) {
  return ctx.bf16 && ctx.bf16_path != Bf16Path::kGeneric && ctx.isa == Isa::kAvx512 &&
         direct16_usable(p);
}

namespace {

// The bf16 weights' GEMM: the same work split, over 32-row panels. On the amx and
// avx512bf16 paths the weights are in the direct16 layout and stride-1 convs skip im2col
// altogether.
Status conv2d_bf16(CpuContext& ctx, const ConvParams& p, const ConvArgs& a, const CpuWeight& w,
                   const ConvPanels& cols, const OutSpec& out) {
  const PackedA16 weights = w.packed16();
  if (w.direct16 && direct16_usable(p)) return conv2d_direct16(ctx, p, a, weights, out);
  const ConvertedPanels converted(cols, ctx.convert16);
  const PermutedConvPanels permuted(cols, w.c_in, w.kernel, ctx.convert16);
  const Panel16Source& source = w.direct16 ? static_cast<const Panel16Source&>(permuted)
                                           : static_cast<const Panel16Source&>(converted);
  const Blocking16 blk;
  static_assert(Blocking16{}.nq <= ConvPanels::kMaxPanels, "ConvPanels packs at most kMaxPanels");
  Status st = ctx.reserve_scratch(gemm16_scratch_floats(blk));
  if (!st.ok()) return st;
  const int m_panels = weights.panels();
  const int n_panels = p.batch * cols.panels_per_image();
  const Split split = split_work(out.m, m_panels, n_panels, blk.nq, ctx.pool.size());
  const auto task = [&](int t, int worker) {
    const TaskRange r = task_range(split, t, m_panels, n_panels);
    gemm16(ctx.tile16, weights, r.p0, r.p1, source, r.q0, r.q1, out, blk, ctx.scratch(worker));
  };
  if (!ctx.pool.parallel_for(split.tasks(), task))
    return {CM4J_ERR_INTERNAL, "cpu: conv2d task failed"};
  return Status::Ok();
}

}  // namespace

Status conv2d(CpuContext& ctx, const ConvParams& p, const ConvArgs& a) {
  const CpuWeight* w = nullptr;
  Status st = check(p, a, &w);
  if (!st.ok()) return st;
  if (a.norm != nullptr && !(w->direct16 && conv_fuses_norm(ctx, p)))
    return invalid("conv2d: a fused group norm needs the direct16 conv (conv_fuses_norm)");

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
  if (w->wino_tile > 0 && winograd_usable(ctx.conv_mode, w->wino_tile, p))
    return conv2d_winograd(ctx, p, a, *w, out);
  if (!w->data)  // prepared for one Winograd call (prepare_conv_for): not this geometry
    return invalid("conv2d: weight holds only its Winograd F(" + std::to_string(w->wino_tile) + "x" +
                   std::to_string(w->wino_tile) + ") form, which this call (" + std::to_string(p.h_out()) +
                   "x" + std::to_string(p.w_out()) + " output, stride " + std::to_string(p.stride) +
                   ") cannot run");

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
  if (!ctx.pool.parallel_for(split.tasks(), task))
    return {CM4J_ERR_INTERNAL, "cpu: conv2d task failed"};
  return Status::Ok();
}

}  // namespace cpu
}  // namespace cm4j

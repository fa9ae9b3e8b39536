// Softmax attention per (image, head) as two packed GEMMs over blocks of query columns:
//   S^T [HW_k, nb] = K^T [HW_k, d] x Q [d, nb] * scale   (keys down, queries across)
//   P^T = softmax of each column of S^T                  (all keys of a query in one block)
//   O [d, nb] = V [d, HW_k] x P^T [HW_k, nb], then column i scaled by 1 / sum_i.
// Working on S transposed keeps every operand in the channels-first layout it arrives in:
// Q and P^T are read row by row as GEMM B panels, and O lands directly at the head's
// channels of out. A query block of kBlock columns keeps S^T (HW x kBlock) in L2. In bf16
// mode Q and P are rounded straight into gemm16's B panels (attention_bf16.h).
#include <algorithm>
#include <vector>

#include "cm4j.h"
#include "cpu/ops.h"

namespace cm4j {
namespace cpu {

namespace {

constexpr int kBlock = 4 * kNR;  // query columns per task

// Per-worker scratch, carved from the context's scratch buffer.
struct Layout {
  size_t kt, v, s, max, inv, q16, p16, gemm, total;  // offsets in floats (64-byte aligned)
  Layout(int hw, int d, const Blocking& blk, bool bf16) {
    size_t at = 0;
    const auto take = [&at](size_t floats) {
      const size_t start = at;
      at += (floats + 15) / 16 * 16;
      return start;
    };
    // K^T packed: M = keys, K = d; V packed: M = d, K = keys (bf16: two per float).
    kt = take(bf16 ? (packed_a16_elems(hw, d) + 1) / 2 : packed_a_floats(hw, d));
    v = take(bf16 ? (packed_a16_elems(d, hw) + 1) / 2 : packed_a_floats(d, hw));
    s = take(static_cast<size_t>(hw) * kBlock);
    max = take(kBlock);
    inv = take(kBlock);
    // bf16: the query block and the probabilities as whole gemm16 B panels.
    q16 = take(bf16 ? static_cast<size_t>(pad_k16(d)) * kBlock / 2 : 0);
    p16 = take(bf16 ? static_cast<size_t>(pad_k16(hw)) * kBlock / 2 : 0);
    // gemm16 stages nothing here: both of its B operands are the packed q16 and p16.
    gemm = take(bf16 ? 0 : gemm_scratch_floats(blk));
    total = at;
  }
};

}  // namespace

Status attention(CpuContext& ctx, const AttentionParams& p, const AttentionArgs& a) {
  if (a.qkv == nullptr || a.out == nullptr) return invalid("attention: null qkv or out");
  if (p.batch <= 0 || p.hw <= 0 || p.heads <= 0 || p.dim_head <= 0 ||
      p.heads * p.dim_head != p.channels)
    return invalid("attention: heads * dim_head != channels");
  const int hw = p.hw;
  const int d = p.dim_head;
  const Blocking blk;
  // bf16 mode: both products with bf16 operands (K, Q, V and the unnormalized
  // probabilities rounded to bf16), fp32 accumulation; the softmax itself stays fp32.
  const bool bf16 = ctx.bf16;
  const Blocking16 blk16;
  const Layout lay(hw, d, blk, bf16);
  Status st = ctx.reserve_scratch(lay.total);
  if (!st.ok()) return st;

  const int blocks = (hw + kBlock - 1) / kBlock;
  const int tasks = p.batch * p.heads * blocks;
  // Tasks of one head are consecutive, so a worker usually reuses the K^T and V it packed.
  std::vector<int> packed_head(ctx.pool.size(), -1);

  const auto task = [&](int t, int worker) {
    const int head_index = t / blocks;  // b * heads + h
    const int b = head_index / p.heads;
    const int h = head_index % p.heads;
    const int i0 = (t % blocks) * kBlock;
    const int nb = std::min(kBlock, hw - i0);
    const size_t plane = hw;
    const float* q = a.qkv + (static_cast<size_t>(b) * 3 * p.channels + h * d) * plane;  // [d, hw]
    const float* k = q + static_cast<size_t>(p.channels) * plane;
    const float* v = k + static_cast<size_t>(p.channels) * plane;
    float* o = a.out + (static_cast<size_t>(b) * p.channels + h * d) * plane;  // [d, hw]

    float* scratch = ctx.scratch(worker);
    float* kt = scratch + lay.kt;
    float* vp = scratch + lay.v;
    float* s = scratch + lay.s;  // [hw, kBlock]
    uint16_t* kt16 = reinterpret_cast<uint16_t*>(kt);
    uint16_t* vp16 = reinterpret_cast<uint16_t*>(vp);
    if (packed_head[worker] != head_index) {
      if (bf16) {
        ctx.attn16.pack_a(k, hw, d, 1, hw, kt16);
        ctx.attn16.pack_a(v, d, hw, hw, 1, vp16);
      } else {
        pack_a(k, hw, d, 1, hw, kt);  // A[j, c] = k[c, j]
        pack_a(v, d, hw, hw, 1, vp);  // A[c, j] = v[c, j]
      }
      packed_head[worker] = head_index;
    }
    const int panels = (nb + kNR - 1) / kNR;

    OutSpec scores;  // S^T = K^T Q * scale
    scores.c = s;
    scores.ldc = kBlock;
    scores.panels_per_image = panels;
    scores.n_valid = nb;
    scores.m = hw;
    scores.scale = p.scale;
    uint16_t* q16 = reinterpret_cast<uint16_t*>(scratch + lay.q16);
    uint16_t* p16 = reinterpret_cast<uint16_t*>(scratch + lay.p16);
    if (bf16) {
      const PackedA16 kt_a{kt16, hw, d};
      ctx.attn16.pack_b(q + i0, d, nb, hw, q16);
      gemm16(ctx.tile16, kt_a, 0, kt_a.panels(), PackedPanels16(q16, d), 0, panels, scores, blk16,
             scratch + lay.gemm);
    } else {
      const PackedA kt_a{kt, hw, d};
      gemm(ctx.tile, kt_a, 0, kt_a.panels(), MatrixPanels(q + i0, hw, nb), 0, panels, scores, blk,
           scratch + lay.gemm);
    }

    float* inv = scratch + lay.inv;
    if (bf16 && ctx.attn16.softmax) {
      ctx.attn16.softmax(s, hw, nb, kBlock, scratch + lay.max, inv, p16);
    } else {
      ctx.vec->softmax_columns(s, hw, nb, kBlock, scratch + lay.max, inv);
      if (bf16) ctx.attn16.pack_b(s, hw, nb, kBlock, p16);
    }

    OutSpec values;  // O = V P^T
    values.c = o + i0;
    values.ldc = hw;
    values.panels_per_image = panels;
    values.n_valid = nb;
    values.m = d;
    if (bf16) {
      const PackedA16 v_a{vp16, d, hw};
      gemm16(ctx.tile16, v_a, 0, v_a.panels(), PackedPanels16(p16, hw), 0, panels, values, blk16,
             scratch + lay.gemm);
    } else {
      const PackedA v_a{vp, d, hw};
      gemm(ctx.tile, v_a, 0, v_a.panels(), MatrixPanels(s, kBlock, nb), 0, panels, values, blk,
           scratch + lay.gemm);
    }
    for (int c = 0; c < d; ++c) {
      float* row = o + static_cast<size_t>(c) * plane + i0;
      for (int i = 0; i < nb; ++i) row[i] *= inv[i];
    }
  };
  if (!ctx.pool.parallel_for(tasks, task)) return {CM4J_ERR_INTERNAL, "cpu: attention task failed"};
  return Status::Ok();
}

}  // namespace cpu
}  // namespace cm4j

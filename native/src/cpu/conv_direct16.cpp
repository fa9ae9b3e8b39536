#include "cpu/conv_direct16.h"

#include <algorithm>
#include <cstring>

#include "cm4j.h"
#include "cpu/work_split.h"

namespace cm4j {
namespace cpu {

void pack_direct16_weight(const float* w, int c_out, int c_in, int kernel, uint16_t* dst) {
  const int taps = kernel * kernel;
  const int blocks = direct16_c_pad(c_in) / kKB16;
  const int panels = (c_out + kMR16 - 1) / kMR16;
  for (int p = 0; p < panels; ++p)
    for (int cb = 0; cb < blocks; ++cb)
      for (int tap = 0; tap < taps; ++tap) {
        uint16_t* blk = dst + ((static_cast<size_t>(p) * blocks + cb) * taps + tap) * kMR16 * kKB16;
        for (int r = 0; r < kMR16; ++r)
          for (int cc = 0; cc < kKB16; ++cc) {
            const int row = p * kMR16 + r, c = cb * kKB16 + cc;
            blk[r * kKB16 + cc] =
                row < c_out && c < c_in
                    ? float_to_bf16(w[(static_cast<size_t>(row) * c_in + c) * taps + tap])
                    : 0;
          }
      }
}

Direct16Geometry::Direct16Geometry(const ConvParams& p)
    : c_in(p.c_in1 + p.c_in2),
      c_pad(direct16_c_pad(c_in)),
      taps(p.kernel * p.kernel),
      h_in(p.h_in),
      w_in(p.w_in),
      upsample(p.upsample),
      pad(p.pad),
      hp((p.upsample ? 2 * p.h_in : p.h_in) + 2 * p.pad),
      wp((p.upsample ? 2 * p.w_in : p.w_in) + 2 * p.pad),
      h_out(p.h_out()),
      w_out(p.w_out()),
      row_halves(p.w_out() % 16 == 0) {
  // Row halves waste nothing; otherwise halves run along the flattened grid and compute
  // the pad columns too (20% extra at 8x8, where the layers are small).
  halves = row_halves ? h_out * (w_out / 16) : ((h_out - 1) * wp + w_out + 15) / 16;
  tiles = (halves + 1) / 2;
  if (row_halves) {
    // Every read of a row half stays inside its grid row: no slack.
    pair_step = wp;
    row_step = static_cast<int64_t>(16) * wp;
    block_step = row_step * hp;
  } else {
    // The last half reads 16 positions past its start at the largest tap offset; a valid
    // output never reads past hp * wp, the slack only feeds columns that are dropped.
    const int reach = 16 * (halves - 1) + 16 + (p.kernel - 1) * (wp + 1);
    pair_step = (std::max(hp * wp, reach) + 15) / 16 * 16;
    row_step = wp;
    block_step = 16 * pair_step;
  }
  for (int ky = 0; ky < p.kernel; ++ky)
    for (int kx = 0; kx < p.kernel; ++kx)
      tap_offset[ky * p.kernel + kx] = static_cast<int>(ky * row_step + kx);
}

void PermutedConvPanels::pack16(int k0, int rows, int kc, int q, uint16_t* dst,
                                float* staging) const {
  for (int i = 0; i < rows; ++i) {
    const int k = k0 + i;
    const int block = k / kKB16;
    const int c = block / taps_ * kKB16 + k % kKB16;
    float* row = staging + static_cast<size_t>(i) * kNR;
    if (c < c_in_)
      src_.pack(c * taps_ + block % taps_, 1, q, 1, row);  // torch's row (c, ky, kx)
    else
      std::fill(row, row + kNR, 0.0f);
  }
  convert_(staging, rows, kc, dst);
}

#if defined(__x86_64__) || defined(__i386__)

namespace {

// About four tasks per thread, handed out dynamically: a thread whose core runs slow (a
// busy neighbour on a shared host) passes work to the others instead of holding every
// thread up at the end. Cut along M when the weights outweigh the packed input, so each
// task streams only its panels' weights, else along N.
Split direct16_split(int m_panels, int n_tiles, size_t weight_bytes, size_t input_bytes,
                     int threads) {
  Split s;
  if (threads <= 1) return s;
  const int want = 4 * threads;
  if (weight_bytes > input_bytes) {
    s.m_chunks = std::min(m_panels, want);
    s.n_chunks = std::min(n_tiles, (want + s.m_chunks - 1) / s.m_chunks);
  } else {
    s.n_chunks = std::min(n_tiles, want);
    s.m_chunks = std::min(m_panels, (want + s.n_chunks - 1) / s.n_chunks);
  }
  return s;
}

}  // namespace

Status conv2d_direct16(CpuContext& ctx, const ConvParams& p, const ConvArgs& a,
                       const PackedA16& weights, const OutSpec& out) {
  const Direct16Geometry g(p);
  if (weights.k != g.c_pad * g.taps) return invalid("conv2d: weight is not in the direct16 layout");
  // The packed input: 4 bytes per position and channel pair, i.e. one float.
  Status st = ctx.reserve_packed_input(static_cast<size_t>(p.batch) * g.image_elems() / 2);
  if (!st.ok()) return st;
  uint16_t* x = reinterpret_cast<uint16_t*>(ctx.packed_input());
  const int pairs = g.c_pad / 2;
  const int jobs = p.batch * pairs;
  const int pack_tasks = std::min(jobs, ctx.pool.size() * 8);
  const bool packed = ctx.pool.parallel_for(pack_tasks, [&](int t, int) {
    const int end = static_cast<int>(static_cast<int64_t>(jobs) * (t + 1) / pack_tasks);
    for (int j = static_cast<int>(static_cast<int64_t>(jobs) * t / pack_tasks); j < end; ++j)
      pack_direct16_pair(g, p, a, j / pairs, j % pairs,
                         x + static_cast<size_t>(j / pairs) * g.image_elems());
  });
  if (!packed) return {CM4J_ERR_INTERNAL, "cpu: conv2d input packing failed"};

  const int m_panels = weights.panels();
  const int n_tiles = p.batch * g.tiles;
  const size_t weight_bytes = static_cast<size_t>(weights.k) * m_panels * kMR16 * sizeof(uint16_t);
  const Split split = direct16_split(m_panels, n_tiles, weight_bytes,
                                     p.batch * g.image_elems() * sizeof(uint16_t), ctx.pool.size());
  // Panels per pass over a task's tiles: their weights (about 1 MiB) stay in L2 while
  // every tile uses them.
  const size_t panel_bytes = static_cast<size_t>(weights.k) * kMR16 * sizeof(uint16_t);
  const int block = std::max<int>(1, static_cast<int>((size_t{1} << 20) / panel_bytes));
  const auto tile =
      ctx.bf16_path == Bf16Path::kAmx ? direct16_tile_amx : direct16_tile_avx512bf16;
  const auto task = [&](int t, int) {
    const TaskRange r = task_range(split, t, m_panels, n_tiles);
    alignas(64) float acc[kMR16 * kNR];
    for (int pb = r.p0; pb < r.p1; pb += block) {
      const int pe = std::min(pb + block, r.p1);
      for (int q = r.q0; q < r.q1; ++q) {
        const int image = q / g.tiles;
        const int h0 = q % g.tiles * 2;
        const bool second = h0 + 1 < g.halves;  // else the second half repeats the first
        const int h1 = second ? h0 + 1 : h0;
        const uint16_t* xi = x + image * g.image_elems();
        for (int pp = pb; pp < pe; ++pp) {
          const int row0 = pp * kMR16;
          const int rows = std::min(kMR16, out.m - row0);
          tile(g, weights.panel(pp), xi, g.half_offset(h0), g.half_offset(h1), acc);
          // Halves that are one run of the grid are stored together: each row of C gets
          // up to 32 values in one pass over the rows instead of two.
          const int start = g.half_start(h0);
          if (second && g.half_start(h1) == start + 16) {
            direct16_store(g, out, image, row0, rows, acc, 0, 32, start);
          } else {
            direct16_store(g, out, image, row0, rows, acc, 0, 16, start);
            if (second) direct16_store(g, out, image, row0, rows, acc, 16, 16, g.half_start(h1));
          }
        }
      }
    }
  };
  if (!ctx.pool.parallel_for(split.tasks(), task))
    return {CM4J_ERR_INTERNAL, "cpu: conv2d task failed"};
  return Status::Ok();
}

#else

Status conv2d_direct16(CpuContext&, const ConvParams&, const ConvArgs&, const PackedA16&,
                       const OutSpec&) {
  return {CM4J_ERR_INTERNAL, "cpu: the direct16 conv needs x86 with AVX-512-BF16"};
}

#endif  // x86

}  // namespace cpu
}  // namespace cm4j

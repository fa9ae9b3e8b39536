#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "cpu/bf16_x86.h"
#include "cpu/im2col_bf16.h"

namespace cm4j {
namespace cpu {

namespace {

struct Run {
  int oy, ox, len, offset;
};

}  // namespace

__attribute__((target("avx512f,avx512bw,avx512bf16"))) void conv_gather16_avx512bf16(
    const ConvGeometry16& g, int k0, int rows, int kc, int q, uint16_t* dst) {
  const int image = q / g.panels_per_image;
  const int n0 = (q % g.panels_per_image) * kNR;
  const int valid = std::max(0, std::min(kNR, g.hw_out - n0));
  Run runs[kNR];
  int count = 0;
  for (int n = n0; n < n0 + valid;) {
    const int oy = n / g.w_out;
    const int ox = n % g.w_out;
    const int len = std::min(g.w_out - ox, n0 + valid - n);
    runs[count++] = {oy, ox, len, n - n0};
    n += len;
  }
  const int64_t plane_size = static_cast<int64_t>(g.h_in) * g.w_in;
  const int kk2 = g.kernel * g.kernel;

  // Row k = (c, ky, kx), decoded once here and then advanced row by row.
  int c = k0 / kk2;
  int ky = k0 % kk2 / g.kernel;
  int kx = k0 % g.kernel;
  const auto plane_of = [&](int ch) {
    return ch < g.c1 ? g.src1 + (static_cast<int64_t>(image) * g.c1 + ch) * plane_size
                     : g.src2 + (static_cast<int64_t>(image) * g.c2 + ch - g.c1) * plane_size;
  };
  const float* plane = plane_of(c);
  // One k row: the two 16-lane halves of the panel's 32 columns; then the next row.
  const auto gather = [&](__m512& v0, __m512& v1) __attribute__((target("avx512f,avx512bw,avx512bf16"))) {
    v0 = _mm512_setzero_ps();
    v1 = _mm512_setzero_ps();
    for (int r = 0; r < count; ++r) {
      const Run& run = runs[r];
      const int iy = run.oy + ky - g.pad;
      if (iy < 0 || iy >= g.h_in) continue;
      const int ix0 = run.ox + kx - g.pad;  // input column of lane run.offset
      // Lane i reads input column ix0 + i - offset; valid lanes: the run's, inside the row.
      const int lo = std::max(run.offset, run.offset - ix0);
      const int hi = std::min(run.offset + run.len, run.offset + g.w_in - ix0);
      if (hi <= lo) continue;
      const uint64_t mask = ((uint64_t{1} << hi) - 1) & ~((uint64_t{1} << lo) - 1);
      // Lane 0's address; masked-off lanes are never accessed (no fault, no read).
      const uintptr_t base = reinterpret_cast<uintptr_t>(plane + static_cast<int64_t>(iy) * g.w_in) +
                             static_cast<intptr_t>(ix0 - run.offset) * static_cast<intptr_t>(sizeof(float));
      const float* p = reinterpret_cast<const float*>(base);
      if (mask & 0xFFFF) v0 = _mm512_mask_loadu_ps(v0, static_cast<__mmask16>(mask), p);
      if (mask >> 16) v1 = _mm512_mask_loadu_ps(v1, static_cast<__mmask16>(mask >> 16), p + 16);
    }
    if (++kx == g.kernel) {
      kx = 0;
      if (++ky == g.kernel) {
        ky = 0;
        ++c;
        if (c < g.c1 + g.c2) plane = plane_of(c);
      }
    }
  };

  const __m512 zero = _mm512_setzero_ps();
  for (int kk = 0; kk < kc; kk += 2) {
    __m512 a0 = zero, a1 = zero, b0 = zero, b1 = zero;
    if (kk < rows) gather(a0, a1);
    if (kk + 1 < rows) gather(b0, b1);
    uint16_t* out = dst + static_cast<size_t>(kk / kKB16) * kKB16 * kNR + ((kk % kKB16) / 2) * 32;
    _mm512_store_si512(out, pair16(a0, b0));
    _mm512_store_si512(out + 512, pair16(a1, b1));
  }
}

}  // namespace cpu
}  // namespace cm4j

#endif  // x86

// The Winograd input and output stages compiled for AVX-512 (target attribute; isa.cpp
// decides at run time whether they are called). The transforms are winograd_transforms.h's,
// where a 16-tile vector is one zmm register. Around them the tiles move a row at a time:
// each run of the 16 lanes' tiles that lies in one tile row reads its input rows with
// masked loads (the mask is the zero padding), permutes spread them into the 16 lanes, and
// the output rows go back the same way, permuted side by side and stored with the epilogue.
// x86 only: elsewhere winograd_kernels() never asks for them and nothing here is built.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "cpu/winograd.h"
#include "cpu/winograd_transforms.h"

namespace cm4j {
namespace cpu {

namespace {

#define CM4J_AVX512 __attribute__((target("avx512f")))
#define CM4J_AVX512_INLINE __attribute__((target("avx512f"), always_inline)) inline

// Lanes [l0, l0 + len) are tiles of one tile row of one image: along each row their
// pixels (input or output) are consecutive floats. The input tiles of lane l start at
// virtual (upsampled) column x0 + M * (l - l0) of rows y0.., its output tile at
// (y0 + 1, x0 + 1).
struct Run {
  int l0, len;
  int64_t image;
  int y0, x0;
};

// The runs of the 16 tiles n0.. (those before `end`); returns how many.
template <int M>
CM4J_AVX512_INLINE int tile_runs(const Tiling& g, int64_t n0, int64_t end, Run* runs) {
  int n_runs = 0;
  for (int l = 0; l < kWinoLanes && n0 + l < end;) {
    const int64_t n = n0 + l;
    const int r = static_cast<int>(n % g.per_image);
    const int tx = r % g.tiles_x;
    Run& run = runs[n_runs++];
    run.l0 = l;
    run.len = static_cast<int>(std::min<int64_t>({kWinoLanes - l, g.tiles_x - tx, end - n}));
    run.image = n / g.per_image;
    run.y0 = r / g.tiles_x * M - 1;
    run.x0 = tx * M - 1;
    l += run.len;
  }
  return n_runs;
}

// Lanes [first, last) of a 16-float mask.
CM4J_AVX512_INLINE __mmask16 lane_mask(int first, int last) {
  if (last <= first) return 0;
  return static_cast<__mmask16>(((1u << last) - 1) & ~((1u << first) - 1));
}

// How a run's input rows are read: floats x0 .. x0 + n - 1 of each virtual row, n = M * len
// + 2 (lane l's t columns start at M * (l - l0)), as nq vectors of 16. Vector q loads the
// source row's floats from[q].. under `inside` (the lanes inside the image; masked lanes
// are never read); upsampled, those are spread over 16 columns (each twice, `odd`: whether
// the first column is the second copy) and columns past n zeroed (`keep`).
struct RunLoads {
  int nq;
  int from[5];
  bool odd[5];
  __mmask16 inside[5], keep[5];
};

CM4J_AVX512_INLINE void run_loads(const ConvParams& p, int x0, int n, RunLoads* rl) {
  rl->nq = (n + 15) / 16;
  for (int q = 0; q < rl->nq; ++q) {
    const int x = x0 + 16 * q, cols = std::min(16, n - 16 * q);
    rl->keep[q] = lane_mask(0, cols);
    if (!p.upsample) {
      rl->from[q] = x;
      rl->odd[q] = false;
      rl->inside[q] = lane_mask(std::max(0, -x), std::min(cols, p.w_in - x));
    } else {
      const int from = x >> 1;  // floor, also below zero
      rl->from[q] = from;
      rl->odd[q] = (x & 1) != 0;
      const int count = ((cols - 1 + (x & 1)) >> 1) + 1;
      rl->inside[q] = lane_mask(std::max(0, -from), std::min(count, p.w_in - from));
    }
  }
}

template <int M, int T>
CM4J_AVX512_INLINE void input_avx512(const float (&bt)[T][T], const Tiling& g,
                                     const ConvParams& p, const ConvArgs& a, int c0, int c1,
                                     int64_t n0, int64_t end, float* v, int64_t v_stride) {
  Run runs[kWinoLanes];
  RunLoads loads[kWinoLanes];
  const int n_runs = tile_runs<M>(g, n0, end, runs);
  __mmask16 run_ends = 0;
  for (int k = 0; k < n_runs; ++k) {
    run_loads(p, runs[k].x0, M * runs[k].len + 2, &loads[k]);
    run_ends |= static_cast<__mmask16>(1u << (runs[k].l0 + runs[k].len - 1));
  }
  const int64_t plane = static_cast<int64_t>(p.h_in) * p.w_in;
  const int h_virt = p.upsample ? 2 * p.h_in : p.h_in;
  const __m512i spread[2] = {
      _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0),
      _mm512_set_epi32(8, 7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0)};
  const __m512i step = _mm512_set_epi32(15 * M, 14 * M, 13 * M, 12 * M, 11 * M, 10 * M, 9 * M,
                                        8 * M, 7 * M, 6 * M, 5 * M, 4 * M, 3 * M, 2 * M, M, 0);
  // One input row of the 16 lanes' tiles side by side: lane l's t columns at buf[M * l..]
  // (a run's last lane's last two columns are overwritten by the next run's first ones and
  // kept in `next` instead). Lanes past the tiles stay zero.
  alignas(64) float buf[kWinoLanes * M + 16] = {};
  alignas(64) float d[T * T * kWinoLanes];
  for (int c = c0; c < c1; ++c) {
    for (int i = 0; i < T; ++i) {
      __m512 next[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
      for (int k = 0; k < n_runs; ++k) {
        const Run& run = runs[k];
        const RunLoads& rl = loads[k];
        float* at = buf + run.l0 * M;
        const int y = run.y0 + i;
        if (y < 0 || y >= h_virt) {
          for (int q = 0; q < rl.nq; ++q) _mm512_storeu_ps(at + 16 * q, _mm512_setzero_ps());
          continue;
        }
        const float* row = (c < p.c_in1 ? a.src1 + (run.image * p.c_in1 + c) * plane
                                        : a.src2 + (run.image * p.c_in2 + c - p.c_in1) * plane) +
                           static_cast<int64_t>(p.upsample ? y >> 1 : y) * p.w_in;
        const int last = run.l0 + run.len - 1, tail = M * run.len;  // tail: last lane's column M
        for (int q = 0; q < rl.nq; ++q) {
          __m512 r = _mm512_maskz_loadu_ps(rl.inside[q], row + rl.from[q]);
          // The same floats of the next channel: rows of successive planes are too far
          // apart for the hardware prefetcher (the read waits on memory otherwise).
          _mm_prefetch(reinterpret_cast<const char*>(row + rl.from[q] + plane), _MM_HINT_T0);
          if (p.upsample) r = _mm512_maskz_permutexvar_ps(rl.keep[q], spread[rl.odd[q]], r);
          _mm512_storeu_ps(at + 16 * q, r);
          if (q == tail / 16)
            for (int j = 0; j < 2; ++j)
              next[j] = _mm512_mask_permutexvar_ps(next[j], static_cast<__mmask16>(1u << last),
                                                   _mm512_set1_epi32(tail % 16 + j), r);
        }
      }
      // Columns j < M: buf[M * l + j] into lane l; columns M, M + 1: the next lane's
      // columns 0 and 1, or at a run's end its own from `next`.
      float* out = d + i * T * kWinoLanes;
      __m512 col[2];
      for (int j = 0; j < M; ++j) {
        const __m512i idx = _mm512_add_epi32(step, _mm512_set1_epi32(j));
        __m512 cj;
        if (M == 2) {
          cj = _mm512_permutex2var_ps(_mm512_load_ps(buf), idx, _mm512_load_ps(buf + 16));
        } else {  // lanes 0-7 from the first 32 floats, 8-15 from the next 32 (maskz forms:
                  // GCC 12 warns of its own undefined source operand in the plain one)
          cj = _mm512_maskz_shuffle_f32x4(
              0xFFFF, _mm512_permutex2var_ps(_mm512_load_ps(buf), idx, _mm512_load_ps(buf + 16)),
              _mm512_permutex2var_ps(_mm512_load_ps(buf + 32), idx, _mm512_load_ps(buf + 48)),
              0x44);
        }
        _mm512_store_ps(out + j * kWinoLanes, cj);
        if (j < 2) col[j] = cj;
      }
      for (int j = 0; j < 2; ++j) {
        const __m512 shifted = _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(
            0xFFFF, _mm512_setzero_si512(), _mm512_castps_si512(col[j]), 1));
        _mm512_store_ps(out + (M + j) * kWinoLanes,
                        _mm512_mask_blend_ps(run_ends, shifted, next[j]));
      }
    }
    wino::input_tile(bt, d, v + static_cast<int64_t>(c - c0) * kNR, v_stride);
  }
}

// Row i of M tiles' outputs, y[i*M + j] (16 lanes each), laid out lane by lane: lane l's M
// pixels at row[l*M .. l*M + M).
template <int M>
CM4J_AVX512_INLINE void interleave(const float* y, float* row) {
  const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
  const __m512 y0 = _mm512_load_ps(y), y1 = _mm512_load_ps(y + kWinoLanes);
  if (M == 2) {
    _mm512_store_ps(row, _mm512_permutex2var_ps(y0, lo, y1));
    _mm512_store_ps(row + 16, _mm512_permutex2var_ps(y0, hi, y1));
    return;
  }
  const __m512 y2 = _mm512_load_ps(y + 2 * kWinoLanes), y3 = _mm512_load_ps(y + 3 * kWinoLanes);
  // Pairs (y0, y1) and (y2, y3) of each lane as 64-bit elements, then the pairs merged.
  const __m512d p_lo = _mm512_castps_pd(_mm512_permutex2var_ps(y0, lo, y1));
  const __m512d p_hi = _mm512_castps_pd(_mm512_permutex2var_ps(y0, hi, y1));
  const __m512d q_lo = _mm512_castps_pd(_mm512_permutex2var_ps(y2, lo, y3));
  const __m512d q_hi = _mm512_castps_pd(_mm512_permutex2var_ps(y2, hi, y3));
  const __m512i first = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
  const __m512i second = _mm512_add_epi64(first, _mm512_set1_epi64(4));
  _mm512_store_pd(row, _mm512_permutex2var_pd(p_lo, first, q_lo));
  _mm512_store_pd(row + 16, _mm512_permutex2var_pd(p_lo, second, q_lo));
  _mm512_store_pd(row + 32, _mm512_permutex2var_pd(p_hi, first, q_hi));
  _mm512_store_pd(row + 48, _mm512_permutex2var_pd(p_hi, second, q_hi));
}

template <int M, int T>
CM4J_AVX512_INLINE void output_avx512(const float (&at)[M][T], const Tiling& g,
                                      const OutSpec& out, int c0, int c1, int64_t n0,
                                      int64_t end, const float* mv, int64_t m_ldc,
                                      int64_t m_stride) {
  Run runs[kWinoLanes];
  const int n_runs = tile_runs<M>(g, n0, end, runs);
  const __m512 scale = _mm512_set1_ps(out.scale);
  alignas(64) float y[M * M * kWinoLanes];
  alignas(64) float row[M * kWinoLanes];
  for (int co = c0; co < c1; ++co) {
    // The next channel's t*t GEMM results, one cache line each, m_stride apart.
    for (int xi = 0; xi < T * T && co + 1 < c1; ++xi)
      _mm_prefetch(reinterpret_cast<const char*>(mv + (co + 1 - c0) * m_ldc + xi * m_stride),
                   _MM_HINT_T0);
    wino::output_tile(at, mv + (co - c0) * m_ldc, m_stride, y);
    for (int i = 0; i < M; ++i) {
      interleave<M>(y + i * M * kWinoLanes, row);
      for (int k = 0; k < n_runs; ++k) {
        const Run& run = runs[k];
        const int oy = run.y0 + 1 + i, ox = run.x0 + 1;
        if (oy >= g.h_out) continue;
        const int cols = std::min(M * run.len, g.w_out - ox);
        const __m512 bias =
            _mm512_set1_ps(out.bias ? out.bias[run.image * out.bias_image_stride + co] : 0.0f);
        const int64_t at_c = run.image * out.image_stride + static_cast<int64_t>(co) * out.ldc +
                             static_cast<int64_t>(oy) * g.w_out + ox;
        const float* src = row + run.l0 * M;
        for (int x = 0; x < cols; x += 16) {
          const __mmask16 mask = lane_mask(0, std::min(16, cols - x));
          __m512 val = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, src + x), bias);
          if (out.residual)
            val = _mm512_add_ps(val, _mm512_maskz_loadu_ps(mask, out.residual + at_c + x));
          _mm512_mask_storeu_ps(out.c + at_c + x, mask, _mm512_mul_ps(val, scale));
        }
      }
    }
  }
}

CM4J_AVX512 void input2_avx512(const Tiling& g, const ConvParams& p, const ConvArgs& a, int c0,
                               int c1, int64_t n0, int64_t end, float* v, int64_t v_stride) {
  input_avx512<2>(wino::kBT2, g, p, a, c0, c1, n0, end, v, v_stride);
}
CM4J_AVX512 void input4_avx512(const Tiling& g, const ConvParams& p, const ConvArgs& a, int c0,
                               int c1, int64_t n0, int64_t end, float* v, int64_t v_stride) {
  input_avx512<4>(wino::kBT4, g, p, a, c0, c1, n0, end, v, v_stride);
}
CM4J_AVX512 void output2_avx512(const Tiling& g, const OutSpec& out, int c0, int c1, int64_t n0,
                                int64_t end, const float* mv, int64_t m_ldc, int64_t m_stride) {
  output_avx512(wino::kAT2, g, out, c0, c1, n0, end, mv, m_ldc, m_stride);
}
CM4J_AVX512 void output4_avx512(const Tiling& g, const OutSpec& out, int c0, int c1, int64_t n0,
                                int64_t end, const float* mv, int64_t m_ldc, int64_t m_stride) {
  output_avx512(wino::kAT4, g, out, c0, c1, n0, end, mv, m_ldc, m_stride);
}

}  // namespace

const WinogradKernels& winograd_kernels_avx512() {
  static const WinogradKernels kernels = {input2_avx512, input4_avx512, output2_avx512,
                                          output4_avx512};
  return kernels;
}

}  // namespace cpu
}  // namespace cm4j

#endif  // x86

// Index arithmetic shared by the CUDA kernels, written once as __host__ __device__ helpers
// so that native/tests/test_cuda_indexing.cpp can check it on the CPU (no GPU needed).
// Every layout is row-major NCHW (channels-last NHWC in the last section); offsets are
// int64 because batch-64 activations of the real model come within a factor of 16 of 2^31
// elements.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define CM4J_HD __host__ __device__ __forceinline__
#else
#define CM4J_HD inline
#endif

namespace cm4j {
namespace kidx {

CM4J_HD int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Offset of element (b, c, y, x) of a [B, C, H, W] tensor.
CM4J_HD int64_t nchw(int b, int c, int y, int x, int channels, int h, int w) {
  return ((static_cast<int64_t>(b) * channels + c) * h + y) * w + x;
}

// ---- convolution as an implicit GEMM --------------------------------------------------
// out[co, n] = sum_k W[co, k] * X[k, n] with
//   n = (b * h_out + oy) * w_out + ox      (one output pixel)
//   k = (ci * kernel + ky) * kernel + kx   (torch's weight order [c_out, c_in, k, k])
// X[k, n] is gathered from cat(src1, src2) along channels, optionally upsampled 2x
// (nearest) before zero padding; it is never materialised.

struct Pixel {
  int b, y, x;
};

CM4J_HD Pixel pixel_of(int n, int h, int w) {
  Pixel p;
  p.x = n % w;
  int r = n / w;
  p.y = r % h;
  p.b = r / h;
  return p;
}

struct Tap {
  int c, ky, kx;
};

CM4J_HD Tap tap_of(int k, int kernel) {
  Tap t;
  t.kx = k % kernel;
  int r = k / kernel;
  t.ky = r % kernel;
  t.c = r / kernel;
  return t;
}

// Output size of one spatial dimension; `upsample` doubles the input first.
CM4J_HD int conv_out_size(int in, int kernel, int stride, int pad, bool upsample) {
  return ((upsample ? 2 * in : in) + 2 * pad - kernel) / stride + 1;
}

// Source coordinate of output coordinate `o` and kernel offset `kk` along one dimension.
// Returns false when the tap falls into the zero padding.
CM4J_HD bool conv_src_coord(int o, int kk, int stride, int pad, bool upsample, int in,
                            int* src) {
  int v = o * stride - pad + kk;  // coordinate in the (upsampled) padded-free input
  int extent = upsample ? 2 * in : in;
  if (v < 0 || v >= extent) return false;
  *src = upsample ? (v >> 1) : v;
  return true;
}

// Where element X[k, n] lives: which source (0: src1, 1: src2) and the offset in it, or
// -1 for zero padding.
struct ConvGeometry {
  int c_in1, c_in2, h_in, w_in, kernel, stride, pad;
  bool upsample;
  int h_out, w_out;
};

CM4J_HD int64_t conv_gather_offset(const ConvGeometry& g, Pixel p, Tap t, int* which) {
  int sy, sx;
  if (!conv_src_coord(p.y, t.ky, g.stride, g.pad, g.upsample, g.h_in, &sy)) return -1;
  if (!conv_src_coord(p.x, t.kx, g.stride, g.pad, g.upsample, g.w_in, &sx)) return -1;
  if (t.c < g.c_in1) {
    *which = 0;
    return nchw(p.b, t.c, sy, sx, g.c_in1, g.h_in, g.w_in);
  }
  *which = 1;
  return nchw(p.b, t.c - g.c_in1, sy, sx, g.c_in2, g.h_in, g.w_in);
}

// Packed conv weight: [K, c_out] (k-major) so that a tile of output channels for one k is
// contiguous. torch's [c_out, K] element (co, k) moves to packed index k * c_out + co.
CM4J_HD int64_t conv_packed_index(int k, int co, int c_out) {
  return static_cast<int64_t>(k) * c_out + co;
}
CM4J_HD int64_t conv_torch_index(int k, int co, int k_total) {
  return static_cast<int64_t>(co) * k_total + k;
}

// Per-image bias row of image b, channel c: [B, c_out] rows `stride` elements apart, so a
// row may be a slice of a wider buffer (every resnet's time_emb_proj output side by side);
// stride 0 means dense rows (c_out).
CM4J_HD int64_t bias_bc_offset(int b, int c, int c_out, int stride) {
  return static_cast<int64_t>(b) * (stride > 0 ? stride : c_out) + c;
}

// The tiled conv kernel loads a [rows, cols] tile with `threads` threads, `rows * cols /
// threads` elements each: element i of thread t is (row, col) = divmod(t + i * threads, cols).
struct TileCoord {
  int row, col;
};
CM4J_HD TileCoord tile_coord(int thread, int i, int threads, int cols) {
  int idx = thread + i * threads;
  TileCoord c;
  c.row = idx / cols;
  c.col = idx % cols;
  return c;
}

// ---- group norm -----------------------------------------------------------------------
// Group g of image b covers channels [g * cpg, (g + 1) * cpg), a contiguous run of
// cpg * hw values starting at group_base.
CM4J_HD int64_t group_base(int b, int g, int channels, int groups, int hw) {
  return (static_cast<int64_t>(b) * channels + static_cast<int64_t>(g) * (channels / groups)) *
         hw;
}
// Channel of the i-th value of group g.
CM4J_HD int group_channel(int g, int i, int channels, int groups, int hw) {
  return g * (channels / groups) + i / hw;
}

// Element (b, c, pos) of cat(x, x2) along channels, [B, channels, hw] with channels
// 0..c1 in x ([B, c1, hw]) and the rest in x2 ([B, channels - c1, hw]): which source
// (0: x, 1: x2) and the offset in it.
CM4J_HD int64_t concat_offset(int b, int c, int pos, int c1, int channels, int hw, int* which) {
  if (c < c1) {
    *which = 0;
    return (static_cast<int64_t>(b) * c1 + c) * hw + pos;
  }
  *which = 1;
  return (static_cast<int64_t>(b) * (channels - c1) + (c - c1)) * hw + pos;
}

// ---- attention ------------------------------------------------------------------------
// qkv [B, 3C, HW]: part 0 = q, 1 = k, 2 = v; head h uses channels h*dh..(h+1)*dh of each.
CM4J_HD int64_t qkv_offset(int b, int part, int head, int c, int pos, int channels,
                           int dim_head, int hw) {
  return (static_cast<int64_t>(b) * 3 * channels + part * channels + head * dim_head + c) *
             hw +
         pos;
}
// out [B, C, HW].
CM4J_HD int64_t attn_out_offset(int b, int head, int c, int pos, int channels, int dim_head,
                                int hw) {
  return (static_cast<int64_t>(b) * channels + head * dim_head + c) * hw + pos;
}

// ---- time embedding -------------------------------------------------------------------
// Column j of a sinusoidal embedding of width dim (half = dim / 2 frequencies): frequency
// index and whether it holds the sine. [sin, cos] halves, [cos, sin] when flipped; the last
// column of an odd dim (j == 2 * half) is zero padding, freq -1.
struct SinusoidColumn {
  int freq;
  bool sine;
};
CM4J_HD SinusoidColumn sinusoid_column(int j, int half, bool flip_sin_to_cos) {
  SinusoidColumn c;
  c.freq = j < 2 * half ? (j < half ? j : j - half) : -1;
  c.sine = (j < half) != flip_sin_to_cos;
  return c;
}

// ---- pooling / upsampling -------------------------------------------------------------
// Output element o of avg_pool2 over [B, C, H, W] (output [B, C, H/2, W/2], flattened):
// offset of the top-left input of its 2x2 window.
CM4J_HD int64_t pool_src_offset(int64_t o, int h, int w) {
  int ho = h / 2, wo = w / 2;
  int64_t ox = o % wo;
  int64_t r = o / wo;
  int64_t oy = r % ho;
  int64_t bc = r / ho;
  return (bc * h + 2 * oy) * w + 2 * ox;
}
// Output element o of upsample_nearest2 over [B, C, H, W] (output [B, C, 2H, 2W]):
// offset of its source.
CM4J_HD int64_t upsample_src_offset(int64_t o, int h, int w) {
  int64_t X = o % (2 * w);
  int64_t r = o / (2 * w);
  int64_t Y = r % (2 * h);
  int64_t bc = r / (2 * h);
  return (bc * h + Y / 2) * w + X / 2;
}

// ---- channels-last (NHWC) storage: the fp16/bf16 activation mode -------------------------
// An activation [B, C, H, W] stored as [B, H, W, C]: pixel n = (b * h + y) * w + x holds
// its C channels contiguously at n * C.
CM4J_HD int64_t nhwc(int b, int y, int x, int c, int h, int w, int channels) {
  return ((static_cast<int64_t>(b) * h + y) * w + x) * channels + c;
}

// Channel c of flattened pixel n (= (b * h + y) * w + x, as pixel_of decodes it).
CM4J_HD int64_t nhwc_pixel(int n, int c, int channels) {
  return static_cast<int64_t>(n) * channels + c;
}

// Element o of the NHWC storage of [B, C, HW] (o = (b * hw + pos) * C + c): its NCHW offset.
CM4J_HD int64_t nhwc_to_nchw(int64_t o, int channels, int hw) {
  const int64_t c = o % channels;
  const int64_t r = o / channels;
  const int64_t pos = r % hw;
  const int64_t b = r / hw;
  return (b * channels + c) * hw + pos;
}

// The conv's reduction index in channels-last order, k = (ky * kernel + kx) * c_in + c:
// consecutive k are consecutive channels of one source pixel (contiguous in NHWC).
// Weights are packed in this order ([K, c_out], see conv_packed_index) for the NHWC conv.
CM4J_HD Tap tap_of_nhwc(int k, int kernel, int c_in) {
  Tap t;
  t.c = k % c_in;
  int r = k / c_in;
  t.kx = r % kernel;
  t.ky = r / kernel;
  return t;
}
CM4J_HD int k_of_nhwc(Tap t, int kernel, int c_in) { return (t.ky * kernel + t.kx) * c_in + t.c; }

// conv_gather_offset for NHWC sources: src1 [B, h_in, w_in, c_in1], src2 [.., c_in2].
CM4J_HD int64_t conv_gather_offset_nhwc(const ConvGeometry& g, Pixel p, Tap t, int* which) {
  int sy, sx;
  if (!conv_src_coord(p.y, t.ky, g.stride, g.pad, g.upsample, g.h_in, &sy)) return -1;
  if (!conv_src_coord(p.x, t.kx, g.stride, g.pad, g.upsample, g.w_in, &sx)) return -1;
  if (t.c < g.c_in1) {
    *which = 0;
    return nhwc(p.b, sy, sx, t.c, g.h_in, g.w_in, g.c_in1);
  }
  *which = 1;
  return nhwc(p.b, sy, sx, t.c - g.c_in1, g.h_in, g.w_in, g.c_in2);
}

// Group norm over NHWC: the i-th value of group g is channel g * cpg + i % cpg of position
// i / cpg, so consecutive i walk the group's channels of one pixel, then the next pixel.
CM4J_HD int group_channel_nhwc(int g, int i, int channels, int groups) {
  const int cpg = channels / groups;
  return g * cpg + i % cpg;
}
CM4J_HD int group_pos_nhwc(int i, int channels, int groups) { return i / (channels / groups); }

// concat_offset for NHWC: element (b, c, pos) of cat(x, x2) with x [B, hw, c1] and
// x2 [B, hw, channels - c1].
CM4J_HD int64_t concat_offset_nhwc(int b, int c, int pos, int c1, int channels, int hw,
                                   int* which) {
  const int64_t pixel = static_cast<int64_t>(b) * hw + pos;
  if (c < c1) {
    *which = 0;
    return pixel * c1 + c;
  }
  *which = 1;
  return pixel * (channels - c1) + (c - c1);
}

// Attention over NHWC: qkv [B, HW, 3C] (the to_qkv conv's output), out [B, HW, C].
CM4J_HD int64_t qkv_offset_nhwc(int b, int part, int head, int c, int pos, int channels,
                                int dim_head, int hw) {
  return (static_cast<int64_t>(b) * hw + pos) * 3 * channels + part * channels +
         head * dim_head + c;
}
CM4J_HD int64_t attn_out_offset_nhwc(int b, int head, int c, int pos, int channels,
                                     int dim_head, int hw) {
  return (static_cast<int64_t>(b) * hw + pos) * channels + head * dim_head + c;
}

// Output element o of avg_pool2 over NHWC [B, H, W, C] (output [B, H/2, W/2, C]): offset
// of the top-left input of its window; the others are at + C, + w * C and + (w + 1) * C.
CM4J_HD int64_t pool_src_offset_nhwc(int64_t o, int h, int w, int channels) {
  const int64_t c = o % channels;
  int64_t r = o / channels;
  const int64_t ox = r % (w / 2);
  r /= w / 2;
  const int64_t oy = r % (h / 2);
  const int64_t b = r / (h / 2);
  return ((b * h + 2 * oy) * w + 2 * ox) * channels + c;
}
// Output element o of upsample_nearest2 over NHWC [B, H, W, C] (output [B, 2H, 2W, C]).
CM4J_HD int64_t upsample_src_offset_nhwc(int64_t o, int h, int w, int channels) {
  const int64_t c = o % channels;
  int64_t r = o / channels;
  const int64_t X = r % (2 * w);
  r /= 2 * w;
  const int64_t Y = r % (2 * h);
  const int64_t b = r / (2 * h);
  return ((b * h + Y / 2) * w + X / 2) * channels + c;
}

}  // namespace kidx
}  // namespace cm4j

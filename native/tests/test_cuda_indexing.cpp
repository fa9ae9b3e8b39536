// CPU-only checks of the CUDA kernels' index arithmetic (kernels/indexing.cuh): every helper
// is compared with a spelled-out loop nest over the same tensor, on odd sizes that cross
// tile and image boundaries. Runs everywhere (no GPU, no CUDA toolkit needed).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "indexing.cuh"

using namespace cm4j::kidx;

namespace {

int g_failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    ++g_failures;
    if (g_failures <= 20) std::printf("FAIL: %s\n", what.c_str());
  }
}

void test_decompositions() {
  const int h = 7, w = 5, b = 3;
  int n = 0;
  for (int bi = 0; bi < b; ++bi)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x, ++n) {
        Pixel p = pixel_of(n, h, w);
        check(p.b == bi && p.y == y && p.x == x, "pixel_of " + std::to_string(n));
      }
  for (int kernel : {1, 3, 5}) {
    int k = 0;
    for (int c = 0; c < 4; ++c)
      for (int ky = 0; ky < kernel; ++ky)
        for (int kx = 0; kx < kernel; ++kx, ++k) {
          Tap t = tap_of(k, kernel);
          check(t.c == c && t.ky == ky && t.kx == kx, "tap_of " + std::to_string(k));
        }
  }
  check(ceil_div(64, 64) == 1 && ceil_div(65, 64) == 2 && ceil_div(1, 64) == 1, "ceil_div");
  check(nchw(1, 2, 3, 4, 5, 6, 7) == ((1LL * 5 + 2) * 6 + 3) * 7 + 4, "nchw");
  // Offsets past 2^31 stay exact (batch-64 activations of the real model approach it).
  check(nchw(63, 767, 63, 63, 768, 64, 64) == 64LL * 768 * 64 * 64 - 1, "nchw int64");
}

void test_conv_out_size() {
  struct Case {
    int in, kernel, stride, pad;
    bool up;
    int expect;
  } cases[] = {{64, 3, 1, 1, false, 64}, {64, 1, 1, 0, false, 64}, {64, 3, 2, 1, false, 32},
               {32, 3, 1, 1, true, 64},  {8, 1, 1, 0, true, 16},   {7, 3, 2, 1, false, 4},
               {9, 3, 2, 0, true, 8}};
  for (const Case& c : cases)
    check(conv_out_size(c.in, c.kernel, c.stride, c.pad, c.up) == c.expect,
          "conv_out_size in=" + std::to_string(c.in));
}

// nhwc(), checked against the row-major [B, H, W, C] definition.
int64_t nhwc_offset_checked(int b, int y, int x, int c, int h, int w, int channels) {
  const int64_t o = nhwc(b, y, x, c, h, w, channels);
  check(o == ((static_cast<int64_t>(b) * h + y) * w + x) * channels + c, "nhwc");
  return o;
}

// The conv as the kernels see it (GEMM over k and n with conv_gather_offset) against the
// textbook definition on an explicitly built tensor: concat, upsample, pad, then slide.
// With nhwc, as the NHWC kernel sees it: sources stored channels-last, k in tap_of_nhwc
// order, weights packed in that order.
void test_conv_gather(int batch, int c1, int c2, int h, int w, int c_out, int kernel, int stride,
                      int pad, bool up, std::mt19937& rng, bool nhwc = false) {
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> s1(static_cast<size_t>(batch) * c1 * h * w),
      s2(static_cast<size_t>(batch) * c2 * h * w);
  for (auto& v : s1) v = u(rng);
  for (auto& v : s2) v = u(rng);
  const int c_in = c1 + c2;
  const int k_total = c_in * kernel * kernel;
  std::vector<double> wt(static_cast<size_t>(c_out) * k_total);  // torch layout
  for (auto& v : wt) v = u(rng);
  std::vector<double> packed(wt.size());
  for (int co = 0; co < c_out; ++co)
    for (int k = 0; k < k_total; ++k) {
      // k in the kernel's reduction order; k_torch the same (c, ky, kx) in torch's.
      int k_torch = k;
      if (nhwc) {
        Tap t = tap_of_nhwc(k, kernel, c_in);
        check(k_of_nhwc(t, kernel, c_in) == k, "k_of_nhwc inverts tap_of_nhwc");
        k_torch = (t.c * kernel + t.ky) * kernel + t.kx;
      }
      packed[conv_packed_index(k, co, c_out)] = wt[conv_torch_index(k_torch, co, k_total)];
    }
  // The sources as the kernel reads them: channels-last copies in the NHWC case.
  std::vector<double> g1 = s1, g2 = s2;
  if (nhwc) {
    for (int b = 0; b < batch; ++b)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          for (int c = 0; c < c1; ++c)
            g1[nhwc_offset_checked(b, y, x, c, h, w, c1)] = s1[nchw(b, c, y, x, c1, h, w)];
          for (int c = 0; c < c2; ++c)
            g2[nhwc_offset_checked(b, y, x, c, h, w, c2)] = s2[nchw(b, c, y, x, c2, h, w)];
        }
  }

  // Explicit input: cat -> upsample -> zero pad.
  const int hu = up ? 2 * h : h, wu = up ? 2 * w : w;
  const int hp = hu + 2 * pad, wp = wu + 2 * pad;
  std::vector<double> xp(static_cast<size_t>(batch) * c_in * hp * wp, 0.0);
  for (int b = 0; b < batch; ++b)
    for (int c = 0; c < c_in; ++c)
      for (int y = 0; y < hu; ++y)
        for (int x = 0; x < wu; ++x) {
          int sy = up ? y / 2 : y, sx = up ? x / 2 : x;
          double v = c < c1 ? s1[((static_cast<size_t>(b) * c1 + c) * h + sy) * w + sx]
                            : s2[((static_cast<size_t>(b) * c2 + (c - c1)) * h + sy) * w + sx];
          xp[((static_cast<size_t>(b) * c_in + c) * hp + y + pad) * wp + x + pad] = v;
        }
  const int ho = conv_out_size(h, kernel, stride, pad, up);
  const int wo = conv_out_size(w, kernel, stride, pad, up);
  check(ho == (hp - kernel) / stride + 1 && wo == (wp - kernel) / stride + 1, "out size");

  ConvGeometry g{c1, c2, h, w, kernel, stride, pad, up, ho, wo};
  const int n_total = batch * ho * wo;
  double max_err = 0;
  for (int n = 0; n < n_total; ++n) {
    Pixel p = pixel_of(n, ho, wo);
    for (int co = 0; co < c_out; ++co) {
      double ref = 0, got = 0;
      for (int c = 0; c < c_in; ++c)
        for (int ky = 0; ky < kernel; ++ky)
          for (int kx = 0; kx < kernel; ++kx)
            ref += wt[((static_cast<size_t>(co) * c_in + c) * kernel + ky) * kernel + kx] *
                   xp[((static_cast<size_t>(p.b) * c_in + c) * hp + p.y * stride + ky) * wp +
                      p.x * stride + kx];
      for (int k = 0; k < k_total; ++k) {
        int which = -1;
        int64_t off = nhwc ? conv_gather_offset_nhwc(g, p, tap_of_nhwc(k, kernel, c_in), &which)
                           : conv_gather_offset(g, p, tap_of(k, kernel), &which);
        if (off < 0) continue;
        double x = which == 0 ? g1[off] : g2[off];
        got += packed[conv_packed_index(k, co, c_out)] * x;
      }
      max_err = std::fmax(max_err, std::fabs(got - ref));
    }
  }
  char name[160];
  std::snprintf(name, sizeof name, "conv gather%s b=%d c=%d+%d %dx%d co=%d k=%d s=%d p=%d up=%d",
                nhwc ? " nhwc" : "", batch, c1, c2, h, w, c_out, kernel, stride, pad, up ? 1 : 0);
  check(max_err < 1e-9, std::string(name) + " max err " + std::to_string(max_err));
}

// The tiled conv's loads: thread t, step i covers (row, col) of a rows x cols tile; every
// element exactly once, and a thread's column never changes when threads % cols == 0.
void test_tile_coord(int rows, int cols, int threads) {
  std::vector<int> seen(static_cast<size_t>(rows) * cols, 0);
  const int per_thread = rows * cols / threads;
  for (int t = 0; t < threads; ++t) {
    int col0 = tile_coord(t, 0, threads, cols).col;
    for (int i = 0; i < per_thread; ++i) {
      TileCoord c = tile_coord(t, i, threads, cols);
      check(c.row >= 0 && c.row < rows && c.col >= 0 && c.col < cols, "tile_coord range");
      if (c.row >= 0 && c.row < rows && c.col >= 0 && c.col < cols) ++seen[c.row * cols + c.col];
      if (threads % cols == 0) check(c.col == col0, "tile_coord fixed column");
    }
  }
  for (int v : seen) check(v == 1, "tile_coord covers each element once");
}

void test_group_norm_indexing() {
  const int batch = 2, channels = 12, groups = 4, hw = 5;
  const int cpg = channels / groups;
  for (int b = 0; b < batch; ++b)
    for (int g = 0; g < groups; ++g) {
      int64_t base = group_base(b, g, channels, groups, hw);
      for (int i = 0; i < cpg * hw; ++i) {
        int c = group_channel(g, i, channels, groups, hw);
        int pos = i % hw;
        check(c / cpg == g, "group_channel in group");
        check(base + i == nchw(b, c, 0, pos, channels, 1, hw), "group element offset");
      }
    }
}

// cat(x, x2) along channels, read from the two halves.
void test_concat_indexing() {
  const int batch = 2, channels = 7, c1 = 3, hw = 5;
  std::vector<int> x(batch * c1 * hw), x2(batch * (channels - c1) * hw), cat;
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<int>(i);
  for (size_t i = 0; i < x2.size(); ++i) x2[i] = 1000 + static_cast<int>(i);
  for (int b = 0; b < batch; ++b) {  // torch.cat((x, x2), dim=1)
    for (int i = 0; i < c1 * hw; ++i) cat.push_back(x[b * c1 * hw + i]);
    for (int i = 0; i < (channels - c1) * hw; ++i) cat.push_back(x2[b * (channels - c1) * hw + i]);
  }
  for (int b = 0; b < batch; ++b)
    for (int c = 0; c < channels; ++c)
      for (int pos = 0; pos < hw; ++pos) {
        int which = -1;
        int64_t off = concat_offset(b, c, pos, c1, channels, hw, &which);
        int v = which == 0 ? x[off] : x2[off];
        check(v == cat[nchw(b, c, 0, pos, channels, 1, hw)], "concat_offset");
      }
  // Without a second source (c1 == channels) it is plain NCHW.
  int which = -1;
  check(concat_offset(1, 6, 4, channels, channels, hw, &which) == nchw(1, 6, 0, 4, channels, 1, hw) &&
            which == 0,
        "concat_offset single source");
}

void test_attention_indexing() {
  const int batch = 2, heads = 3, dh = 4, hw = 6, channels = heads * dh;
  for (int b = 0; b < batch; ++b)
    for (int part = 0; part < 3; ++part)
      for (int h = 0; h < heads; ++h)
        for (int c = 0; c < dh; ++c)
          for (int pos = 0; pos < hw; ++pos) {
            // qkv viewed as [B, 3, heads, dh, HW].
            int64_t expect = ((((static_cast<int64_t>(b) * 3 + part) * heads + h) * dh + c) * hw) + pos;
            check(qkv_offset(b, part, h, c, pos, channels, dh, hw) == expect, "qkv_offset");
            if (part == 0) {
              int64_t out = (((static_cast<int64_t>(b) * heads + h) * dh + c) * hw) + pos;
              check(attn_out_offset(b, h, c, pos, channels, dh, hw) == out, "attn_out_offset");
            }
          }
}

// Resnet r's time_emb_proj rows as a slice of one [B, total] buffer holding every resnet's
// side by side: element (b, c) of the slice at column offset `at` is buffer[b][at + c].
void test_bias_bc_indexing() {
  const int batch = 3, total = 11;
  std::vector<int> buffer(batch * total);
  for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<int>(i);
  const int slices[][2] = {{0, 4}, {4, 2}, {6, 5}};  // {offset, c_out}
  for (const auto& sl : slices) {
    const int* base = buffer.data() + sl[0];
    for (int b = 0; b < batch; ++b)
      for (int c = 0; c < sl[1]; ++c)
        check(base[bias_bc_offset(b, c, sl[1], total)] == b * total + sl[0] + c,
              "bias_bc_offset slice " + std::to_string(sl[0]));
  }
  // Stride 0: dense [B, c_out] rows, as before.
  for (int b = 0; b < batch; ++b)
    for (int c = 0; c < 5; ++c)
      check(bias_bc_offset(b, c, 5, 0) == b * 5 + c, "bias_bc_offset dense");
}

// diffusers get_timestep_embedding: emb = cat([sin(t f), cos(t f)]), flipped to [cos, sin]
// when flip_sin_to_cos, and one zero column appended when dim is odd.
void test_sinusoid_column() {
  for (int dim : {2, 8, 9, 192}) {
    const int half = dim / 2;
    for (bool flip : {false, true}) {
      std::vector<int> freq, sine;  // torch's construction, column by column
      for (int part = 0; part < 2; ++part)
        for (int i = 0; i < half; ++i) {
          freq.push_back(i);
          sine.push_back((part == 0) != flip);
        }
      for (int j = 0; j < dim; ++j) {
        SinusoidColumn c = sinusoid_column(j, half, flip);
        const std::string what =
            "sinusoid_column dim " + std::to_string(dim) + " j " + std::to_string(j);
        if (j < 2 * half)
          check(c.freq == freq[j] && c.sine == (sine[j] != 0), what);
        else
          check(c.freq == -1, what + " (padding)");
      }
    }
  }
}

void test_resample_indexing(int bc, int h, int w) {
  int64_t o = 0;
  for (int i = 0; i < bc; ++i)
    for (int y = 0; y < h / 2; ++y)
      for (int x = 0; x < w / 2; ++x, ++o)
        check(pool_src_offset(o, h, w) == (static_cast<int64_t>(i) * h + 2 * y) * w + 2 * x,
              "pool_src_offset " + std::to_string(h) + "x" + std::to_string(w));
  o = 0;
  for (int i = 0; i < bc; ++i)
    for (int y = 0; y < 2 * h; ++y)
      for (int x = 0; x < 2 * w; ++x, ++o)
        check(upsample_src_offset(o, h, w) == (static_cast<int64_t>(i) * h + y / 2) * w + x / 2,
              "upsample_src_offset");
}

// Channels-last layout: nhwc_to_nchw maps the NHWC storage onto NCHW one to one.
void test_nhwc_layout(int batch, int channels, int h, int w) {
  const int hw = h * w;
  const int64_t n = static_cast<int64_t>(batch) * channels * hw;
  std::vector<int> seen(static_cast<size_t>(n), 0);
  for (int b = 0; b < batch; ++b)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < channels; ++c) {
          const int64_t o = nhwc_offset_checked(b, y, x, c, h, w, channels);
          check(o == nhwc_pixel((b * h + y) * w + x, c, channels), "nhwc_pixel");
          const int64_t i = nhwc_to_nchw(o, channels, hw);
          check(i == nchw(b, c, y, x, channels, h, w), "nhwc_to_nchw");
          if (i >= 0 && i < n) ++seen[i];
        }
  for (int v : seen) check(v == 1, "nhwc_to_nchw covers each element once");
  check(nhwc(63, 63, 63, 767, 64, 64, 768) == 64LL * 64 * 64 * 768 - 1, "nhwc int64");
}

// Group norm over NHWC: element i of group g walks exactly the group's (channel, position)
// pairs once, and reads them from the right source of cat(x, x2).
void test_group_norm_indexing_nhwc(int c1) {
  const int batch = 2, channels = 12, groups = 4, hw = 5;
  const int cpg = channels / groups;
  const int c2 = channels - c1;
  for (int b = 0; b < batch; ++b)
    for (int g = 0; g < groups; ++g) {
      std::vector<int> seen(static_cast<size_t>(cpg) * hw, 0);
      for (int i = 0; i < cpg * hw; ++i) {
        const int c = group_channel_nhwc(g, i, channels, groups);
        const int pos = group_pos_nhwc(i, channels, groups);
        check(c / cpg == g && pos >= 0 && pos < hw, "group element in group");
        if (c / cpg == g && pos >= 0 && pos < hw) ++seen[(c - g * cpg) * hw + pos];
        int which = -1;
        const int64_t off = concat_offset_nhwc(b, c, pos, c1, channels, hw, &which);
        if (c < c1)
          check(which == 0 && off == (static_cast<int64_t>(b) * hw + pos) * c1 + c,
                "concat_offset_nhwc first source");
        else
          check(which == 1 && off == (static_cast<int64_t>(b) * hw + pos) * c2 + (c - c1),
                "concat_offset_nhwc second source");
      }
      for (int v : seen) check(v == 1, "group_channel_nhwc covers the group once");
    }
}

void test_attention_indexing_nhwc() {
  const int batch = 2, heads = 3, dh = 4, hw = 6, channels = heads * dh;
  for (int b = 0; b < batch; ++b)
    for (int part = 0; part < 3; ++part)
      for (int h = 0; h < heads; ++h)
        for (int c = 0; c < dh; ++c)
          for (int pos = 0; pos < hw; ++pos) {
            // qkv viewed as [B, HW, 3, heads, dh].
            int64_t expect = (((static_cast<int64_t>(b) * hw + pos) * 3 + part) * heads + h) * dh + c;
            check(qkv_offset_nhwc(b, part, h, c, pos, channels, dh, hw) == expect,
                  "qkv_offset_nhwc");
            if (part == 0) {
              int64_t out = ((static_cast<int64_t>(b) * hw + pos) * heads + h) * dh + c;
              check(attn_out_offset_nhwc(b, h, c, pos, channels, dh, hw) == out,
                    "attn_out_offset_nhwc");
            }
          }
}

void test_resample_indexing_nhwc(int batch, int channels, int h, int w) {
  int64_t o = 0;
  for (int b = 0; b < batch; ++b)
    for (int y = 0; y < h / 2; ++y)
      for (int x = 0; x < w / 2; ++x)
        for (int c = 0; c < channels; ++c, ++o)
          check(pool_src_offset_nhwc(o, h, w, channels) == nhwc(b, 2 * y, 2 * x, c, h, w, channels),
                "pool_src_offset_nhwc " + std::to_string(h) + "x" + std::to_string(w));
  o = 0;
  for (int b = 0; b < batch; ++b)
    for (int y = 0; y < 2 * h; ++y)
      for (int x = 0; x < 2 * w; ++x)
        for (int c = 0; c < channels; ++c, ++o)
          check(upsample_src_offset_nhwc(o, h, w, channels) ==
                    nhwc(b, y / 2, x / 2, c, h, w, channels),
                "upsample_src_offset_nhwc");
}

}  // namespace

int main() {
  std::mt19937 rng(12345);
  test_decompositions();
  test_conv_out_size();
  //                b  c1 c2  h  w  co k  s  p  up
  test_conv_gather(2, 3, 0, 5, 6, 4, 3, 1, 1, false, rng);
  test_conv_gather(2, 3, 2, 5, 6, 4, 3, 1, 1, false, rng);  // concat
  test_conv_gather(3, 2, 3, 3, 4, 5, 3, 1, 1, true, rng);   // concat + upsample
  test_conv_gather(1, 4, 0, 7, 7, 3, 3, 2, 1, false, rng);  // stride 2, odd size
  test_conv_gather(2, 3, 1, 4, 5, 6, 1, 1, 0, false, rng);  // 1x1 concat
  test_conv_gather(2, 2, 0, 4, 3, 2, 1, 1, 0, true, rng);   // 1x1 upsample
  test_conv_gather(1, 2, 2, 5, 4, 3, 3, 2, 0, true, rng);   // everything at once
  test_tile_coord(16, 64, 256);
  test_tile_coord(16, 32, 128);
  test_tile_coord(64, 64, 256);
  test_group_norm_indexing();
  test_concat_indexing();
  test_attention_indexing();
  test_resample_indexing(3, 4, 6);
  test_resample_indexing(2, 5, 7);  // odd: last row/column dropped by pooling
  test_bias_bc_indexing();
  test_sinusoid_column();
  // The NHWC mode's layout.
  test_nhwc_layout(2, 5, 3, 4);
  test_conv_gather(2, 3, 0, 5, 6, 4, 3, 1, 1, false, rng, true);
  test_conv_gather(2, 3, 2, 5, 6, 4, 3, 1, 1, false, rng, true);  // concat
  test_conv_gather(3, 2, 3, 3, 4, 5, 3, 1, 1, true, rng, true);   // concat + upsample
  test_conv_gather(1, 4, 0, 7, 7, 3, 3, 2, 1, false, rng, true);  // stride 2, odd size
  test_conv_gather(2, 3, 1, 4, 5, 6, 1, 1, 0, false, rng, true);  // 1x1 concat
  test_conv_gather(1, 2, 2, 5, 4, 3, 3, 2, 0, true, rng, true);   // everything at once
  test_group_norm_indexing_nhwc(12);  // one source
  test_group_norm_indexing_nhwc(5);   // cat(x, x2), the seam inside group 1
  test_attention_indexing_nhwc();
  test_resample_indexing_nhwc(2, 3, 4, 6);
  test_resample_indexing_nhwc(2, 3, 5, 7);
  if (g_failures) {
    std::printf("test_cuda_indexing: %d check(s) failed\n", g_failures);
    return 1;
  }
  std::printf("test_cuda_indexing: all checks passed\n");
  return 0;
}

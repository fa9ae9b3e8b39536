// The sm_80 primitives of kernels/mma_sm80.cuh on the CPU emulator (kernels/dev/emu, built
// with -DCM4J_CUDA_EMULATION and that folder first on the include path; no GPU or CUDA
// toolkit needed): mma.sync m16n8k16 in fp16 and bf16 against a plain matrix product, with
// its operands loaded by ldmatrix x1/x2/x4 (with and without .trans) from swizzled shared
// memory, and cp.async's groups (what has landed after each wait_group, zero-fill, the
// poison seen by a read before the wait). Then the kernels built on them, compiled into this
// test: conv2d_nhwc_mma.cu in its three tile shapes on small odd shapes, and the flash
// attention attention_nhwc_mma.cu with query and key tails, each against a loop in double. The layouts
// are the PTX ISA's; scripts/device-check.sh runs the kernels on a GPU (test_cuda_ops in the
// candidate set). Last, what the emulator itself must catch: a collective call by part of a
// warp, dynamic shared memory past its limit, a programmatic launch that does not wait, a
// misaligned __ldcg, shared memory passed between warps without a barrier, and a count
// across blocks that does not cover the block's stores.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "attention_nhwc_mma.cu"  // the kernels and their launchers, built for the emulator
#include "conv2d_nhwc_mma.cu"
#include "conv2d_nhwc_wgmma.cu"
#include "launch.cuh"
#include "mma_sm80.cuh"
#include "mma_sm90.cuh"
#include "emu_test_util.h"

namespace {

namespace sm80 = cm4j::kernels::sm80;

using namespace cm4j_emu_test;  // check, g_failures, to_b16, to_f

// How the operands reach the registers.
enum class Load { kX4, kX1, kX2Trans, kX2 };

struct MmaArgs {
  const void* a;   // [16][16] row-major
  const void* b;   // [16][16] (k, n) row-major
  const float* c;  // [16][16]
  float* d;        // [16][16]
  Load load;
};

// One warp, two m16n8k16 products (n tiles 0 and 1): A from a swizzled tile of 64-byte rows
// (chunks 2, 3 unused), B from shared memory as [k][n] (the .trans loads) or [n][k].
template <typename T>
__global__ void mma_kernel(MmaArgs p) {
  __shared__ __align__(128) T a_s[16 * 32];
  __shared__ __align__(128) T b_kn[16 * 16];
  __shared__ __align__(128) T b_nk[16 * 16];
  const int lane = threadIdx.x;
  const T* a = static_cast<const T*>(p.a);
  const T* b = static_cast<const T*>(p.b);
  for (int i = lane; i < 256; i += 32) {
    const int r = i / 16, k = i % 16;
    a_s[sm80::swizzled_offset<4>(r, k / 8) + k % 8] = a[i];
    b_kn[i] = b[i];
    b_nk[k * 16 + r] = b[i];  // b[i] is B[r][k] here: k-row r, column k
  }
  __syncthreads();
  uint32_t af[4], bf[2][2];
  if (p.load == Load::kX1) {
    // Matrix j of A's fragment: rows 8 (j % 2).., chunk j / 2; lanes 0..7 give its rows.
    for (int j = 0; j < 4; ++j) {
      uint32_t r[1];
      sm80::ldmatrix_x1<false>(r, &a_s[sm80::swizzled_offset<4>(8 * (j % 2) + lane % 8, j / 2)]);
      af[j] = r[0];
    }
    for (int n = 0; n < 2; ++n)
      for (int h = 0; h < 2; ++h) {  // k rows 8h.., n columns 8n..
        uint32_t r[1];
        sm80::ldmatrix_x1<true>(r, &b_kn[(8 * h + lane % 8) * 16 + 8 * n]);
        bf[n][h] = r[0];
      }
  } else {
    sm80::ldmatrix_x4<false>(af, &a_s[sm80::swizzled_offset<4>(lane % 16, lane / 16)]);
    if (p.load == Load::kX4) {  // lanes 0..15: k rows at n 0; 16..31: at n 8
      uint32_t r[4];
      sm80::ldmatrix_x4<true>(r, &b_kn[(lane % 16) * 16 + 8 * (lane / 16)]);
      bf[0][0] = r[0], bf[0][1] = r[1], bf[1][0] = r[2], bf[1][1] = r[3];
    } else {
      for (int n = 0; n < 2; ++n) {
        if (p.load == Load::kX2Trans)  // lanes 0..15 give k rows 0..15 at column 8n
          sm80::ldmatrix_x2<true>(bf[n], &b_kn[(lane % 16) * 16 + 8 * n]);
        else  // [n][k]: lanes 0..7 give n rows at k 0, lanes 8..15 at k 8
          sm80::ldmatrix_x2<false>(bf[n], &b_nk[(8 * n + lane % 8) * 16 + 8 * ((lane / 8) % 2)]);
      }
    }
  }
  const int g = lane / 4, t = lane % 4;
  for (int n = 0; n < 2; ++n) {
    const int col = 8 * n + 2 * t;
    const float c[4] = {p.c[g * 16 + col], p.c[g * 16 + col + 1], p.c[(g + 8) * 16 + col],
                        p.c[(g + 8) * 16 + col + 1]};
    float d[4];
    sm80::mma_m16n8k16<T>(d, af, bf[n], c);
    p.d[g * 16 + col] = d[0];
    p.d[g * 16 + col + 1] = d[1];
    p.d[(g + 8) * 16 + col] = d[2];
    p.d[(g + 8) * 16 + col + 1] = d[3];
  }
}

template <typename T>
void test_mma(const char* dtype, Load load, const char* how, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  std::vector<T> a(256), b(256);
  std::vector<float> c(256), want(256);
  for (T& v : a) v = to_b16<T>(nd(rng));
  for (T& v : b) v = to_b16<T>(nd(rng));
  for (float& v : c) v = nd(rng);
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 16; ++n) {
      double s = c[m * 16 + n];
      for (int k = 0; k < 16; ++k) s += double(to_f(a[m * 16 + k])) * to_f(b[k * 16 + n]);
      want[m * 16 + n] = static_cast<float>(s);
    }
  T *da, *db;
  float *dc, *dd;
  cudaMalloc(&da, 512);
  cudaMalloc(&db, 512);
  cudaMalloc(&dc, 1024);
  cudaMalloc(&dd, 1024);
  std::memcpy(da, a.data(), 512);
  std::memcpy(db, b.data(), 512);
  std::memcpy(dc, c.data(), 1024);
  CM4J_LAUNCH(mma_kernel<T>, 1, 32, nullptr, MmaArgs{da, db, dc, dd, load});
  double worst = 0;
  for (int i = 0; i < 256; ++i) worst = std::fmax(worst, std::fabs(dd[i] - want[i]));
  char what[160];
  std::snprintf(what, sizeof what, "mma m16n8k16 %s, %s: max |d - (a b + c)| = %.2e (<= 1e-5)",
                dtype, how, worst);
  check(cudaGetLastError() == cudaSuccess && worst <= 1e-5, what);
  cudaFree(da);
  cudaFree(db);
  cudaFree(dc);
  cudaFree(dd);
}

// ---- cp.async ---------------------------------------------------------------------------
struct AsyncArgs {
  const float* src;  // 64 floats
  float* seen;       // [4][32]: shared memory as thread 0 reads it at four points
};

__global__ void cp_async_kernel(AsyncArgs p) {
  __shared__ __align__(16) float s[32];
  if (threadIdx.x != 0) return;
  for (int i = 0; i < 32; ++i) s[i] = -1.0f;
  sm80::cp_async<16>(&s[0], p.src, true);        // group 0: s[0..3]
  sm80::cp_async<8>(&s[4], p.src + 4, true);     //          s[4..5]
  sm80::cp_async<4>(&s[6], p.src + 6, false);    //          s[6] zero-filled
  sm80::cp_async_commit();
  sm80::cp_async<16>(&s[8], p.src + 8, true);    // group 1: s[8..11]
  sm80::cp_async_commit();
  sm80::cp_async<16>(&s[12], p.src + 12, true);  // no group yet
  for (int i = 0; i < 32; ++i) p.seen[i] = s[i];
  sm80::cp_async_wait<1>();  // group 0 has landed
  for (int i = 0; i < 32; ++i) p.seen[32 + i] = s[i];
  sm80::cp_async_wait<0>();  // group 1 too, not the uncommitted copy
  for (int i = 0; i < 32; ++i) p.seen[64 + i] = s[i];
  sm80::cp_async_commit();
  sm80::cp_async_wait<0>();
  for (int i = 0; i < 32; ++i) p.seen[96 + i] = s[i];
}

void test_cp_async() {
  float *src, *seen;
  cudaMalloc(&src, 64 * sizeof(float));
  cudaMalloc(&seen, 128 * sizeof(float));
  for (int i = 0; i < 64; ++i) src[i] = 100.0f + i;
  CM4J_LAUNCH(cp_async_kernel, 1, 32, nullptr, AsyncArgs{src, seen});
  // What each of the four reads must see: the value, 0 (zero-fill), untouched (-1) or
  // in flight (NaN: the emulator's poison).
  auto expect = [&](int stage, int i) -> float {
    const bool g0 = i < 7, g1 = i >= 8 && i < 12, loose = i >= 12 && i < 16;
    const bool landed = (g0 && stage >= 1) || (g1 && stage >= 2) || (loose && stage >= 3);
    if (!(g0 || g1 || loose)) return -1.0f;
    if (!landed) return NAN;
    return i == 6 ? 0.0f : 100.0f + i;
  };
  const char* names[4] = {"before any wait", "after wait_group 1", "after wait_group 0",
                          "after committing the last copy"};
  for (int stage = 0; stage < 4; ++stage) {
    bool ok = cudaGetLastError() == cudaSuccess;
    for (int i = 0; i < 32; ++i) {
      const float want = expect(stage, i), got = seen[stage * 32 + i];
      ok = ok && (std::isnan(want) ? std::isnan(got) : got == want);
    }
    check(ok, std::string("cp.async ") + names[stage]);
  }
  cudaFree(src);
  cudaFree(seen);
}

// ---- conv2d_nhwc_mma --------------------------------------------------------------------
namespace kernels = cm4j::kernels;
namespace kidx = cm4j::kidx;

struct ConvCase {
  kernels::Conv2dNhwcParams geometry;  // batch .. out_scale; the rest is filled in
  int bbc_stride;                      // 0: no per-image bias
  bool residual;
  int tile_m;  // 64 or 128: the launcher's instance to run
  int splits;  // split-K
  int norm;    // a fused group norm: 0 none, 1 its affine map, 2 then SiLU
  int tile_n = 64;  // 128 (with tile_m 128): the wide tile, also checked against 64x64's bits
  bool wgmma = false;  // conv2d_nhwc_wgmma.cu instead (tile 128x128), also against 64x64's bits
};

// The fused norm's map of every value of src ([pixels, c] of channels c0.. of the cat, image
// b = pixel / pixels_per_image), rounded to T: what the unfused group norm would store.
template <typename T>
std::vector<T> normalized(const std::vector<T>& src, int c, int c0, int c_in, int pixels_per_image,
                          const std::vector<float>& coeffs, bool silu) {
  std::vector<T> out(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    const int ch = c0 + static_cast<int>(i % c), b = static_cast<int>(i / c / pixels_per_image);
    const float* center = &coeffs[static_cast<size_t>(b) * 3 * c_in + ch];
    out[i] = cm4j::kernels::nhwc_detail::from_f32<T>(cm4j::kernels::nhwc_detail::norm_act(
        to_f(src[i]), center[0], center[c_in], center[2 * c_in], silu));
  }
  return out;
}

template <typename T>
T* device_copy(const std::vector<T>& v) {
  T* d;
  cudaMalloc(&d, v.size() * sizeof(T));
  std::memcpy(d, v.data(), v.size() * sizeof(T));
  return d;
}

template <typename T>
void test_conv(const char* dtype, kernels::HalfType type, const ConvCase& k, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  kernels::Conv2dNhwcParams p = k.geometry;
  const int c_in = p.c_in1 + p.c_in2, K = c_in * p.kernel * p.kernel;
  p.h_out = kidx::conv_out_size(p.h_in, p.kernel, p.stride, p.pad, p.upsample);
  p.w_out = kidx::conv_out_size(p.w_in, p.kernel, p.stride, p.pad, p.upsample);
  const size_t in_pixels = static_cast<size_t>(p.batch) * p.h_in * p.w_in;
  const size_t out_n = static_cast<size_t>(p.batch) * p.h_out * p.w_out * p.c_out;
  auto rand_b16 = [&](size_t n, float scale) {
    std::vector<T> v(n);
    for (T& e : v) e = to_b16<T>(scale * nd(rng));
    return v;
  };
  auto s1 = rand_b16(in_pixels * p.c_in1, 1.0f);
  auto s2 = rand_b16(in_pixels * p.c_in2, 1.0f);
  auto wt = rand_b16(static_cast<size_t>(K) * p.c_out, 1.0f / std::sqrt(float(K)));  // [K, c_out]
  auto res = rand_b16(out_n, 1.0f);
  std::vector<float> bias(p.c_out), bbc(static_cast<size_t>(p.batch) * std::max(k.bbc_stride, 1));
  for (float& e : bias) e = 0.1f * nd(rng);
  for (float& e : bbc) e = 0.5f * nd(rng);
  // The norm's map per (image, channel): centers near the values' mean, scales and shifts
  // far from 1 and 0 (silu(add) != 0, so a padding value mapped by mistake shows).
  std::vector<float> coeffs(static_cast<size_t>(p.batch) * 3 * c_in);
  for (size_t i = 0; i < coeffs.size(); ++i) {
    const size_t row = i / c_in % 3;
    coeffs[i] = row == 0 ? 0.3f * nd(rng) : row == 1 ? 1.0f + 0.8f * nd(rng) : 0.7f + 0.5f * nd(rng);
  }
  const int pixels_in = p.h_in * p.w_in;
  // The operands the conv multiplies: the sources, or their normalized values.
  const auto op1 = k.norm ? normalized(s1, p.c_in1, 0, c_in, pixels_in, coeffs, k.norm == 2) : s1;
  const auto op2 = k.norm ? normalized(s2, p.c_in2, p.c_in1, c_in, pixels_in, coeffs, k.norm == 2) : s2;
  p.type = type;
  p.norm = k.norm ? device_copy(coeffs) : nullptr;
  p.norm_silu = k.norm == 2;
  p.src1 = device_copy(s1);
  p.src2 = p.c_in2 ? device_copy(s2) : nullptr;
  p.weight = device_copy(wt);
  p.bias = device_copy(bias);
  p.bias_bc = k.bbc_stride ? device_copy(bbc) : nullptr;
  p.bias_bc_stride = k.bbc_stride;
  p.residual = k.residual ? device_copy(res) : nullptr;
  T* dst;
  cudaMalloc(&dst, out_n * sizeof(T));  // fresh memory is all-ones bits (NaN)
  p.dst = dst;
  float* partial = nullptr;
  if (k.splits > 1) cudaMalloc(&partial, k.splits * out_n * sizeof(float));

  const bool supported = kernels::conv2d_nhwc_mma_supports(p);  // the launcher's checks
  const kernels::Conv2dNhwcMmaConfig config{k.tile_m, k.tile_n, k.splits};
  auto run = [&](const kernels::Conv2dNhwcParams& q) {
    return k.wgmma ? kernels::conv2d_nhwc_wgmma_forward(q, k.splits, partial, nullptr)
                   : kernels::launch<T>(q, config, partial, nullptr);
  };
  const cudaError_t e = run(p);
  // Reference in double from the same rounded operands; the kernel rounds once on store.
  const kidx::ConvGeometry g{p.c_in1, p.c_in2, p.h_in,     p.w_in,  p.kernel,
                             p.stride, p.pad,   p.upsample, p.h_out, p.w_out};
  const double eps = std::is_same<T, __half>::value ? 1.0 / 2048 : 1.0 / 256;
  // Bound: one rounding to T (eps = its unit roundoff) plus fp32 summation's worst case,
  // (K + 4) 2^-24 times the sum of the magnitudes.
  const double gamma = (K + 4) * std::ldexp(1.0, -24);
  double worst = 0;  // |got - ref| / bound
  for (size_t o = 0; o < out_n; ++o) {
    const int co = static_cast<int>(o % p.c_out), m = static_cast<int>(o / p.c_out);
    const kidx::Pixel px = kidx::pixel_of(m, p.h_out, p.w_out);
    double acc = 0, mag = 0;
    for (int kk = 0; kk < K; ++kk) {
      int which = 0;
      const kidx::Tap tap = kidx::tap_of_nhwc(kk, p.kernel, c_in);
      const int64_t off = kidx::conv_gather_offset_nhwc(g, px, tap, &which);
      if (off < 0) continue;
      const double term = double(to_f(which == 0 ? op1[off] : op2[off])) *
                          to_f(wt[static_cast<size_t>(kk) * p.c_out + co]);
      acc += term;
      mag += std::fabs(term);
    }
    const int64_t bbc_at = kidx::bias_bc_offset(px.b, co, p.c_out, k.bbc_stride);
    const double extras[3] = {bias[co], k.bbc_stride ? bbc[bbc_at] : 0.0,
                              k.residual ? to_f(res[o]) : 0.0};
    for (double x : extras) {
      acc += x;
      mag += std::fabs(x);
    }
    acc *= p.out_scale;
    const double bound = eps * std::fabs(acc) + gamma * mag * p.out_scale;
    const double err = std::fabs(to_f(dst[o]) - acc) / bound;
    worst = std::isnan(err) ? INFINITY : std::fmax(worst, err);
  }
  char what[200];
  std::snprintf(what, sizeof what,
                "%s %s %dx%d tile, %d split(s): b%d %d+%d>%d %dx%d k%d s%d%s%s%s%s: "
                "worst error %.2f of its bound (one rounding + fp32 summation)",
                k.wgmma ? "conv2d_nhwc_wgmma" : "conv2d_nhwc_mma", dtype, k.tile_m, k.tile_n,
                k.splits, p.batch, p.c_in1, p.c_in2, p.c_out, p.h_in, p.w_in,
                p.kernel, p.stride, p.upsample ? " up" : "", k.bbc_stride ? " bbc" : "",
                k.residual ? " res" : "", k.norm == 2 ? " norm+silu" : k.norm ? " norm" : "", worst);
  check(supported && e == cudaSuccess && cudaGetLastError() == cudaSuccess && worst <= 1.0, what);
  const std::string name = std::string(what).substr(0, std::string(what).find(':'));
  if (k.tile_n == 128) {
    // The tile never changes the bits: the same sums in the same order as in 64x64 tiles.
    // The wgmma's too, here: the emulator sums each k16 step in k order as mma.sync's does
    // (a GPU's wgmma may add in an order of its own).
    kernels::Conv2dNhwcParams q = p;
    T* narrow;
    cudaMalloc(&narrow, out_n * sizeof(T));
    q.dst = narrow;
    const cudaError_t eq = kernels::launch<T>(q, {64, 64, k.splits}, partial, nullptr);
    check(eq == cudaSuccess && std::memcmp(narrow, dst, out_n * sizeof(T)) == 0,
          name + ": the same bits as the mma kernel's 64x64 tiles");
    cudaFree(narrow);
  }
  if (k.splits > 1) {
    // Split-K in one launch: the tile's last split adds the partial sums (arrival counters)
    // with the reduction kernel's bits. Twice on the same counters, each launch leaving them
    // at zero, with the blocks in another order each time (the emulator shuffles them).
    std::vector<unsigned> counters(kernels::conv2d_nhwc_mma_split_counters(p), 0);
    kernels::Conv2dNhwcParams q = p;
    q.split_counters = counters.data();
    T* one;
    cudaMalloc(&one, out_n * sizeof(T));
    q.dst = one;
    bool ok = true;
    for (int pass = 0; pass < 2; ++pass) {
      std::memset(one, 0xff, out_n * sizeof(T));  // NaN: no output and no sum left over
      std::memset(partial, 0xff, k.splits * out_n * sizeof(float));
      const long before = cm4j_emu::state().launches;
      ok = ok && run(q) == cudaSuccess && cm4j_emu::state().launches == before + 1 &&
           std::memcmp(one, dst, out_n * sizeof(T)) == 0;
      for (unsigned c : counters) ok = ok && c == 0;
    }
    check(ok, name + ": in one launch (the last split adds), twice: the reduction kernel's bits, "
                     "counters left at zero");
    cudaFree(one);
  }
  if (k.norm) {
    // Unfused: the same conv on the normalized sources, as the group norm would have
    // written them, gives the same bits.
    kernels::Conv2dNhwcParams q = p;
    q.norm = nullptr;
    q.norm_silu = false;
    q.src1 = device_copy(op1);
    q.src2 = p.c_in2 ? device_copy(op2) : nullptr;
    T* plain;
    cudaMalloc(&plain, out_n * sizeof(T));
    q.dst = plain;
    const cudaError_t eq = run(q);
    check(eq == cudaSuccess && std::memcmp(plain, dst, out_n * sizeof(T)) == 0,
          name + ": the fused norm = the conv of the normalized sources, bit for bit");
    cudaFree(const_cast<void*>(q.src1));
    cudaFree(const_cast<void*>(q.src2));
    cudaFree(plain);
  }
  for (const void* q : {p.src1, p.src2, p.weight, static_cast<const void*>(p.bias),
                        static_cast<const void*>(p.bias_bc), p.residual,
                        static_cast<const void*>(p.norm)})
    cudaFree(const_cast<void*>(q));
  cudaFree(dst);
  cudaFree(partial);
}

// What the kernel refuses (the NHWC mode then runs conv2d_nhwc_forward), and its tile rule.
void test_conv_launcher() {
  void* buf;
  cudaMalloc(&buf, 4096);
  kernels::Conv2dNhwcParams p;
  p.batch = 1;
  p.c_in1 = 16;
  p.h_in = p.w_in = p.h_out = p.w_out = 4;
  p.c_out = 16;
  p.src1 = p.weight = p.dst = buf;
  const bool base = kernels::conv2d_nhwc_mma_supports(p);
  kernels::Conv2dNhwcParams q = p;
  q.c_in1 = 12;
  const bool c_in = !kernels::conv2d_nhwc_mma_supports(q);
  q = p;
  q.c_out = 3;
  const bool c_out = !kernels::conv2d_nhwc_mma_supports(q);
  q = p;
  q.src1 = static_cast<char*>(buf) + 8;
  const bool align = !kernels::conv2d_nhwc_mma_supports(q) &&
                     kernels::conv2d_nhwc_mma_forward(q, nullptr, nullptr) == cudaErrorInvalidValue;
  // The epilogue's paired accesses: dst and residual 4-byte aligned (2 still is not).
  q = p;
  q.dst = static_cast<char*>(buf) + 2;
  const bool dst = !kernels::conv2d_nhwc_mma_supports(q);
  q = p;
  q.residual = static_cast<char*>(buf) + 2;
  const bool residual = !kernels::conv2d_nhwc_mma_supports(q);
  q.residual = static_cast<char*>(buf) + 4;
  const bool residual4 = kernels::conv2d_nhwc_mma_supports(q);
  check(base && c_in && c_out && align && dst && residual && residual4,
        "conv2d_nhwc_mma refuses channels not in multiples of 8, sources not 16-byte aligned, "
        "dst or residual not 4-byte aligned");
  // The tile rule: 128x64 while that still makes 132 blocks. imagenet64's 64x64 convs with
  // 192 channels: batch 2 has 64 x 3 such blocks, batch 1 only 32 x 3.
  q = p;
  q.c_out = 192;
  q.h_out = q.w_out = 64;
  q.batch = 2;
  const int large = kernels::conv2d_nhwc_mma_tile_m(q);
  q.batch = 1;
  const int small = kernels::conv2d_nhwc_mma_tile_m(q);
  check(large == 128 && small == 64, "conv2d_nhwc_mma_tile_m: 128 rows at batch 2, 64 at batch 1");
  // Three tiles: 128x64, 64x64 and 128x128, no other.
  check(kernels::conv2d_nhwc_mma_config_ok(q, {128, 64, 1}) &&
            kernels::conv2d_nhwc_mma_config_ok(q, {64, 64, 1}) &&
            kernels::conv2d_nhwc_mma_config_ok(q, {128, 128, 1}) &&
            !kernels::conv2d_nhwc_mma_config_ok(q, {64, 128, 1}) &&
            !kernels::conv2d_nhwc_mma_config_ok(q, {256, 64, 1}) &&
            kernels::conv2d_nhwc_mma_rule(q).tile_n == 64,
        "conv2d_nhwc_mma_config_ok: tiles 128x64, 64x64, 128x128; the rule's 64 channels wide");
  // Split-K: imagenet64's mid-block conv (8x8, 768 -> 768, 216 slices of 32 k) has 12 tiles
  // per image: 8 splits (the most) at batch 1 and 2 alike; the 64x64 conv above none; the
  // workspace is splits x M x c_out floats.
  q.c_in1 = q.c_out = 768;
  q.h_in = q.w_in = q.h_out = q.w_out = 8;
  q.kernel = 3;
  q.pad = 1;
  const int mid1 = kernels::conv2d_nhwc_mma_splits(q);
  q.batch = 2;
  const int mid2 = kernels::conv2d_nhwc_mma_splits(q);
  const size_t ws = kernels::conv2d_nhwc_mma_workspace_floats(q);
  // A split's partial sums are stored in pairs: the workspace must be 8-byte aligned.
  float* odd = reinterpret_cast<float*>(static_cast<char*>(buf) + 4);
  check(mid1 == 8 && mid2 == 8 && ws == size_t(8) * 128 * 768 &&
            kernels::conv2d_nhwc_mma_splits(p) == 1 &&
            kernels::conv2d_nhwc_mma_forward(q, nullptr, nullptr) == cudaErrorInvalidValue &&
            kernels::conv2d_nhwc_mma_forward(q, odd, nullptr) == cudaErrorInvalidValue &&
            kernels::conv2d_nhwc_wgmma_forward(q, 8, odd, nullptr) == cudaErrorInvalidValue,
        "conv2d_nhwc_mma_splits: 8 for the 8x8 conv at batch 1 and 2, none at 64x64; "
        "no workspace, or one not 8-byte aligned, refused");
  cudaFree(buf);
}

// Through the public launcher (its own tile and split choice): image 0 of a batch of 3 and
// the same image alone come out with the same bits.
template <typename T>
void test_conv_batch_invariance(const char* dtype, kernels::HalfType type, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  kernels::Conv2dNhwcParams p{3, 64, 0, 4, 4, 64, 3, 1, 1, false, 1.0f, 4, 4};
  p.type = type;
  const size_t image_in = 4 * 4 * 64, image_out = 4 * 4 * 64, K = 64 * 9;
  std::vector<T> x(3 * image_in), wt(K * 64);
  for (T& e : x) e = to_b16<T>(nd(rng));
  for (T& e : wt) e = to_b16<T>(nd(rng) / 24.0f);
  p.src1 = device_copy(x);
  p.weight = device_copy(wt);
  T *batched, *alone;
  float *ws3, *ws1;
  cudaMalloc(&batched, 3 * image_out * sizeof(T));
  cudaMalloc(&alone, image_out * sizeof(T));
  const int splits = kernels::conv2d_nhwc_mma_splits(p);
  cudaMalloc(&ws3, kernels::conv2d_nhwc_mma_workspace_floats(p) * sizeof(float));
  p.dst = batched;
  const cudaError_t e3 = kernels::conv2d_nhwc_mma_forward(p, ws3, nullptr);
  p.batch = 1;
  cudaMalloc(&ws1, kernels::conv2d_nhwc_mma_workspace_floats(p) * sizeof(float));
  p.dst = alone;
  const cudaError_t e1 = kernels::conv2d_nhwc_mma_forward(p, ws1, nullptr);
  const bool same = std::memcmp(batched, alone, image_out * sizeof(T)) == 0;
  check(splits == 2 && e3 == cudaSuccess && e1 == cudaSuccess && same,
        std::string("conv2d_nhwc_mma ") + dtype +
            ", 2 splits: image 0 of a batch of 3 = the image alone, bit for bit");
  for (void* q : {const_cast<void*>(p.src1), const_cast<void*>(p.weight),
                  static_cast<void*>(batched), static_cast<void*>(alone), static_cast<void*>(ws3),
                  static_cast<void*>(ws1)})
    cudaFree(q);
}

// ---- attention_nhwc_mma -----------------------------------------------------------------
struct AttnCase {
  int batch, heads, hw;
  float spread;  // std of q, k, v: scores of std 64 spread^2 / 8
};

// qkv [B, HW, 3C] of T with standard deviation `spread`.
template <typename T>
std::vector<T> random_qkv(const AttnCase& k, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  std::vector<T> qkv(static_cast<size_t>(k.batch) * k.hw * 3 * k.heads * 64);
  for (T& e : qkv) e = to_b16<T>(k.spread * nd(rng));
  return qkv;
}

kernels::AttentionNhwcParams attn_params(const AttnCase& k, kernels::HalfType type,
                                         const void* qkv, void* out) {
  kernels::AttentionNhwcParams p;
  p.batch = k.batch;
  p.heads = k.heads;
  p.dim_head = 64;
  p.channels = 64 * k.heads;
  p.hw = k.hw;
  p.scale = 0.125f;
  p.type = type;
  p.qkv = qkv;
  p.out = out;
  return p;
}

template <typename T>
void test_attention(const char* dtype, kernels::HalfType type, const AttnCase& k,
                    std::mt19937& rng) {
  const auto qkv = random_qkv<T>(k, rng);
  const int c = 64 * k.heads;
  const size_t out_n = static_cast<size_t>(k.batch) * k.hw * c;
  T* dq = device_copy(qkv);
  T* dst;
  cudaMalloc(&dst, out_n * sizeof(T));  // fresh memory is all-ones bits (NaN)
  const kernels::AttentionNhwcParams p = attn_params(k, type, dq, dst);
  const cudaError_t e = kernels::attention_nhwc_mma_forward(p, nullptr);
  // Reference in double from the same rounded q, k, v. Bound per output: one rounding of it
  // and of each probability to T (eps), fp16's subnormal probabilities (absolute 2^-25),
  // and fp32's share: the score's dot product (2 gamma_64 sum |q k| scale, in the exponent
  // of every probability), exp2f, the rescales and the sums over HW (a few ulps each).
  const double eps = std::is_same<T, __half>::value ? 1.0 / 2048 : 1.0 / 256;
  const double sub = std::is_same<T, __half>::value ? std::ldexp(1.0, -25) : 0.0;
  const double f32 = (2.0 * k.hw + 256) * std::ldexp(1.0, -24);
  auto at = [&](int b, int part, int h, int d, int pos) {
    return double(to_f(qkv[kidx::qkv_offset_nhwc(b, part, h, d, pos, c, 64, k.hw)]));
  };
  double worst = 0;  // |got - ref| / bound
  std::vector<double> s(k.hw);
  for (int b = 0; b < k.batch; ++b)
    for (int h = 0; h < k.heads; ++h)
      for (int i = 0; i < k.hw; ++i) {
        double m = -INFINITY, score_err = 0;
        for (int j = 0; j < k.hw; ++j) {
          double dot = 0, mag = 0;
          for (int d = 0; d < 64; ++d) {
            dot += at(b, 0, h, d, i) * at(b, 1, h, d, j);
            mag += std::fabs(at(b, 0, h, d, i) * at(b, 1, h, d, j));
          }
          s[j] = dot * p.scale;
          m = std::fmax(m, s[j]);
          score_err = std::fmax(score_err, 2 * 66 * std::ldexp(1.0, -24) * mag * p.scale);
        }
        double l = 0;
        for (int j = 0; j < k.hw; ++j) l += (s[j] = std::exp(s[j] - m));
        for (int d = 0; d < 64; ++d) {
          double ref = 0, mag = 0, abs_v = 0;
          for (int j = 0; j < k.hw; ++j) {
            ref += s[j] * at(b, 2, h, d, j);
            mag += s[j] * std::fabs(at(b, 2, h, d, j));
            abs_v += std::fabs(at(b, 2, h, d, j));
          }
          ref /= l;
          const double bound = eps * std::fabs(ref) + (eps + 2 * score_err + f32) * mag / l +
                               sub * abs_v / l;
          const double got = to_f(dst[kidx::attn_out_offset_nhwc(b, h, d, i, c, 64, k.hw)]);
          const double err = std::fabs(got - ref) / bound;
          worst = std::isnan(err) ? INFINITY : std::fmax(worst, err);
        }
      }
  char what[200];
  std::snprintf(what, sizeof what,
                "attention_nhwc_mma %s: b%d heads %d hw %d spread %.1f: worst error %.2f of "
                "its bound (P and output rounding + fp32)",
                dtype, k.batch, k.heads, k.hw, k.spread, worst);
  check(e == cudaSuccess && cudaGetLastError() == cudaSuccess && worst <= 1.0, what);
  cudaFree(dq);
  cudaFree(dst);
}

// Image 0 of a batch of 3 and the same image alone: the same bits (blocks never mix images).
template <typename T>
void test_attention_batch_invariance(const char* dtype, kernels::HalfType type,
                                     std::mt19937& rng) {
  const AttnCase k{3, 2, 100, 1.5f};
  const auto qkv = random_qkv<T>(k, rng);
  const size_t image_out = static_cast<size_t>(k.hw) * 64 * k.heads;
  T* dq = device_copy(qkv);
  T *batched, *alone;
  cudaMalloc(&batched, 3 * image_out * sizeof(T));
  cudaMalloc(&alone, image_out * sizeof(T));
  const cudaError_t e3 =
      kernels::attention_nhwc_mma_forward(attn_params(k, type, dq, batched), nullptr);
  const cudaError_t e1 = kernels::attention_nhwc_mma_forward(
      attn_params({1, 2, 100, 1.5f}, type, dq, alone), nullptr);
  const bool same = std::memcmp(batched, alone, image_out * sizeof(T)) == 0;
  check(e3 == cudaSuccess && e1 == cudaSuccess && cudaGetLastError() == cudaSuccess && same,
        std::string("attention_nhwc_mma ") + dtype +
            ": image 0 of a batch of 3 = the image alone, bit for bit");
  cudaFree(dq);
  cudaFree(batched);
  cudaFree(alone);
}

// What the kernel refuses (the NHWC mode then runs attention_nhwc_forward).
void test_attention_launcher() {
  void* buf;
  cudaMalloc(&buf, 4096);
  const kernels::AttentionNhwcParams p =
      attn_params({1, 2, 4, 1.0f}, kernels::HalfType::kF16, buf, buf);
  auto refused = [](const kernels::AttentionNhwcParams& q) {
    return !kernels::attention_nhwc_mma_supports(q) &&
           kernels::attention_nhwc_mma_forward(q, nullptr) == cudaErrorInvalidValue;
  };
  kernels::AttentionNhwcParams q = p;
  q.dim_head = 32;
  q.heads = 4;
  const bool dim = refused(q);
  q = p;
  q.channels = 192;
  const bool channels = refused(q);
  q = p;
  q.qkv = static_cast<char*>(buf) + 8;
  const bool align = refused(q);
  q = p;
  q.scale = 0.0f;
  const bool scale = refused(q);
  check(kernels::attention_nhwc_mma_supports(p) && dim && channels && align && scale,
        "attention_nhwc_mma refuses dim_head != 64, channels != heads x 64, unaligned qkv, "
        "scale <= 0");
  cudaFree(buf);
}

// A warp-collective primitive reached by only part of a warp fails the launch (last: the
// failure is sticky, as a device fault is).
__global__ void partial_warp_kernel(float* out) {
  if (threadIdx.x >= 16) return;
  const uint32_t a[4] = {}, b[2] = {};
  const float c[4] = {};
  float d[4];
  sm80::mma_m16n8k16<__half>(d, a, b, c);
  out[threadIdx.x] = d[0];
}

void test_partial_warp() {
  float* out;
  cudaMalloc(&out, 32 * sizeof(float));
  CM4J_LAUNCH(partial_warp_kernel, 1, 32, nullptr, out);
  check(cudaGetLastError() == cudaErrorLaunchFailure, "mma.sync by half a warp fails the launch");
}

// Shared memory passed between warps with a warp-collective call between the write and the
// read (as block_sum's scratch is between two calls): thread t reads the next warp's thread's
// slot, shuffles, then overwrites its own (WAR: each warp's read must come before the next
// warp's write), or writes its own, shuffles, then reads the next warp's (RAW). Without a
// barrier after the shuffle, the result depends on which warp goes first: the emulator must
// show it (wrong values in some of 16 blocks). In thread order, with every thread one call
// per round, every read and every write would be done in the round before the shuffle's, and
// neither race would show.
template <bool kReadFirst, bool kBarrier>
__global__ void warp_race_kernel(int* out) {
  __shared__ int slots[128];
  const int t = threadIdx.x, other = (t + 32) % 128;
  slots[t] = t;
  __syncthreads();
  int v = 0;
  if (kReadFirst) v = slots[other];
  else slots[t] = -t;
  v = __shfl_xor_sync(0xffffffffu, v, 1);
  if (kBarrier) __syncthreads();
  if (kReadFirst) slots[t] = -1;
  else v = slots[other];
  out[blockIdx.x * 128 + t] = v;
}

// How many of 16 blocks gave some thread a wrong value.
template <bool kReadFirst, bool kBarrier>
int warp_race_blocks(int* out) {
  CM4J_LAUNCH((warp_race_kernel<kReadFirst, kBarrier>), 16, 128, nullptr, out);
  std::vector<int> got(16 * 128);
  cudaMemcpy(got.data(), out, got.size() * sizeof(int), cudaMemcpyDeviceToHost);
  int wrong = 0;
  for (int b = 0; b < 16; ++b) {
    bool ok = true;
    for (int t = 0; t < 128; ++t) {
      const int want = kReadFirst ? ((t ^ 1) + 32) % 128 : -((t + 32) % 128);
      ok = ok && got[b * 128 + t] == want;
    }
    wrong += ok ? 0 : 1;
  }
  return wrong;
}

void test_warp_races() {
  int* out;
  cudaMalloc(&out, 16 * 128 * sizeof(int));
  const int war = warp_race_blocks<true, false>(out), raw = warp_race_blocks<false, false>(out);
  const int war_synced = warp_race_blocks<true, true>(out);
  const int raw_synced = warp_race_blocks<false, true>(out);
  check(war > 0 && raw > 0 && war_synced == 0 && raw_synced == 0,
        "shared memory between warps without a barrier gives wrong values (write after read in " +
            std::to_string(war) + " of 16 blocks, read after write in " + std::to_string(raw) +
            "), with it none");
  cudaFree(out);
}

// Dynamic shared memory as the wgmma conv's stages take it: above 48 KiB a launch fails
// without the kernel's attribute, as on the device; with it, each block finds the buffer
// poisoned (0xff) and only 16-byte aligned, 16 bytes past a 1 KiB boundary, which
// align_shared<1024> rounds up to one.
__global__ void dynamic_shared_kernel(uint32_t* out) {
  CM4J_DYNAMIC_SHARED(smem);
  if (threadIdx.x != 0) return;
  uint32_t* o = out + blockIdx.x * 3;
  o[0] = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(smem) % 1024);
  o[1] = static_cast<uint32_t>(
      reinterpret_cast<uintptr_t>(cm4j::kernels::sm90::align_shared<1024>(smem)) % 1024);
  o[2] = smem[100];
  smem[100] = 0;  // the next block must find the poison again
}

void test_dynamic_shared() {
  constexpr int kBytes = 64 * 1024;
  uint32_t* out;
  cudaMalloc(&out, 6 * sizeof(uint32_t));
  CM4J_LAUNCH_SHARED(dynamic_shared_kernel, 2, 32, kBytes, nullptr, out);
  const bool refused = cudaGetLastError() == cudaErrorInvalidValue;
  const bool allowed = cudaFuncSetAttribute(dynamic_shared_kernel,
                                            cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            kBytes) == cudaSuccess;
  CM4J_LAUNCH_SHARED(dynamic_shared_kernel, 2, 32, kBytes, nullptr, out);
  const bool ran = cudaGetLastError() == cudaSuccess;
  uint32_t got[6] = {};
  cudaMemcpy(got, out, sizeof got, cudaMemcpyDeviceToHost);
  bool ok = refused && allowed && ran;
  for (int b = 0; b < 2; ++b)
    ok = ok && got[3 * b] == 16 && got[3 * b + 1] == 0 && got[3 * b + 2] == 0xff;
  check(ok, "dynamic shared memory: 64 KiB refused without the attribute, then poisoned for "
            "each block and 16 bytes past 1 KiB, which align_shared<1024> rounds up");
  cudaFree(out);
}

// Programmatic dependent launch (launch_mode.h): inside a ProgrammaticLaunches scope every
// launch is programmatic (counted), and each of its threads must have waited for the kernel
// before (CM4J_WAIT_PREVIOUS_KERNEL) by its first barrier and by its end; outside, launches
// are plain and a kernel need not wait.
__global__ void waiting_kernel(int* out) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  __syncthreads();
  out[threadIdx.x] += 1;
}

__global__ void late_wait_kernel(int* out) {
  __syncthreads();
  CM4J_WAIT_PREVIOUS_KERNEL();
  out[threadIdx.x] += 1;
}

__global__ void no_wait_kernel(int* out) { out[threadIdx.x] += 1; }

// A device fault ends its process's CUDA context; the emulator's can be reset, so that each
// fault case starts clean.
void forget_fault() {
  cm4j_emu::state().sticky_error = cudaSuccess;
  cudaGetLastError();
}

// An L2 load (__ldcg, as split-K's last split and the fused norm's last block read the
// others' sums) of a float2 from an address that is not 8-byte aligned faults on the device,
// though x86 would load it.
__global__ void ldcg_kernel(const float* in, int offset, float* out) {
  out[0] = __ldcg(reinterpret_cast<const float2*>(in + offset)).y;
}

void test_misaligned_ldcg() {
  float* buf;
  cudaMalloc(&buf, 8 * sizeof(float));
  CM4J_LAUNCH(ldcg_kernel, 1, 1, nullptr, buf, 2, buf + 6);
  const bool aligned_ok = cudaGetLastError() == cudaSuccess;
  CM4J_LAUNCH(ldcg_kernel, 1, 1, nullptr, buf, 1, buf + 6);
  check(aligned_ok && cudaGetLastError() == cudaErrorLaunchFailure,
        "__ldcg of a float2 from a 4-byte-aligned address fails the launch, 8-byte aligned not");
  forget_fault();
  cudaFree(buf);
}

// Arrival counting across blocks (block_reduce.cuh's last_to_arrive, as the one-launch
// split-K and norm coefficients use it): each of 8 blocks stores one value per thread; the
// last block to count sums them all. kPerThreadFence: every thread fences its own store and
// thread 0 counts with no barrier between, which lets the count overtake a slower warp's
// store on a card; the emulator, which runs blocks one at a time and so would still give the
// right sum, must fail that launch.
template <bool kPerThreadFence>
__global__ void arrival_kernel(float* values, unsigned* counter, float* sum) {
  values[blockIdx.x * 128 + threadIdx.x] = static_cast<float>(blockIdx.x * 128 + threadIdx.x);
  bool last;
  if (kPerThreadFence) {
    __threadfence();
    bool mine = false;
    if (threadIdx.x == 0) mine = atomicInc(counter, gridDim.x - 1) == gridDim.x - 1;
    last = __syncthreads_or(mine);
  } else {
    last = cm4j::kernels::last_to_arrive([&] { return counter; }, gridDim.x);
  }
  if (!last || threadIdx.x != 0) return;
  float s = 0.0f;
  for (unsigned i = 0; i < gridDim.x * 128; ++i) s += __ldcg(values + i);
  *sum += s;
}

void test_arrival_counting() {
  float *values, *sum;
  unsigned* counter;
  cudaMalloc(&values, 8 * 128 * sizeof(float));
  cudaMalloc(&sum, sizeof(float));
  cudaMalloc(&counter, sizeof(unsigned));
  const unsigned zero = 0;
  const float none = 0.0f;
  cudaMemcpy(counter, &zero, sizeof zero, cudaMemcpyHostToDevice);
  cudaMemcpy(sum, &none, sizeof none, cudaMemcpyHostToDevice);
  CM4J_LAUNCH(arrival_kernel<false>, 8, 128, nullptr, values, counter, sum);
  CM4J_LAUNCH(arrival_kernel<false>, 8, 128, nullptr, values, counter, sum);
  const bool counted = cudaGetLastError() == cudaSuccess;
  float got = 0.0f;
  unsigned rest = 1;
  cudaMemcpy(&got, sum, sizeof got, cudaMemcpyDeviceToHost);
  cudaMemcpy(&rest, counter, sizeof rest, cudaMemcpyDeviceToHost);
  CM4J_LAUNCH(arrival_kernel<true>, 8, 128, nullptr, values, counter, sum);
  const bool refused = cudaGetLastError() == cudaErrorLaunchFailure;
  forget_fault();
  const float want = 2.0f * (1023.0f * 1024.0f / 2.0f);  // 0 + 1 + ... + 1023, twice
  check(counted && got == want && rest == 0 && refused,
        "last_to_arrive: one block of 8 sums every block's stores, twice, counter back at "
        "zero; per-thread fences with thread 0 counting and no barrier between fail the "
        "launch");
  cudaFree(values);
  cudaFree(sum);
  cudaFree(counter);
}

void test_programmatic_launch() {
  int* out;
  cudaMalloc(&out, 32 * sizeof(int));
  const int zeros[32] = {};
  cudaMemcpy(out, zeros, sizeof zeros, cudaMemcpyHostToDevice);
  const long before = cm4j_emu::state().programmatic_launches;
  {
    cm4j::kernels::ProgrammaticLaunches programmatic(true);
    CM4J_LAUNCH(waiting_kernel, 1, 32, nullptr, out);
  }
  const bool waited = cudaGetLastError() == cudaSuccess &&
                      cm4j_emu::state().programmatic_launches == before + 1;
  CM4J_LAUNCH(late_wait_kernel, 1, 32, nullptr, out);
  CM4J_LAUNCH(no_wait_kernel, 1, 32, nullptr, out);
  const bool plain = cudaGetLastError() == cudaSuccess &&
                     cm4j_emu::state().programmatic_launches == before + 1;
  int got[32] = {};
  cudaMemcpy(got, out, sizeof got, cudaMemcpyDeviceToHost);
  bool ran = true;
  for (int v : got) ran = ran && v == 3;
  bool refused = true;
  for (auto kernel : {late_wait_kernel, no_wait_kernel}) {
    {
      cm4j::kernels::ProgrammaticLaunches programmatic(true);
      CM4J_LAUNCH(kernel, 1, 32, nullptr, out);
    }
    refused = refused && cudaGetLastError() == cudaErrorLaunchFailure;
    forget_fault();
  }
  check(waited && plain && ran && refused,
        "programmatic launches: counted inside the scope only; a thread that reaches a barrier "
        "or its end before CM4J_WAIT_PREVIOUS_KERNEL() fails the launch");
  cudaFree(out);
}

// The swizzle is a permutation of each row's chunks, and the 8 rows an ldmatrix reads at one
// logical chunk land in 8 distinct 16-byte bank groups.
template <int CHUNKS>
void test_swizzle() {
  bool ok = true;
  for (int r0 = 0; r0 < 64; r0 += 8)
    for (int c = 0; c < CHUNKS; ++c) {
      unsigned groups = 0;
      for (int r = r0; r < r0 + 8; ++r)
        groups |= 1u << ((sm80::swizzled_offset<CHUNKS>(r, c) * 2 / 16) % 8);
      ok = ok && groups == 0xffu;
    }
  for (int r = 0; r < 64; ++r) {
    unsigned seen = 0;
    for (int c = 0; c < CHUNKS; ++c) {
      const int off = sm80::swizzled_offset<CHUNKS>(r, c);
      ok = ok && off / (CHUNKS * 8) == r && off % 8 == 0;
      seen |= 1u << (off % (CHUNKS * 8) / 8);
    }
    ok = ok && seen == (1u << CHUNKS) - 1;
  }
  check(ok, "swizzled_offset<" + std::to_string(CHUNKS) +
                ">: a permutation, conflict-free ldmatrix rows");
}

// The wgmma matrix descriptor's fields at the PTX ISA's bits (address / 16 at 0, LBO / 16 at
// 16, SBO / 16 at 32, the swizzle at 62: 1 = 128-byte, 2 = 64-byte, 3 = 32-byte; an address
// keeps its low 18 bits), and the emulator's reading of them back (which rebuilds a host
// address from those 18 bits).
void test_matrix_desc() {
  namespace sm90 = cm4j::kernels::sm90;
  bool ok = sm90::matrix_desc(0x400, 16, 512, 64) == 0x8000002000010040ull &&
            sm90::matrix_desc(0x12380, 4096, 1024, 128) == 0x4000004001001238ull &&
            sm90::matrix_desc(0x7fff0, 32, 256, 32) == 0xc000001000023fffull;  // bit 18 dropped
  alignas(1024) static char shared[2048];
  const uint64_t d = sm90::smem_desc(shared + 96, 4096, 1024, 128);
  const cm4j_emu::MatrixDesc m = cm4j_emu::decode_desc(d, shared);
  ok = ok && m.start == reinterpret_cast<uintptr_t>(shared + 96) && m.lbo == 4096 &&
       m.sbo == 1024 && m.swizzle == 128;
  check(ok, "wgmma matrix descriptor: fields at the PTX ISA's bits, read back by the emulator");
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  test_dynamic_shared();  // first: a kernel's fault later on is sticky, as on the device
  test_programmatic_launch();
  test_misaligned_ldcg();
  test_swizzle<4>();
  test_swizzle<8>();
  test_swizzle<16>();
  test_matrix_desc();
  const Load loads[] = {Load::kX4, Load::kX1, Load::kX2Trans, Load::kX2};
  const char* how[] = {"A ldmatrix.x4, B x4.trans", "A and B ldmatrix.x1 (B .trans)",
                       "A x4, B x2.trans", "A x4, B ldmatrix.x2 from [n][k]"};
  for (int i = 0; i < 4; ++i) {
    test_mma<__half>("fp16", loads[i], how[i], rng);
    test_mma<__nv_bfloat16>("bf16", loads[i], how[i], rng);
  }
  test_cp_async();
  // Tails everywhere: M and c_out not multiples of the tile, K not a multiple of 32 (nor of
  // the splits' share).
  // The fused norm (last column) with padding, the seam of a cat, upsampling, stride 2, a
  // 1x1 conv, M and K tails, and splits. The wide 128x128 tile (last column) with c_out
  // tails, a cat with upsampling, splits and the fused norm; the same for the wgmma kernel
  // (last column), and one full 128x128 tile of it (144 pixels: one M tail).
  //                          b  c1  c2  h  w  co  k  s  p  up     scale    bbc  res    tile splits norm
  const ConvCase convs[] = {{{2, 16, 8,  5, 7, 24, 3, 1, 1, true,  0.75f}, 40, true,  64,  1, 0},
                            {{3, 32, 0,  9, 9, 72, 1, 2, 0, false, 1.0f},  0,  true,  128, 1, 0},
                            {{1, 40, 0,  6, 6, 8,  3, 2, 1, false, 2.0f},  8,  false, 128, 1, 0},
                            {{2, 8,  16, 4, 4, 64, 3, 1, 1, true,  1.0f},  0,  false, 64,  1, 0},
                            {{2, 64, 0,  4, 4, 72, 3, 1, 1, false, 1.0f},  80, true,  64,  3, 0},
                            {{1, 40, 16, 3, 5, 16, 3, 1, 1, true,  0.5f},  0,  true,  64,  4, 0},
                            {{2, 24, 0,  7, 5, 40, 3, 1, 1, false, 1.0f},  40, true,  128, 1, 2},
                            {{2, 16, 24, 4, 6, 32, 3, 1, 1, false, 1.0f},  0,  false, 64,  1, 2},
                            {{1, 16, 8,  3, 4, 24, 3, 1, 1, true,  1.0f},  0,  true,  64,  2, 1},
                            {{2, 32, 0,  6, 6, 16, 3, 2, 1, false, 1.0f},  0,  false, 64,  1, 2},
                            {{3, 96, 0,  5, 5, 64, 1, 1, 0, false, 0.5f},  0,  true,  128, 3, 1},
                            {{2, 16, 8,  5, 7, 136, 3, 1, 1, true, 0.75f}, 144, true, 128, 1, 0, 128},
                            {{3, 96, 0,  5, 5, 64, 1, 1, 0, false, 0.5f},  0,  true,  128, 3, 1, 128},
                            {{2, 24, 0,  7, 5, 200, 3, 1, 1, false, 1.0f}, 200, true, 128, 2, 2, 128},
                            {{2, 16, 8,  5, 7, 136, 3, 1, 1, true, 0.75f}, 144, true, 128, 1, 0, 128, true},
                            {{3, 96, 0,  5, 5, 64, 1, 1, 0, false, 0.5f},  0,  true,  128, 3, 1, 128, true},
                            {{2, 24, 0,  7, 5, 200, 3, 1, 1, false, 1.0f}, 200, true, 128, 2, 2, 128, true},
                            {{1, 64, 0,  12, 12, 128, 3, 1, 1, false, 1.0f}, 0, false, 128, 1, 0, 128, true}};
  for (const ConvCase& k : convs) {
    test_conv<__half>("fp16", cm4j::kernels::HalfType::kF16, k, rng);
    test_conv<__nv_bfloat16>("bf16", cm4j::kernels::HalfType::kBF16, k, rng);
  }
  test_conv_batch_invariance<__half>("fp16", cm4j::kernels::HalfType::kF16, rng);
  test_conv_batch_invariance<__nv_bfloat16>("bf16", cm4j::kernels::HalfType::kBF16, rng);
  test_conv_launcher();
  // One tile; query and key tails over several tiles (the max growing between them); the
  // 2x2 level (4 keys of 64); scores large enough that exp without the max would overflow.
  const AttnCase attns[] = {{1, 1, 64, 1.5f}, {2, 2, 100, 1.5f}, {1, 3, 4, 1.5f},
                            {1, 1, 200, 6.0f}};
  for (const AttnCase& k : attns) {
    test_attention<__half>("fp16", cm4j::kernels::HalfType::kF16, k, rng);
    test_attention<__nv_bfloat16>("bf16", cm4j::kernels::HalfType::kBF16, k, rng);
  }
  test_attention_batch_invariance<__half>("fp16", cm4j::kernels::HalfType::kF16, rng);
  test_attention_batch_invariance<__nv_bfloat16>("bf16", cm4j::kernels::HalfType::kBF16, rng);
  test_attention_launcher();
  test_warp_races();
  test_arrival_counting();
  test_partial_warp();
  std::printf("test_mma_emu: %d failure(s)\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}

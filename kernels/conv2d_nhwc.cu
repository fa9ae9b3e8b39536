// conv2d over NHWC fp16/bf16 activations on tensor cores (WMMA m16n16k16, fp32
// accumulation). The GEMM's rows are output pixels and its columns output channels, so
// the result tile is stored channels-last as the next op reads it. Not yet run on a GPU:
// reachable only in the NHWC mode (CM4J_CUDA_KERNELS=candidate with fp16/bf16).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include "conv2d_nhwc.cuh"
#include "indexing.cuh"
#include "launch.cuh"
#include "nhwc_device.cuh"

namespace cm4j {
namespace kernels {

namespace {

using nhwc_detail::from_f32;
using nhwc_detail::to_f32;

constexpr int kBM = 64;        // output pixels per block (GEMM rows)
constexpr int kBN = 64;        // output channels per block (GEMM columns)
constexpr int kBK = 32;        // reduction slice per shared-memory stage (two MMA k-steps)
constexpr int kThreads = 128;  // 4 warps as 2 x 2, each owning a 32 x 32 block of outputs
constexpr int kWM = 16, kWN = 16, kWK = 16;  // the MMA shape
// Row padding (in elements) against bank conflicts; rows stay multiples of 16 bytes as
// load/store_matrix_sync require, and every fragment pointer lands on 32 bytes.
constexpr int kPadLp = 8;
constexpr int kPadF32 = 4;
constexpr int kLdA = kBK + kPadLp;   // a_tile[pixel][k]
constexpr int kLdB = kBN + kPadLp;   // b_tile[k][co]
constexpr int kLdC = kBN + kPadF32;  // c_tile[pixel][co]
static_assert(kThreads % kBK == 0, "a thread's A-tile column (its k) must not change between loads");
static_assert((kBM * kBK) % kThreads == 0 && (kBK * kBN) % kThreads == 0 &&
                  (kBM * kBN) % kThreads == 0 && kBM <= kThreads,
              "tile loads");
static_assert((kLdA * 2) % 16 == 0 && (kLdB * 2) % 16 == 0 && (kLdC * 4) % 16 == 0,
              "WMMA leading dimensions must be multiples of 16 bytes");
static_assert((kWM * kLdA * 2) % 32 == 0 && (kWK * kLdB * 2) % 32 == 0 &&
                  (kWM * kLdC * 4) % 32 == 0,
              "fragment rows must start on 32-byte boundaries");

template <typename T, int KS>
__global__ void __launch_bounds__(kThreads) conv2d_nhwc_kernel(const Conv2dNhwcParams p) {
  CM4J_WAIT_PREVIOUS_KERNEL();
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  namespace wmma = nvcuda::wmma;
  __shared__ __align__(32) T a_tile[kBM][kLdA];      // gathered [pixel, k]
  __shared__ __align__(32) T b_tile[kBK][kLdB];      // weights  [k, co]
  __shared__ __align__(32) float c_tile[kBM][kLdC];  // results  [pixel, co]
  __shared__ kidx::Pixel pixels[kBM];                // the block's output pixels

  const int ks = KS > 0 ? KS : p.kernel;
  const int c_in = p.c_in1 + p.c_in2;
  const int M = p.batch * p.h_out * p.w_out;  // output pixels
  const int N = p.c_out;
  const int K = c_in * ks * ks;
  const int m0 = blockIdx.x * kBM;
  const int n0 = blockIdx.y * kBN;
  const int t = threadIdx.x;
  const int warp = t / 32;
  const int wm = warp / 2, wn = warp % 2;  // this warp's 32 x 32 quarter of the tile
  const kidx::ConvGeometry g{p.c_in1, p.c_in2, p.h_in, p.w_in, ks, p.stride, p.pad,
                             p.upsample, p.h_out, p.w_out};
  const T* src1 = static_cast<const T*>(p.src1);
  const T* src2 = static_cast<const T*>(p.src2);
  const T* w = static_cast<const T*>(p.weight);

  // Decoded once per block; a pixel past the end is marked with b = -1.
  if (t < kBM) {
    const int m = m0 + t;
    kidx::Pixel px = kidx::pixel_of(m < M ? m : 0, p.h_out, p.w_out);
    if (m >= M) px.b = -1;
    pixels[t] = px;
  }
  __syncthreads();

  wmma::fragment<wmma::accumulator, kWM, kWN, kWK, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  const T zero = from_f32<T>(0.0f);
  const int a_col = kidx::tile_coord(t, 0, kThreads, kBK).col;  // this thread's k in the slice
  for (int k0 = 0; k0 < K; k0 += kBK) {
    // Activations: consecutive threads take consecutive k, i.e. consecutive channels of one
    // source pixel (coalesced within a tap).
    const int k = k0 + a_col;
    const kidx::Tap tap = kidx::tap_of_nhwc(k < K ? k : 0, ks, c_in);
#pragma unroll 4
    for (int i = 0; i < kBM * kBK / kThreads; ++i) {
      const int row = kidx::tile_coord(t, i, kThreads, kBK).row;
      const kidx::Pixel px = pixels[row];
      T v = zero;
      if (k < K && px.b >= 0) {
        int which = 0;
        const int64_t off = kidx::conv_gather_offset_nhwc(g, px, tap, &which);
        if (off >= 0) v = which == 0 ? src1[off] : src2[off];
      }
      a_tile[row][a_col] = v;
    }
    // Weights: global reads along co (contiguous in the packed layout).
#pragma unroll 4
    for (int i = 0; i < kBK * kBN / kThreads; ++i) {
      const kidx::TileCoord c = kidx::tile_coord(t, i, kThreads, kBN);
      const int kw = k0 + c.row, co = n0 + c.col;
      b_tile[c.row][c.col] = (kw < K && co < N) ? w[kidx::conv_packed_index(kw, co, N)] : zero;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; kk += kWK) {
      wmma::fragment<wmma::matrix_a, kWM, kWN, kWK, T, wmma::row_major> a[2];
      wmma::fragment<wmma::matrix_b, kWM, kWN, kWK, T, wmma::row_major> b[2];
#pragma unroll
      for (int i = 0; i < 2; ++i)
        wmma::load_matrix_sync(a[i], &a_tile[wm * 32 + i * kWM][kk], kLdA);
#pragma unroll
      for (int j = 0; j < 2; ++j)
        wmma::load_matrix_sync(b[j], &b_tile[kk][wn * 32 + j * kWN], kLdB);
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(&c_tile[wm * 32 + i * kWM][wn * 32 + j * kWN], acc[i][j], kLdC,
                              wmma::mem_row_major);
  __syncthreads();
  // Epilogue in fp32, one rounding on store. Consecutive threads take consecutive channels
  // of one pixel: coalesced NHWC stores.
  const T* res = static_cast<const T*>(p.residual);
  T* dst = static_cast<T*>(p.dst);
  for (int i = 0; i < kBM * kBN / kThreads; ++i) {
    const kidx::TileCoord c = kidx::tile_coord(t, i, kThreads, kBN);
    const int m = m0 + c.row, co = n0 + c.col;
    if (m >= M || co >= N) continue;
    const int64_t off = kidx::nhwc_pixel(m, co, N);
    float v = c_tile[c.row][c.col];
    if (p.bias) v += p.bias[co];
    if (p.bias_bc)
      v += p.bias_bc[kidx::bias_bc_offset(pixels[c.row].b, co, p.c_out, p.bias_bc_stride)];
    if (res) v += to_f32(res[off]);
    dst[off] = from_f32<T>(v * p.out_scale);
  }
#else
  __trap();  // tensor-core path built for an architecture below sm_80
#endif
}

template <typename T>
cudaError_t launch(const Conv2dNhwcParams& p, cudaStream_t stream) {
  const int m = p.batch * p.h_out * p.w_out;
  dim3 grid(kidx::ceil_div(m, kBM), kidx::ceil_div(p.c_out, kBN));
  if (grid.y > 65535) return cudaErrorInvalidValue;
  void (*kernel)(const Conv2dNhwcParams) = p.kernel == 1   ? conv2d_nhwc_kernel<T, 1>
                                           : p.kernel == 3 ? conv2d_nhwc_kernel<T, 3>
                                                           : conv2d_nhwc_kernel<T, 0>;
  CM4J_LAUNCH(kernel, grid, kThreads, stream, p);
  return cudaGetLastError();
}

}  // namespace

void conv2d_nhwc_pack_weight(const float* torch_w, int c_out, int c_in, int kernel,
                             float* packed) {
  const int k_total = c_in * kernel * kernel;
  for (int co = 0; co < c_out; ++co)
    for (int c = 0; c < c_in; ++c)
      for (int ky = 0; ky < kernel; ++ky)
        for (int kx = 0; kx < kernel; ++kx) {
          const int k_torch = (c * kernel + ky) * kernel + kx;
          const int k = kidx::k_of_nhwc({c, ky, kx}, kernel, c_in);
          packed[kidx::conv_packed_index(k, co, c_out)] =
              torch_w[kidx::conv_torch_index(k_torch, co, k_total)];
        }
}

cudaError_t conv2d_nhwc_forward(const Conv2dNhwcParams& p, cudaStream_t stream) {
  if (!conv2d_nhwc_params_ok(p) || p.norm) return cudaErrorInvalidValue;
  switch (p.type) {
    case HalfType::kF16: return launch<__half>(p, stream);
    case HalfType::kBF16: return launch<__nv_bfloat16>(p, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace kernels
}  // namespace cm4j

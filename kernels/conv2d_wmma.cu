// conv2d on tensor cores (WMMA m16n16k16) for fp16 / bf16 operands with fp32 accumulation:
// the same implicit GEMM, gather and epilogue as conv2d.cu's tiled kernel, with the two
// operand tiles staged in shared memory as T and multiplied by warp-level MMA.
// Not yet verified on a GPU: reachable only when a backend is created with fp16/bf16.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include "conv2d.cuh"
#include "conv2d_gather.cuh"
#include "indexing.cuh"
#include "launch.cuh"

// Resource ceilings, per thread and per block, for every template instance on sm_80 and
// sm_90 (kernels/dev/ptxas-check.sh holds ptxas to them, and to no spills):
// ptxas budget: conv2d_wmma_kernel 88 registers, 27136 bytes shared
// ptxas budget: convert_kernel 16 registers, 0 bytes shared

namespace cm4j {
namespace kernels {

namespace {

using conv_detail::gather;
using conv_detail::geometry;
using conv_detail::store_output;

constexpr int kBM = 64;        // output channels per block
constexpr int kBN = 64;        // output pixels per block
constexpr int kBK = 32;        // reduction slice per shared-memory stage (two MMA k-steps)
constexpr int kThreads = 128;  // 4 warps as 2 x 2, each owning a 32 x 32 block of outputs
constexpr int kWM = 16, kWN = 16, kWK = 16;  // the MMA shape
// Row padding (in elements) against bank conflicts; rows stay multiples of 16 bytes as
// load/store_matrix_sync require, and every fragment pointer lands on 32 bytes.
constexpr int kPadLp = 8;
constexpr int kPadF32 = 4;
constexpr int kLdA = kBK + kPadLp;   // a_tile[m][k]
constexpr int kLdB = kBN + kPadLp;   // b_tile[k][n]
constexpr int kLdC = kBN + kPadF32;  // c_tile[m][n]
static_assert(kThreads % kBN == 0, "a thread's B-tile column must not change between loads");
static_assert((kBK * kBM) % kThreads == 0 && (kBK * kBN) % kThreads == 0, "tile loads");
static_assert((kLdA * 2) % 16 == 0 && (kLdB * 2) % 16 == 0 && (kLdC * 4) % 16 == 0,
              "WMMA leading dimensions must be multiples of 16 bytes");
static_assert((kWM * kLdA * 2) % 32 == 0 && (kWK * kLdB * 2) % 32 == 0 &&
                  (kWM * kLdC * 4) % 32 == 0,
              "fragment rows must start on 32-byte boundaries");

template <typename T>
__device__ __forceinline__ T to_operand(float v);
template <>
__device__ __forceinline__ __half to_operand<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 to_operand<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

template <typename T, int KS>
__global__ void __launch_bounds__(kThreads) conv2d_wmma_kernel(const Conv2dParams p) {
  CM4J_WAIT_PREVIOUS_KERNEL();
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  namespace wmma = nvcuda::wmma;
  __shared__ __align__(32) T a_tile[kBM][kLdA];         // weights  [m, k]
  __shared__ __align__(32) T b_tile[kBK][kLdB];         // gathered [k, n]
  __shared__ __align__(32) float c_tile[kBM][kLdC];     // results  [m, n]

  const int ks = KS > 0 ? KS : p.kernel;
  const int M = p.c_out;
  const int N = p.batch * p.h_out * p.w_out;
  const int K = (p.c_in1 + p.c_in2) * ks * ks;
  const int m0 = blockIdx.y * kBM;
  const int n0 = blockIdx.x * kBN;
  const int t = threadIdx.x;
  const int warp = t / 32;
  const int wm = warp / 2, wn = warp % 2;  // this warp's 32 x 32 quarter of the tile
  const kidx::ConvGeometry g = geometry(p);
  const T* w = static_cast<const T*>(p.weight_lp);

  const int n_load = n0 + kidx::tile_coord(t, 0, kThreads, kBN).col;
  const bool n_ok = n_load < N;
  const kidx::Pixel px = kidx::pixel_of(n_ok ? n_load : 0, p.h_out, p.w_out);

  wmma::fragment<wmma::accumulator, kWM, kWN, kWK, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  const T zero = to_operand<T>(0.0f);
  for (int k0 = 0; k0 < K; k0 += kBK) {
    // Weights: global reads along m (contiguous in the packed layout), stored as [m][k].
#pragma unroll 4
    for (int i = 0; i < kBK * kBM / kThreads; ++i) {
      kidx::TileCoord c = kidx::tile_coord(t, i, kThreads, kBM);
      int k = k0 + c.row, m = m0 + c.col;
      a_tile[c.col][c.row] = (k < K && m < M) ? w[kidx::conv_packed_index(k, m, M)] : zero;
    }
#pragma unroll 4
    for (int i = 0; i < kBK * kBN / kThreads; ++i) {
      kidx::TileCoord c = kidx::tile_coord(t, i, kThreads, kBN);
      int k = k0 + c.row;
      b_tile[c.row][c.col] = (n_ok && k < K) ? to_operand<T>(gather<KS>(p, g, px, k)) : zero;
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
  // Consecutive threads take consecutive pixels of one channel: coalesced stores.
  for (int i = 0; i < kBM * kBN / kThreads; ++i) {
    kidx::TileCoord c = kidx::tile_coord(t, i, kThreads, kBN);
    const int m = m0 + c.row, n = n0 + c.col;
    if (m < M && n < N) store_output(p, c_tile[c.row][c.col], m, kidx::pixel_of(n, p.h_out, p.w_out));
  }
#else
  __trap();  // tensor-core path built for an architecture below sm_80
#endif
}

template <typename T>
__global__ void convert_kernel(const float* src, T* dst, int64_t n) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = to_operand<T>(src[i]);
}

template <typename T>
cudaError_t launch(const Conv2dParams& p, cudaStream_t stream) {
  const int n = p.batch * p.h_out * p.w_out;
  dim3 grid(kidx::ceil_div(n, kBN), kidx::ceil_div(p.c_out, kBM));
  if (grid.y > 65535) return cudaErrorInvalidValue;
  void (*kernel)(const Conv2dParams) = p.kernel == 1   ? conv2d_wmma_kernel<T, 1>
                                       : p.kernel == 3 ? conv2d_wmma_kernel<T, 3>
                                                       : conv2d_wmma_kernel<T, 0>;
  CM4J_LAUNCH(kernel, grid, kThreads, stream, p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t conv2d_wmma_forward(const Conv2dParams& p, cudaStream_t stream) {
  if (!p.weight_lp) return cudaErrorInvalidValue;
  switch (p.operand) {
    case ConvOperand::kF16: return launch<__half>(p, stream);
    case ConvOperand::kBF16: return launch<__nv_bfloat16>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t conv2d_convert_weight(const float* src, void* dst, int64_t count, ConvOperand op,
                                  cudaStream_t stream) {
  if (!src || !dst || count < 1) return cudaErrorInvalidValue;
  int64_t blocks = (count + 255) / 256;
  if (blocks > 65535 * 16) blocks = 65535 * 16;
  const unsigned grid = static_cast<unsigned>(blocks);
  switch (op) {
    case ConvOperand::kF16:
      CM4J_LAUNCH(convert_kernel<__half>, grid, 256, stream, src, static_cast<__half*>(dst), count);
      break;
    case ConvOperand::kBF16:
      CM4J_LAUNCH(convert_kernel<__nv_bfloat16>, grid, 256, stream, src,
                  static_cast<__nv_bfloat16*>(dst), count);
      break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace cm4j

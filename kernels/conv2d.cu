#include "conv2d.cuh"

#include "conv2d_gather.cuh"
#include "indexing.cuh"
#include "launch.cuh"

namespace cm4j {
namespace kernels {

namespace {

using conv_detail::gather;
using conv_detail::geometry;
using conv_detail::store_output;

constexpr int kBM = 64;       // output channels per block (GEMM rows)
constexpr int kBN = 64;       // output pixels per block (GEMM columns)
constexpr int kBK = 16;       // reduction slice held in shared memory
constexpr int kThreads = 256; // 16 x 16 threads, each owning a 4 x 4 block of outputs
constexpr int kTM = 4, kTN = 4;
static_assert(kThreads % kBN == 0, "a thread's B-tile column must not change between loads");
static_assert((kBM / kTM) * (kBN / kTN) == kThreads, "thread grid must cover the tile");
static_assert((kBK * kBM) % kThreads == 0 && (kBK * kBN) % kThreads == 0, "tile loads");

// out[m, n] = sum_k Wp[k, m] * X[k, n]: one block computes a kBM x kBN tile, staging kBK
// rows of both operands in shared memory per step.
template <int KS>
__global__ void __launch_bounds__(kThreads) conv2d_tiled_kernel(const Conv2dParams p) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  __shared__ __align__(16) float a_tile[kBK][kBM];  // weights   [k, m]
  __shared__ __align__(16) float b_tile[kBK][kBN];  // gathered  [k, n]

  const int ks = KS > 0 ? KS : p.kernel;
  const int M = p.c_out;
  const int N = p.batch * p.h_out * p.w_out;
  const int K = (p.c_in1 + p.c_in2) * ks * ks;
  const int m0 = blockIdx.y * kBM;
  const int n0 = blockIdx.x * kBN;
  const int t = threadIdx.x;
  const kidx::ConvGeometry g = geometry(p);

  // Every B-tile element this thread loads is in the same column (pixel).
  const int n_load = n0 + kidx::tile_coord(t, 0, kThreads, kBN).col;
  const bool n_ok = n_load < N;
  const kidx::Pixel px = kidx::pixel_of(n_ok ? n_load : 0, p.h_out, p.w_out);

  const int tm = t / (kBN / kTN);  // this thread's outputs: rows tm*kTM.., cols tn*kTN..
  const int tn = t % (kBN / kTN);
  float acc[kTM][kTN];
#pragma unroll
  for (int i = 0; i < kTM; ++i)
#pragma unroll
    for (int j = 0; j < kTN; ++j) acc[i][j] = 0.0f;

  for (int k0 = 0; k0 < K; k0 += kBK) {
#pragma unroll
    for (int i = 0; i < kBK * kBM / kThreads; ++i) {
      kidx::TileCoord c = kidx::tile_coord(t, i, kThreads, kBM);
      int k = k0 + c.row, m = m0 + c.col;
      a_tile[c.row][c.col] =
          (k < K && m < M) ? p.weight[kidx::conv_packed_index(k, m, M)] : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < kBK * kBN / kThreads; ++i) {
      kidx::TileCoord c = kidx::tile_coord(t, i, kThreads, kBN);
      int k = k0 + c.row;
      b_tile[c.row][c.col] = (n_ok && k < K) ? gather<KS>(p, g, px, k) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      float a[kTM], b[kTN];
#pragma unroll
      for (int i = 0; i < kTM; ++i) a[i] = a_tile[kk][tm * kTM + i];
#pragma unroll
      for (int j = 0; j < kTN; ++j) b[j] = b_tile[kk][tn * kTN + j];
#pragma unroll
      for (int i = 0; i < kTM; ++i)
#pragma unroll
        for (int j = 0; j < kTN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < kTM; ++i) {
    int m = m0 + tm * kTM + i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < kTN; ++j) {
      int n = n0 + tn * kTN + j;
      if (n < N) store_output(p, acc[i][j], m, kidx::pixel_of(n, p.h_out, p.w_out));
    }
  }
}

// Reference variant: one thread per output element, the whole reduction in one loop.
__global__ void conv2d_direct_kernel(const Conv2dParams p) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  const int M = p.c_out;
  const int64_t hw = static_cast<int64_t>(p.h_out) * p.w_out;
  const int64_t total = static_cast<int64_t>(p.batch) * M * hw;
  const int K = (p.c_in1 + p.c_in2) * p.kernel * p.kernel;
  const kidx::ConvGeometry g = geometry(p);
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < total;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    // o = ((b * M + m) * h_out + y) * w_out + x
    int64_t pix = o % hw;
    int64_t bm = o / hw;
    int m = static_cast<int>(bm % M);
    kidx::Pixel q;
    q.b = static_cast<int>(bm / M);
    q.y = static_cast<int>(pix / p.w_out);
    q.x = static_cast<int>(pix % p.w_out);
    float acc = 0.0f;
    for (int k = 0; k < K; ++k)
      acc = fmaf(p.weight[kidx::conv_packed_index(k, m, M)], gather<0>(p, g, q, k), acc);
    store_output(p, acc, m, q);
  }
}

bool valid(const Conv2dParams& p) {
  if (p.batch < 1 || p.c_in1 < 1 || p.c_in2 < 0 || p.c_out < 1) return false;
  if (p.h_in < 1 || p.w_in < 1 || p.kernel < 1 || p.stride < 1 || p.pad < 0) return false;
  if ((p.c_in2 > 0) != (p.src2 != nullptr)) return false;
  if (!p.src1 || !p.dst) return false;
  if (p.bias_bc && p.bias_bc_stride != 0 && p.bias_bc_stride < p.c_out) return false;
  if (p.operand == ConvOperand::kF32 ? !p.weight : !p.weight_lp) return false;
  if (p.h_out != kidx::conv_out_size(p.h_in, p.kernel, p.stride, p.pad, p.upsample) ||
      p.w_out != kidx::conv_out_size(p.w_in, p.kernel, p.stride, p.pad, p.upsample) ||
      p.h_out < 1 || p.w_out < 1)
    return false;
  // GEMM indices are int: N = B*h_out*w_out and K = c_in*k*k must fit.
  int64_t n = static_cast<int64_t>(p.batch) * p.h_out * p.w_out;
  int64_t k = static_cast<int64_t>(p.c_in1 + p.c_in2) * p.kernel * p.kernel;
  return n + kBN < INT32_MAX && k * p.c_out < INT32_MAX;
}

}  // namespace

void conv2d_pack_weight(const float* torch_w, int c_out, int c_in, int kernel, float* packed) {
  const int k_total = c_in * kernel * kernel;
  for (int co = 0; co < c_out; ++co)
    for (int k = 0; k < k_total; ++k)
      packed[kidx::conv_packed_index(k, co, c_out)] =
          torch_w[kidx::conv_torch_index(k, co, k_total)];
}

cudaError_t conv2d_forward(const Conv2dParams& p, Conv2dVariant variant, cudaStream_t stream) {
  if (!valid(p)) return cudaErrorInvalidValue;
  if (p.operand != ConvOperand::kF32) return conv2d_wmma_forward(p, stream);
  if (variant == Conv2dVariant::kDirect) {
    int64_t total = static_cast<int64_t>(p.batch) * p.c_out * p.h_out * p.w_out;
    int64_t blocks = (total + 255) / 256;
    if (blocks > 65535 * 32) blocks = 65535 * 32;  // grid-stride loop covers the rest
    CM4J_LAUNCH(conv2d_direct_kernel, static_cast<unsigned>(blocks), 256, stream, p);
    return cudaGetLastError();
  }
  const int n = p.batch * p.h_out * p.w_out;
  dim3 grid(kidx::ceil_div(n, kBN), kidx::ceil_div(p.c_out, kBM));
  if (grid.y > 65535) return cudaErrorInvalidValue;
  switch (p.kernel) {
    case 1: CM4J_LAUNCH(conv2d_tiled_kernel<1>, grid, kThreads, stream, p); break;
    case 3: CM4J_LAUNCH(conv2d_tiled_kernel<3>, grid, kThreads, stream, p); break;
    default: CM4J_LAUNCH(conv2d_tiled_kernel<0>, grid, kThreads, stream, p); break;
  }
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace cm4j

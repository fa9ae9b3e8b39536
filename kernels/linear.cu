#include "linear.cuh"

#include "indexing.cuh"
#include "launch.cuh"

namespace cm4j {
namespace kernels {

namespace {

constexpr int kWarps = 8;

__device__ __forceinline__ float silu(float v) { return v / (1.0f + expf(-v)); }

// One warp per output column n and ROWS rows of x from blockIdx.y * ROWS: lanes stride over
// k (coalesced reads of the x rows and the w row, w's read once for all ROWS), then a
// shuffle reduction per row. Any ROWS gives each output the same order of operations.
template <int ROWS>
__global__ void __launch_bounds__(kWarps * 32) linear_kernel(const LinearParams p) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  const int lane = threadIdx.x % 32;
  const int n = blockIdx.x * kWarps + threadIdx.x / 32;
  const int m0 = blockIdx.y * ROWS;
  const int rows = min(ROWS, p.m - m0);
  if (n >= p.n) return;  // whole warps leave together
  const float* x = p.x + static_cast<int64_t>(m0) * p.k;
  const float* w = p.w + static_cast<int64_t>(n) * p.k;
  float s[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) s[r] = 0.0f;
  for (int k = lane; k < p.k; k += 32) {
    const float wk = w[k];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      if (r >= rows) break;
      const float xv = x[static_cast<int64_t>(r) * p.k + k];
      s[r] = fmaf(p.silu_input ? silu(xv) : xv, wk, s[r]);
    }
  }
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    if (r >= rows) break;
    float v = s[r];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane != 0) continue;
    if (p.bias) v += p.bias[n];
    if (p.silu_output) v = silu(v);
    const int64_t at = static_cast<int64_t>(m0 + r) * p.n + n;
    if (p.add) v += p.add[at];
    p.y[at] = v;
  }
}

}  // namespace

cudaError_t linear_forward(const LinearParams& p, cudaStream_t stream, LinearVariant variant) {
  if (p.m < 1 || p.n < 1 || p.k < 1 || p.m > 65535 || !p.x || !p.w || !p.y)
    return cudaErrorInvalidValue;
  if (variant == LinearVariant::kRowTiles && p.m > 1) {
    dim3 grid(kidx::ceil_div(p.n, kWarps), kidx::ceil_div(p.m, kLinearTileRows));
    CM4J_LAUNCH(linear_kernel<kLinearTileRows>, grid, kWarps * 32, stream, p);
  } else {
    dim3 grid(kidx::ceil_div(p.n, kWarps), p.m);
    CM4J_LAUNCH(linear_kernel<1>, grid, kWarps * 32, stream, p);
  }
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace cm4j

#include "linear.cuh"

#include "indexing.cuh"
#include "launch.cuh"

namespace cm4j {
namespace kernels {

namespace {

constexpr int kWarps = 8;

__device__ __forceinline__ float silu(float v) { return v / (1.0f + expf(-v)); }

// One warp per output element: lanes stride over k (coalesced reads of the x row and the
// w row), then a shuffle reduction.
__global__ void __launch_bounds__(kWarps * 32) linear_kernel(const LinearParams p) {
  const int lane = threadIdx.x % 32;
  const int n = blockIdx.x * kWarps + threadIdx.x / 32;
  const int m = blockIdx.y;
  if (n >= p.n) return;  // whole warps leave together
  const float* x = p.x + static_cast<int64_t>(m) * p.k;
  const float* w = p.w + static_cast<int64_t>(n) * p.k;
  float s = 0.0f;
  for (int k = lane; k < p.k; k += 32) {
    const float xv = p.silu_input ? silu(x[k]) : x[k];
    s = fmaf(xv, w[k], s);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (lane != 0) return;
  if (p.bias) s += p.bias[n];
  if (p.silu_output) s = silu(s);
  const int64_t at = static_cast<int64_t>(m) * p.n + n;
  if (p.add) s += p.add[at];
  p.y[at] = s;
}

}  // namespace

cudaError_t linear_forward(const LinearParams& p, cudaStream_t stream) {
  if (p.m < 1 || p.n < 1 || p.k < 1 || p.m > 65535 || !p.x || !p.w || !p.y)
    return cudaErrorInvalidValue;
  dim3 grid(kidx::ceil_div(p.n, kWarps), p.m);
  CM4J_LAUNCH(linear_kernel, grid, kWarps * 32, stream, p);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace cm4j

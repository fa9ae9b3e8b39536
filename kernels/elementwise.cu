#include "elementwise.cuh"

#include "indexing.cuh"
#include "launch.cuh"

namespace cm4j {
namespace kernels {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535LL * 16;  // grid-stride loops cover larger tensors

unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < kMaxBlocks ? b : kMaxBlocks);
}

__global__ void avg_pool2_kernel(const float* x, float* y, int64_t n, int h, int w) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < n;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t s = kidx::pool_src_offset(o, h, w);
    y[o] = ((x[s] + x[s + 1]) + (x[s + w] + x[s + w + 1])) * 0.25f;
  }
}

__global__ void upsample_nearest2_kernel(const float* x, float* y, int64_t n, int h, int w) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < n;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[o] = x[kidx::upsample_src_offset(o, h, w)];
}

}  // namespace

cudaError_t avg_pool2_forward(const float* x, float* y, int batch, int channels, int h, int w,
                              cudaStream_t stream) {
  if (!x || !y || batch < 1 || channels < 1 || h < 2 || w < 2) return cudaErrorInvalidValue;
  const int64_t n = static_cast<int64_t>(batch) * channels * (h / 2) * (w / 2);
  CM4J_LAUNCH(avg_pool2_kernel, blocks_for(n), kThreads, stream, x, y, n, h, w);
  return cudaGetLastError();
}

cudaError_t upsample_nearest2_forward(const float* x, float* y, int batch, int channels, int h,
                                      int w, cudaStream_t stream) {
  if (!x || !y || batch < 1 || channels < 1 || h < 1 || w < 1) return cudaErrorInvalidValue;
  const int64_t n = static_cast<int64_t>(batch) * channels * (2 * h) * (2 * w);
  CM4J_LAUNCH(upsample_nearest2_kernel, blocks_for(n), kThreads, stream, x, y, n, h, w);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace cm4j

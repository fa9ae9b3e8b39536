// Grid-stride loops over NHWC fp16/bf16, one output element per iteration, consecutive
// threads on consecutive channels. Not yet run on a GPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "elementwise_nhwc.cuh"
#include "indexing.cuh"
#include "launch.cuh"
#include "nhwc_device.cuh"

namespace cm4j {
namespace kernels {

namespace {

using nhwc_detail::from_f32;
using nhwc_detail::to_f32;

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535LL * 16;  // grid-stride loops cover larger tensors

unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < kMaxBlocks ? b : kMaxBlocks);
}

#define CM4J_GRID_STRIDE(o, n)                                                         \
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < n; \
       o += static_cast<int64_t>(gridDim.x) * blockDim.x)

template <typename T>
__global__ void avg_pool2_nhwc_kernel(const T* x, T* y, int64_t n, int h, int w, int channels) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  const int64_t row = static_cast<int64_t>(w) * channels;
  CM4J_GRID_STRIDE(o, n) {
    const int64_t s = kidx::pool_src_offset_nhwc(o, h, w, channels);
    // The summation order of elementwise.cu's NCHW kernel.
    const float v = ((to_f32(x[s]) + to_f32(x[s + channels])) +
                     (to_f32(x[s + row]) + to_f32(x[s + row + channels]))) *
                    0.25f;
    y[o] = from_f32<T>(v);
  }
}

template <typename T>
__global__ void upsample_nearest2_nhwc_kernel(const T* x, T* y, int64_t n, int h, int w,
                                              int channels) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  CM4J_GRID_STRIDE(o, n) y[o] = x[kidx::upsample_src_offset_nhwc(o, h, w, channels)];
}

// o walks the NHWC storage; the NCHW side is read (or written) with a stride of HW.
template <typename T>
__global__ void nchw_to_nhwc_kernel(const float* x, T* y, int64_t n, int channels, int hw) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  CM4J_GRID_STRIDE(o, n) y[o] = from_f32<T>(x[kidx::nhwc_to_nchw(o, channels, hw)]);
}

template <typename T>
__global__ void nhwc_to_nchw_kernel(const T* x, float* y, int64_t n, int channels, int hw) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  CM4J_GRID_STRIDE(o, n) y[kidx::nhwc_to_nchw(o, channels, hw)] = to_f32(x[o]);
}

#undef CM4J_GRID_STRIDE

}  // namespace

cudaError_t avg_pool2_nhwc_forward(const void* x, void* y, HalfType type, int batch,
                                   int channels, int h, int w, cudaStream_t stream) {
  if (!x || !y || batch < 1 || channels < 1 || h < 2 || w < 2) return cudaErrorInvalidValue;
  const int64_t n = static_cast<int64_t>(batch) * (h / 2) * (w / 2) * channels;
  switch (type) {
    case HalfType::kF16:
      CM4J_LAUNCH(avg_pool2_nhwc_kernel<__half>, blocks_for(n), kThreads, stream,
                  static_cast<const __half*>(x), static_cast<__half*>(y), n, h, w, channels);
      break;
    case HalfType::kBF16:
      CM4J_LAUNCH(avg_pool2_nhwc_kernel<__nv_bfloat16>, blocks_for(n), kThreads, stream,
                  static_cast<const __nv_bfloat16*>(x), static_cast<__nv_bfloat16*>(y), n, h, w,
                  channels);
      break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t upsample_nearest2_nhwc_forward(const void* x, void* y, HalfType type, int batch,
                                           int channels, int h, int w, cudaStream_t stream) {
  if (!x || !y || batch < 1 || channels < 1 || h < 1 || w < 1) return cudaErrorInvalidValue;
  const int64_t n = static_cast<int64_t>(batch) * (2 * h) * (2 * w) * channels;
  switch (type) {
    case HalfType::kF16:
      CM4J_LAUNCH(upsample_nearest2_nhwc_kernel<__half>, blocks_for(n), kThreads, stream,
                  static_cast<const __half*>(x), static_cast<__half*>(y), n, h, w, channels);
      break;
    case HalfType::kBF16:
      CM4J_LAUNCH(upsample_nearest2_nhwc_kernel<__nv_bfloat16>, blocks_for(n), kThreads, stream,
                  static_cast<const __nv_bfloat16*>(x), static_cast<__nv_bfloat16*>(y), n, h, w,
                  channels);
      break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t nchw_to_nhwc(const float* x, void* y, HalfType type, int batch, int channels,
                         int hw, cudaStream_t stream) {
  if (!x || !y || batch < 1 || channels < 1 || hw < 1) return cudaErrorInvalidValue;
  const int64_t n = static_cast<int64_t>(batch) * channels * hw;
  switch (type) {
    case HalfType::kF16:
      CM4J_LAUNCH(nchw_to_nhwc_kernel<__half>, blocks_for(n), kThreads, stream, x,
                  static_cast<__half*>(y), n, channels, hw);
      break;
    case HalfType::kBF16:
      CM4J_LAUNCH(nchw_to_nhwc_kernel<__nv_bfloat16>, blocks_for(n), kThreads, stream, x,
                  static_cast<__nv_bfloat16*>(y), n, channels, hw);
      break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t nhwc_to_nchw(const void* x, float* y, HalfType type, int batch, int channels,
                         int hw, cudaStream_t stream) {
  if (!x || !y || batch < 1 || channels < 1 || hw < 1) return cudaErrorInvalidValue;
  const int64_t n = static_cast<int64_t>(batch) * channels * hw;
  switch (type) {
    case HalfType::kF16:
      CM4J_LAUNCH(nhwc_to_nchw_kernel<__half>, blocks_for(n), kThreads, stream,
                  static_cast<const __half*>(x), y, n, channels, hw);
      break;
    case HalfType::kBF16:
      CM4J_LAUNCH(nhwc_to_nchw_kernel<__nv_bfloat16>, blocks_for(n), kThreads, stream,
                  static_cast<const __nv_bfloat16*>(x), y, n, channels, hw);
      break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace cm4j

// Device conversions between fp32 and the NHWC mode's storage types, for the *_nhwc.cu
// kernels (the rounding is the CUDA intrinsics' round-to-nearest-even).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace cm4j {
namespace kernels {
namespace nhwc_detail {

template <typename T>
__device__ __forceinline__ float to_f32(T v);
template <>
__device__ __forceinline__ float to_f32<__half>(__half v) {
  return __half2float(v);
}
template <>
__device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// A group norm's map of one value, as group_norm_nhwc's apply kernel writes it and as a
// conv with the norm fused into its gather applies it (Conv2dNhwcParams::norm): one function,
// so that fused and unfused give the same bits. fmaf spelled out: the same rounding whether
// or not the compiler contracts.
__device__ __forceinline__ float norm_act(float v, float center, float mul, float add, bool silu) {
  const float y = fmaf(v - center, mul, add);
  return silu ? y / (1.0f + expf(-y)) : y;
}

}  // namespace nhwc_detail
}  // namespace kernels
}  // namespace cm4j

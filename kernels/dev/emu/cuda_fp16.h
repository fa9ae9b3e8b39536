// CPU stand-in for <cuda_fp16.h> (see cuda_runtime.h in this folder): __half on GCC's
// _Float16, whose conversions round to nearest even like __float2half_rn.
#pragma once

struct __half {
  _Float16 v;
};

inline __half __float2half_rn(float f) { return __half{static_cast<_Float16>(f)}; }
inline float __half2float(__half h) { return static_cast<float>(h.v); }

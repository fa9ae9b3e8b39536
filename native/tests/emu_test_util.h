// What the kernel tests on the CPU emulator's headers share (test_mma_emu,
// test_group_norm_emu): a check that counts failures, and the half types' conversions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdio>
#include <string>

namespace cm4j_emu_test {

inline int g_failures = 0;

inline void check(bool ok, const std::string& what) {
  if (!ok) ++g_failures;
  std::printf("%s: %s\n", ok ? "ok  " : "FAIL", what.c_str());
}

template <typename T>
T to_b16(float v);
template <>
inline __half to_b16<__half>(float v) { return __float2half_rn(v); }
template <>
inline __nv_bfloat16 to_b16<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
inline float to_f(__half v) { return __half2float(v); }
inline float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

}  // namespace cm4j_emu_test

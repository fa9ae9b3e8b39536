// The sm_90a warpgroup MMA (wgmma) of conv2d_nhwc_wgmma.cu, one spelling for both builds:
// inline PTX under nvcc (sm_90a only: wgmma is an architecture-specific feature), the CPU
// emulator's stand-ins (kernels/dev/emu/sm90.h) under CM4J_CUDA_EMULATION. A warpgroup is 4
// consecutive warps (128 threads, the first warp's index a multiple of 4); its wgmma reads A
// and B from shared memory through 64-bit matrix descriptors and accumulates a 64 x N fp32
// tile in registers, laid out as mma.sync's m16n8 accumulators (warp w of the group: rows
// 16w..16w+15) repeated over the N / 8 column tiles.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "mma_sm80.cuh"

#if defined(CM4J_CUDA_EMULATION)
#include "sm90.h"
#endif

namespace cm4j {
namespace kernels {
namespace sm90 {

// A matrix descriptor (PTX ISA, "Matrix Descriptor Format"): bits 0-13 the operand's
// shared-memory address / 16, 16-29 the leading and 32-45 the stride byte offset / 16, 62-63
// the swizzle (1: 128-byte, 2: 64-byte, 3: 32-byte rows); base offset 0, so each swizzle
// pattern (8 rows) must start at an address aligned to its size.
__host__ __device__ constexpr uint64_t matrix_desc(uint32_t smem_addr, uint32_t lbo, uint32_t sbo,
                                                   int swizzle_bytes) {
  const uint64_t layout = swizzle_bytes == 128 ? 1 : swizzle_bytes == 64 ? 2 : 3;
  return static_cast<uint64_t>((smem_addr & 0x3ffff) >> 4) |
         (static_cast<uint64_t>((lbo >> 4) & 0x3fff) << 16) |
         (static_cast<uint64_t>((sbo >> 4) & 0x3fff) << 32) | (layout << 62);
}

// The descriptor of an operand starting at p (a generic pointer into a __shared__ array).
__device__ __forceinline__ uint64_t smem_desc(const void* p, uint32_t lbo, uint32_t sbo,
                                              int swizzle_bytes) {
#if defined(CM4J_CUDA_EMULATION)
  const uint32_t addr = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p));
#else
  const uint32_t addr = sm80::smem_addr(p);
#endif
  return matrix_desc(addr, lbo, sbo, swizzle_bytes);
}

// p rounded up to the next shared-memory address that is a multiple of BYTES: dynamic shared
// memory is only promised 16-byte alignment, and a swizzle pattern must start on its size.
template <int BYTES>
__device__ __forceinline__ unsigned char* align_shared(unsigned char* p) {
#if defined(CM4J_CUDA_EMULATION)
  const uint32_t addr = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p));
#else
  const uint32_t addr = sm80::smem_addr(p);
#endif
  return p + ((BYTES - addr % BYTES) % BYTES);
}

#if !defined(CM4J_CUDA_EMULATION) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define CM4J_SM90A 1
#endif

// Makes this thread's generic-proxy writes to shared memory (cp.async, st.shared) visible to
// the async proxy wgmma reads through; then a barrier publishes them to the warpgroup.
__device__ __forceinline__ void fence_proxy_async() {
#if defined(CM4J_CUDA_EMULATION)
  cm4j_emu::fence_proxy_async();
#elif defined(CM4J_SM90A)
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// wgmma.fence: orders this thread's earlier accesses to the accumulator registers before the
// wgmmas that follow (required before the first wgmma touching accumulators written since;
// shared memory takes fence_proxy_async).
__device__ __forceinline__ void wgmma_fence() {
#if defined(CM4J_SM90A)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void wgmma_commit() {
#if defined(CM4J_CUDA_EMULATION)
  cm4j_emu::wgmma_commit();
#elif defined(CM4J_SM90A)
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}

// Waits until every committed wgmma group but the newest N has completed (their
// accumulators final and their shared-memory operands read).
template <int N>
__device__ __forceinline__ void wgmma_wait() {
#if defined(CM4J_CUDA_EMULATION)
  cm4j_emu::wgmma_wait(N);
#elif defined(CM4J_SM90A)
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}

// Keeps the compiler from moving accesses to the accumulators across a wgmma boundary (the
// registers are written asynchronously between a wgmma and its wait).
template <int N>
__device__ __forceinline__ void fence_accumulators(float (&d)[N]) {
#if defined(CM4J_SM90A)
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
#else
  (void)d;
#endif
}

#define CM4J_WGMMA_ACC4(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3])
#define CM4J_WGMMA_N128(TYPE)                                                                \
  asm volatile(                                                                              \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                       \
      "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " "                       \
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "              \
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "     \
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "     \
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "    \
      "%64, %65, p, 1, 1, 0, 1;\n}\n"                                                      \
      : CM4J_WGMMA_ACC4(0), CM4J_WGMMA_ACC4(4), CM4J_WGMMA_ACC4(8), CM4J_WGMMA_ACC4(12),     \
        CM4J_WGMMA_ACC4(16), CM4J_WGMMA_ACC4(20), CM4J_WGMMA_ACC4(24), CM4J_WGMMA_ACC4(28),  \
        CM4J_WGMMA_ACC4(32), CM4J_WGMMA_ACC4(36), CM4J_WGMMA_ACC4(40), CM4J_WGMMA_ACC4(44),  \
        CM4J_WGMMA_ACC4(48), CM4J_WGMMA_ACC4(52), CM4J_WGMMA_ACC4(56), CM4J_WGMMA_ACC4(60)   \
      : "l"(desc_a), "l"(desc_b), "r"(1))

// d += A B: wgmma.mma_async.sync.aligned.m64n128k16.f32.T.T, T = __half or __nv_bfloat16,
// A (64 x 16) K-major and B (16 x 128) MN-major (imm-trans-b 1) from shared memory, d
// accumulated (scale-d 1). `a_hint` and `b_hint` point into A's and B's shared arrays, for
// the emulator to rebuild host addresses from the descriptors; the device ignores them.
template <typename T>
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], uint64_t desc_a, uint64_t desc_b,
                                                 const void* a_hint, const void* b_hint) {
#if defined(CM4J_CUDA_EMULATION)
  cm4j_emu::wgmma_m64k16<T, 128, true>(d, desc_a, desc_b, a_hint, b_hint);
#elif defined(CM4J_SM90A)
  (void)a_hint;
  (void)b_hint;
  if constexpr (std::is_same<T, __half>::value)
    CM4J_WGMMA_N128("f16");
  else
    CM4J_WGMMA_N128("bf16");
#else
  (void)d, (void)desc_a, (void)desc_b, (void)a_hint, (void)b_hint;
  __trap();  // built for an architecture without wgmma
#endif
}

#undef CM4J_WGMMA_N128
#undef CM4J_WGMMA_ACC4

}  // namespace sm90
}  // namespace kernels
}  // namespace cm4j

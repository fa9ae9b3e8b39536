// The sm_80 warp-level primitives of the pipelined tensor-core kernels, one spelling for both
// builds: inline PTX under nvcc, the CPU emulator's warp-collective stand-ins
// (kernels/dev/emu/sm80.h) under CM4J_CUDA_EMULATION. Fragment layouts are the PTX ISA's
// (see sm80.h for who holds what); shared-memory arguments are generic pointers into
// __shared__ arrays.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#if defined(CM4J_CUDA_EMULATION)
#include "sm80.h"
#endif

namespace cm4j {
namespace kernels {
namespace sm80 {

#if !defined(CM4J_CUDA_EMULATION)
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
#endif

// ldmatrix.sync.aligned.m8n8.x{1,2,4}{.trans}.shared.b16: lanes 8j..8j+7 pass the rows of
// 8x8 matrix j (16 bytes each, 16-byte aligned); r[j] is this lane's pair of matrix j.
template <bool TRANS>
__device__ __forceinline__ void ldmatrix_x1(uint32_t (&r)[1], const void* row) {
#if defined(CM4J_CUDA_EMULATION)
  cm4j_emu::ldmatrix<1, TRANS>(r, row);
#else
  if (TRANS)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
                 : "=r"(r[0]) : "r"(smem_addr(row)) : "memory");
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n"
                 : "=r"(r[0]) : "r"(smem_addr(row)) : "memory");
#endif
}

template <bool TRANS>
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const void* row) {
#if defined(CM4J_CUDA_EMULATION)
  cm4j_emu::ldmatrix<2, TRANS>(r, row);
#else
  if (TRANS)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(smem_addr(row)) : "memory");
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(smem_addr(row)) : "memory");
#endif
}

template <bool TRANS>
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
#if defined(CM4J_CUDA_EMULATION)
  cm4j_emu::ldmatrix<4, TRANS>(r, row);
#else
  if (TRANS)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(row))
                 : "memory");
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(row))
                 : "memory");
#endif
}

// d = a b + c: mma.sync.aligned.m16n8k16.row.col.f32.T.T.f32, T = __half or __nv_bfloat16.
template <typename T>
__device__ __forceinline__ void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4],
                                             const uint32_t (&b)[2], const float (&c)[4]) {
#if defined(CM4J_CUDA_EMULATION)
  cm4j_emu::mma_m16n8k16<T>(d, a, b, c);
#else
  if constexpr (std::is_same<T, __half>::value)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]),
          "f"(c[1]), "f"(c[2]), "f"(c[3]));
  else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]),
          "f"(c[1]), "f"(c[2]), "f"(c[3]));
#endif
}

// cp.async of BYTES (4, 8: .ca; 16: .cg, bypassing L1) from global to shared, both aligned
// to BYTES; when !valid nothing is read and the destination is zero-filled (src-size 0).
template <int BYTES>
__device__ __forceinline__ void cp_async(void* smem, const void* gmem, bool valid) {
  static_assert(BYTES == 4 || BYTES == 8 || BYTES == 16, "cp.async copies 4, 8 or 16 bytes");
#if defined(CM4J_CUDA_EMULATION)
  cm4j_emu::cp_async(smem, gmem, BYTES, valid ? BYTES : 0);
#else
  const int src_bytes = valid ? BYTES : 0;
  if (BYTES == 16)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
                 :: "r"(smem_addr(smem)), "l"(gmem), "r"(src_bytes) : "memory");
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n"
                 :: "r"(smem_addr(smem)), "l"(gmem), "n"(BYTES), "r"(src_bytes) : "memory");
#endif
}

// Closes the group of this thread's cp.asyncs issued since the last commit.
__device__ __forceinline__ void cp_async_commit() {
#if defined(CM4J_CUDA_EMULATION)
  cm4j_emu::cp_async_commit();
#else
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits until at most N of this thread's committed groups are still in flight. Other
// threads' copies are visible only after a __syncthreads that follows their waits.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(CM4J_CUDA_EMULATION)
  cm4j_emu::cp_async_wait(N);
#else
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// XOR swizzle of 16-byte chunks in a shared-memory tile of rows of `chunks` 16-byte chunks
// (CHUNKS = 4, 8 or 16, i.e. rows of 64, 128 or 256 bytes): chunk c of row r is stored at
// chunk c ^ f(r), so that the 8 rows an ldmatrix reads at the same logical chunk fall in 8
// distinct 16-byte bank groups (no bank conflict), and each chunk stays one aligned 16-byte
// cp.async destination. Returns the element offset (2-byte elements) of (row, chunk).
template <int CHUNKS>
__host__ __device__ __forceinline__ int swizzled_offset(int row, int chunk) {
  static_assert(CHUNKS == 4 || CHUNKS == 8 || CHUNKS == 16, "rows of 64, 128 or 256 bytes");
  // 128- and 256-byte rows: every row starts at bank 0, so rows r..r+7 must use 8 different
  // chunks of one 128-byte half (the XOR leaves the half as it is).
  // 64-byte rows: two rows share the 32 banks, so rows 2i and 2i+1 differ by their half.
  const int phase = CHUNKS >= 8 ? (row & 7) : ((row >> 1) & 3);
  return row * CHUNKS * 8 + ((chunk ^ phase) * 8);
}

// Whether a global pointer is `bytes`-aligned; null passes (an absent operand is not
// accessed). For the launchers' checks: 4 and 8 for the block epilogue's paired accesses
// (two fp16/bf16 outputs, two fp32 partial sums), 16 for a cp_async<16> source.
inline bool aligned(const void* q, int bytes) { return reinterpret_cast<uintptr_t>(q) % bytes == 0; }
inline bool aligned16(const void* q) { return aligned(q, 16); }

}  // namespace sm80
}  // namespace kernels
}  // namespace cm4j

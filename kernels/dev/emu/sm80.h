// CPU stand-ins for the sm_80 warp-level primitives that kernels/mma_sm80.cuh wraps
// (ldmatrix, mma.sync m16n8k16, cp.async with commit/wait groups); see cuda_runtime.h in this
// folder for the fibers they run on.
//
// ldmatrix and mma.sync are warp-collective, as on the device: every lane publishes its row
// address or its fragment registers, the warp meets at a barrier, and each lane then computes
// its own registers from the whole warp's, in the PTX ISA's fragment layout. A call that not
// all 32 lanes of a warp reach fails the launch. cp.async poisons its destination at issue
// and copies at the cp.async.wait_group that covers its group, so shared memory read before
// that wait (or overwritten while another thread still reads it) shows up as NaN.
#pragma once

#include <cstdint>
#include <cstring>

#include "cuda_bf16.h"
#include "cuda_fp16.h"
#include "cuda_runtime.h"

namespace cm4j_emu {

// Every lane of the caller's warp contributes `mine`; `all[l]` receives lane l's. Each slot
// also carries its lane's call count, so a lane that never made this call (exited, or
// diverged) is caught even when the barrier released without it.
template <int W>
inline void warp_collective(const char* what, const uint32_t (&mine)[W], uint32_t (&all)[32][W]) {
  static_assert(W < kWideWords, "exchange wider than the per-thread slot");
  Block& b = *block();
  const int me = b.current, w = me / 32;
  const size_t n = b.fibers.size();
  const long call = ++b.collectives[me];
  uint32_t* gen = &b.wide[(call & 1) * n * kWideWords];
  uint32_t* slot = gen + static_cast<size_t>(me) * kWideWords;
  std::memcpy(slot, mine, sizeof mine);
  slot[kWideWords - 1] = static_cast<uint32_t>(call);
  // One barrier: a lane can't rewrite this generation's slots before every lane has
  // reached the next call, i.e. has read these.
  warp_barrier();
  bool full = static_cast<size_t>(w + 1) * 32 <= n;
  for (int l = 0; l < 32 && full; ++l) {
    const uint32_t* other = gen + static_cast<size_t>(w * 32 + l) * kWideWords;
    full = other[kWideWords - 1] == static_cast<uint32_t>(call);
    std::memcpy(all[l], other, sizeof all[l]);
  }
  if (!full && state().sticky_error == cudaSuccess) {
    std::fprintf(stderr, "cuda-emu: %s not reached by all 32 lanes of warp %d\n", what, w);
    fail(cudaErrorLaunchFailure, "warp-collective call by a partial warp");
  }
}

inline int lane_id() { return block()->current % 32; }

// ldmatrix.sync.aligned.m8n8.x{NMAT}{.trans}.shared.b16: lanes 8j..8j+7 give the row
// addresses of matrix j; lane l receives, in r[j], row l/4, columns 2(l%4) and 2(l%4)+1 of
// matrix j (with .trans: column l/4, rows 2(l%4) and 2(l%4)+1), the lower index in the low
// half.
template <int NMAT, bool TRANS>
inline void ldmatrix(uint32_t (&r)[NMAT], const void* row) {
  const uint64_t p = reinterpret_cast<uintptr_t>(row);
  const uint32_t mine[2] = {static_cast<uint32_t>(p), static_cast<uint32_t>(p >> 32)};
  uint32_t all[32][2] = {};
  warp_collective("ldmatrix", mine, all);
  auto row_of = [&](int l) {
    const uintptr_t a =
        static_cast<uintptr_t>(all[l][0] | (static_cast<uint64_t>(all[l][1]) << 32));
    if (a % 16 != 0) fail(cudaErrorLaunchFailure, "ldmatrix: row address not 16-byte aligned");
    return reinterpret_cast<const uint16_t*>(a);
  };
  const int g = lane_id() / 4, t = lane_id() % 4;
  for (int j = 0; j < NMAT; ++j) {
    uint16_t lo, hi;
    if (!TRANS) {
      lo = row_of(8 * j + g)[2 * t];
      hi = row_of(8 * j + g)[2 * t + 1];
    } else {
      lo = row_of(8 * j + 2 * t)[g];
      hi = row_of(8 * j + 2 * t + 1)[g];
    }
    r[j] = lo | (static_cast<uint32_t>(hi) << 16);
  }
}

inline float b16_to_float(uint16_t v, __half) {
  __half h;
  std::memcpy(&h, &v, 2);
  return __half2float(h);
}
inline float b16_to_float(uint16_t v, __nv_bfloat16) { return __bfloat162float(__nv_bfloat16{v}); }

// mma.sync.aligned.m16n8k16.row.col.f32.T.T.f32, d = a b + c with a 16x16, b 16x8 (k x n),
// c and d 16x8 in fp32. Lane l, g = l/4, t = l%4, holds
//   a[0]: A[g][2t..2t+1]  a[1]: A[g+8][2t..2t+1]  a[2]: A[g][2t+8..]  a[3]: A[g+8][2t+8..]
//   b[0]: B[2t..2t+1][g]  b[1]: B[2t+8..2t+9][g]
//   c, d: C[g][2t], C[g][2t+1], C[g+8][2t], C[g+8][2t+1]
// The products are exact in fp32 (fp16 and bf16 have at most 11 significant bits); they are
// summed in k order onto c.
template <typename T>
inline void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                         const float (&c)[4]) {
  const uint32_t mine[6] = {a[0], a[1], a[2], a[3], b[0], b[1]};
  uint32_t all[32][6] = {};
  warp_collective("mma.sync", mine, all);
  // Element k of A's row r sits in lane 4 (r % 8) + (k % 8) / 2, register r / 8 + 2 (k / 8),
  // half k % 2; element k of B's column n in lane 4 n + (k % 8) / 2, register 4 + k / 8.
  auto el = [](uint32_t reg, int k) {
    return b16_to_float(static_cast<uint16_t>(reg >> (16 * (k % 2))), T());
  };
  const int g = lane_id() / 4, t = lane_id() % 4;
  for (int i = 0; i < 4; ++i) {
    const int row = g + 8 * (i / 2), col = 2 * t + i % 2;
    float s = c[i];
    for (int k = 0; k < 16; ++k) {
      const int q = (k % 8) / 2;
      s += el(all[4 * (row % 8) + q][row / 8 + 2 * (k / 8)], k) *
           el(all[4 * col + q][4 + k / 8], k);
    }
    d[i] = s;
  }
}

// cp.async of `bytes` (4, 8 or 16) from global src to shared dst, of which src_bytes are
// read and the rest zero-filled.
inline void cp_async(void* dst, const void* src, int bytes, int src_bytes) {
  if (reinterpret_cast<uintptr_t>(dst) % bytes != 0 ||
      reinterpret_cast<uintptr_t>(src) % bytes != 0)
    fail(cudaErrorLaunchFailure, "cp.async: address not aligned to the copy size");
  Block& b = *block();
  AsyncCopies& q = b.async_copies[b.current];
  std::memset(dst, 0xff, bytes);  // NaN in fp16, bf16 and fp32 until the wait
  q.pending.push_back({dst, src, bytes, src_bytes, q.committed});
}

inline void cp_async_commit() { ++block()->async_copies[block()->current].committed; }

// cp.async.wait_group n: every committed group but the newest n has landed. Copies issued
// after the last commit belong to no group and stay pending.
inline void cp_async_wait(int n) {
  AsyncCopies& q = block()->async_copies[block()->current];
  std::vector<AsyncCopy> still;
  for (const AsyncCopy& c : q.pending) {
    if (c.group < q.committed - n) {
      std::memcpy(c.dst, c.src, c.src_bytes);
      std::memset(static_cast<char*>(c.dst) + c.src_bytes, 0, c.bytes - c.src_bytes);
      block()->wgmma[block()->current].unfenced = true;  // sm90.h: a wgmma may not read it yet
    } else {
      still.push_back(c);
    }
  }
  q.pending.swap(still);
}

}  // namespace cm4j_emu

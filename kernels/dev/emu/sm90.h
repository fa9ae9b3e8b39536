// CPU stand-ins for the sm_90a warpgroup MMA that kernels/mma_sm90.cuh wraps
// (wgmma.mma_async with both operands in shared memory, its fence, commit and wait); see
// sm80.h for the warp-collective machinery they share.
//
// The operands are read through their 64-bit matrix descriptors exactly as the PTX ISA
// defines them (start address, leading and stride byte offsets, swizzle mode; "Matrix
// Descriptor Format" and "Canonical Layouts" of the asynchronous warpgroup MMA), so a
// descriptor the kernel builds wrong reads the wrong elements here too. The descriptor holds
// only 18 bits of a shared-memory address; the caller passes a pointer into the same shared
// array (`hint`), from which the host address is rebuilt. Swizzling XORs address bits as the
// device does, so each array must be aligned to its swizzle pattern (checked).
//
// The asynchrony is modelled: a wgmma reads its operands and writes its accumulators at the
// wgmma.wait_group that covers it, a block that ends with one never waited for fails, and a
// wgmma issued while cp.async-landed shared memory is not yet fenced for the async proxy
// fails. Not modelled: wgmma.fence (register ordering), and that all 4 warps of a
// warpgroup pass the same descriptors (each warp's 32 lanes are checked).
#pragma once

#include <cstdint>
#include <cstring>

#include "sm80.h"

namespace cm4j_emu {

// A decoded matrix descriptor: the operand's first byte (host address), its two strides in
// bytes, and the swizzle width in bytes (0: none).
struct MatrixDesc {
  uintptr_t start;
  uint32_t lbo, sbo;
  int swizzle;
};

inline MatrixDesc decode_desc(uint64_t bits, const void* hint) {
  MatrixDesc d;
  const uintptr_t h = reinterpret_cast<uintptr_t>(hint);
  const uint32_t addr18 = static_cast<uint32_t>(bits & 0x3fff) << 4;
  d.start = h + ((addr18 - static_cast<uint32_t>(h & 0x3ffff)) & 0x3ffff);
  d.lbo = static_cast<uint32_t>((bits >> 16) & 0x3fff) << 4;
  d.sbo = static_cast<uint32_t>((bits >> 32) & 0x3fff) << 4;
  if (((bits >> 49) & 7) != 0) fail(cudaErrorLaunchFailure, "wgmma: a base offset is not modelled");
  switch (bits >> 62) {
    case 1: d.swizzle = 128; break;
    case 2: d.swizzle = 64; break;
    case 3: d.swizzle = 32; break;
    default:
      fail(cudaErrorLaunchFailure, "wgmma: the interleaved (unswizzled) layout is not modelled");
  }
  // Swizzle<B,4,3>: the 16-byte chunk index within a row of `swizzle` bytes is XORed with the
  // row's index in the 8-row pattern, taken from the address bits above the row; a pattern
  // starts where those bits are 0.
  if (h % (8 * d.swizzle) != 0)
    fail(cudaErrorLaunchFailure, "wgmma: shared array not aligned to its swizzle pattern");
  return d;
}

inline uintptr_t swizzle(uintptr_t addr, int width) {
  const uintptr_t mask = static_cast<uintptr_t>(width / 16 - 1);
  return addr ^ (((addr >> 7) & mask) << 4);
}

// Element (row, k) of a K-major operand (A: row m; B without transpose: row n): 8-row groups
// SBO apart, rows `swizzle` bytes apart, k contiguous (its 16-byte chunks in a row).
inline const uint16_t* k_major(const MatrixDesc& d, int row, int k) {
  const uintptr_t a = d.start + (row / 8) * d.sbo + (row % 8) * d.swizzle + k * 2;
  return reinterpret_cast<const uint16_t*>(swizzle(a, d.swizzle));
}

// Element (k, n) of an MN-major B (transposed): n contiguous within a row of `swizzle` bytes,
// blocks of that many n LBO apart; k rows `swizzle` bytes apart in groups of 8, SBO apart.
inline const uint16_t* mn_major(const MatrixDesc& d, int k, int n) {
  const int per_row = d.swizzle / 2;
  const uintptr_t a = d.start + (n / per_row) * d.lbo + (n % per_row) * 2 + (k % 8) * d.swizzle +
                      (k / 8) * d.sbo;
  return reinterpret_cast<const uint16_t*>(swizzle(a, d.swizzle));
}

// wgmma.mma_async.sync.aligned.m64nNk16.f32.T.T with A (K-major) and B (K-major, or
// MN-major when TRANS_B) from shared memory: d += A B over this warpgroup's 64 x N tile. Warp
// w of the group (w = warp % 4), lane l (g = l / 4, t = l % 4) holds
//   d[4j + i] = D[16w + g + 8 (i / 2)][8j + 2t + i % 2],
// the mma.sync m16n8 accumulator layout repeated over the N / 8 column tiles. Each product
// is exact in fp32 and summed onto d in k order, as sm80.h's mma_m16n8k16 sums. It runs at the
// wgmma.wait_group that covers it (wgmma_wait): shared memory overwritten before then, or
// accumulators read before then, give wrong values. Issuing it while some thread of the block
// has shared memory landed by cp.async and not yet fenced (fence_proxy_async) fails: stricter
// than the device, which asks that of the writes this wgmma reads.
template <typename T, int N, bool TRANS_B>
inline void wgmma_m64k16(float (&d)[N / 2], uint64_t desc_a, uint64_t desc_b, const void* a_hint,
                         const void* b_hint) {
  static_assert(N % 8 == 0 && N >= 8 && N <= 256, "wgmma n is 8..256 in steps of 8");
  const uint32_t mine[4] = {static_cast<uint32_t>(desc_a), static_cast<uint32_t>(desc_a >> 32),
                            static_cast<uint32_t>(desc_b), static_cast<uint32_t>(desc_b >> 32)};
  uint32_t all[32][4] = {};
  warp_collective("wgmma.mma_async", mine, all);
  for (int l = 0; l < 32; ++l)
    if (std::memcmp(all[l], mine, sizeof mine) != 0)
      fail(cudaErrorLaunchFailure, "wgmma: lanes of a warp pass different descriptors");
  if (blockDim.x * blockDim.y * blockDim.z % 128 != 0)
    fail(cudaErrorLaunchFailure, "wgmma: the block is not whole warpgroups");
  Block& blk = *block();
  for (const WgmmaQueue& q : blk.wgmma)
    if (q.unfenced)
      fail(cudaErrorLaunchFailure,
           "wgmma: shared memory landed by cp.async read without fence.proxy.async");
  const MatrixDesc a = decode_desc(desc_a, a_hint), b = decode_desc(desc_b, b_hint);
  const int me = blk.current, w = (me / 32) % 4, g = (me % 32) / 4, t = me % 4;
  float* acc = d;
  WgmmaQueue& q = blk.wgmma[me];
  q.pending.push_back({[a, b, acc, w, g, t] {
                         for (int j = 0; j < N / 8; ++j)
                           for (int i = 0; i < 4; ++i) {
                             const int row = 16 * w + g + 8 * (i / 2), col = 8 * j + 2 * t + i % 2;
                             float s = acc[4 * j + i];
                             for (int k = 0; k < 16; ++k) {
                               const uint16_t av = *k_major(a, row, k);
                               const uint16_t bv =
                                   TRANS_B ? *mn_major(b, k, col) : *k_major(b, col, k);
                               s += b16_to_float(av, T()) * b16_to_float(bv, T());
                             }
                             acc[4 * j + i] = s;
                           }
                       },
                       q.committed});
}

inline void wgmma_commit() { ++block()->wgmma[block()->current].committed; }

// wgmma.wait_group n: runs this thread's committed wgmmas but those of the newest n groups,
// in issue order; the rest stay in flight.
inline void wgmma_wait(int n) {
  WgmmaQueue& q = block()->wgmma[block()->current];
  for (const PendingWgmma& p : q.pending)
    if (p.group >= q.committed)
      fail(cudaErrorLaunchFailure, "wgmma.wait_group: a wgmma issued but never committed");
  std::vector<PendingWgmma> still;
  for (const PendingWgmma& p : q.pending) {
    if (p.group < q.committed - n)
      p.run();
    else
      still.push_back(p);
  }
  q.pending.swap(still);
}

// fence.proxy.async.shared::cta: this thread's landed cp.asyncs become readable by wgmma.
inline void fence_proxy_async() { block()->wgmma[block()->current].unfenced = false; }

}  // namespace cm4j_emu

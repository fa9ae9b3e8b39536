// How a GEMM's [M panels] x [N panels] output grid is cut into thread-pool tasks; shared
// by the im2col GEMM convs (conv2d.cpp) and the AMX direct conv (conv_direct16.cpp).
#pragma once

#include <algorithm>
#include <cstdint>

#include "cpu/gemm.h"

namespace cm4j {
namespace cpu {

struct Split {
  int m_chunks = 1, n_chunks = 1;
  int tasks() const { return m_chunks * n_chunks; }
};

// Task t's share of the grid: A panels [p0, p1) and B panels [q0, q1).
struct TaskRange {
  int p0, p1, q0, q1;
};

inline TaskRange task_range(const Split& split, int t, int m_panels, int n_panels) {
  const int mi = t % split.m_chunks;
  const int ni = t / split.m_chunks;
  TaskRange r;
  r.p0 = static_cast<int>(static_cast<int64_t>(m_panels) * mi / split.m_chunks);
  r.p1 = static_cast<int>(static_cast<int64_t>(m_panels) * (mi + 1) / split.m_chunks);
  r.q0 = static_cast<int>(static_cast<int64_t>(n_panels) * ni / split.n_chunks);
  r.q1 = static_cast<int>(static_cast<int64_t>(n_panels) * (ni + 1) / split.n_chunks);
  return r;
}

// Wide outputs (many pixels) are cut along N: each task packs only its own columns and
// rereads the weights, which is cheap next to its arithmetic. Tall ones (the 8x8 and 16x16
// layers at small batch, where the weights outweigh the activations) are cut along M so
// each thread streams only its share of the weights. nq: B panels per task at most.
inline Split split_work(int m_rows, int m_panels, int n_panels, int nq, int threads) {
  Split s;
  if (threads <= 1) return s;
  if (static_cast<int64_t>(n_panels) * kNR >= m_rows) {
    int chunks = std::max(threads, (n_panels + nq - 1) / nq);
    chunks = (chunks + threads - 1) / threads * threads;  // equal rounds for every thread
    s.n_chunks = std::min(chunks, n_panels);
  } else {
    s.m_chunks = std::min(m_panels, threads);
  }
  return s;
}

}  // namespace cpu
}  // namespace cm4j

// The host side of test_cuda_cudnn_attn, checked on the CPU (no GPU, no cuDNN needed):
// attn_seq_layout.h's moves between our qkv [B, 3C, HW] / out [B, C, HW] and cuDNN's
// [N = B*heads, T = HW, d] sequences, and the claim the cuDNN comparison rests on, that
// single-head attention over those sequences is our multi-head attention.
//   1. Every element lands where the layout says: qkv holds its own flat index (exact in
//      float), so each packed element names its source; out = unpack(q packed) must
//      give back qkv's q channels exactly.
//   2. unpack(seq_attention_reference(pack(q), pack(k), pack(v))) equals the CPU backend's
//      attention on qkv (an independent implementation on the channels-first layout):
//      rel L2 <= 1e-5 (the reference is double; the CPU backend fp32).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "attn_seq_layout.h"
#include "backend.h"
#include "cm4j.h"
#include "cuda_test_util.h"  // Buf, g_rng, randn (header-only, no CUDA needed)
#include "test_util.h"

using namespace cm4j;
using namespace cm4j_test;

namespace {

struct Case {
  const char* name;
  int batch, channels, hw, dim_head;
};

void check_indexing(const Case& k) {
  const SeqShape s{k.batch, k.channels / k.dim_head, k.hw, k.dim_head};
  const int c = s.channels();
  std::vector<float> qkv(static_cast<size_t>(k.batch) * 3 * c * k.hw);
  for (size_t i = 0; i < qkv.size(); ++i) qkv[i] = static_cast<float>(i);
  size_t wrong = 0;
  for (int which = 0; which < 3; ++which) {
    const std::vector<float> packed = pack_qkv(s, qkv.data(), which);
    for (int n = 0; n < s.seqs(); ++n)
      for (int t = 0; t < s.hw; ++t)
        for (int i = 0; i < s.d; ++i) {
          const int b = n / s.heads, h = n % s.heads;
          const size_t src = ((static_cast<size_t>(b) * 3 + which) * c + h * s.d + i) * s.hw + t;
          wrong += packed[(static_cast<size_t>(n) * s.hw + t) * s.d + i] != static_cast<float>(src);
        }
  }
  CHECK(wrong == 0, "%s: %zu packed elements came from the wrong place", k.name, wrong);
  const std::vector<float> back = unpack_out(s, pack_qkv(s, qkv.data(), 0));
  size_t differ = 0;
  const size_t plane = static_cast<size_t>(c) * k.hw;  // one image's q: [C, HW]
  for (int b = 0; b < k.batch; ++b)
    for (size_t i = 0; i < plane; ++i) differ += back[b * plane + i] != qkv[b * 3 * plane + i];
  CHECK(differ == 0, "%s: unpack(pack(q)) differs from q at %zu elements", k.name, differ);
  std::printf("  %-28s indexing: %zu misplaced, %zu round-trip differences\n", k.name, wrong,
              differ);
}

void check_attention(Backend* cpu, const Case& k) {
  const SeqShape s{k.batch, k.channels / k.dim_head, k.hw, k.dim_head};
  AttentionParams p;
  p.batch = k.batch;
  p.channels = k.channels;
  p.hw = k.hw;
  p.heads = s.heads;
  p.dim_head = k.dim_head;
  p.scale = 1.0f / std::sqrt(static_cast<float>(k.dim_head));
  auto qkv = randn(static_cast<size_t>(k.batch) * 3 * k.channels * k.hw, 1.5f);
  Buf bq(cpu, qkv), out(cpu, s.elems());
  out.poison();
  AttentionArgs a;
  a.qkv = bq.p;
  a.out = out.p;
  Status st = cpu->attention(p, a);
  CHECK(st.ok(), "%s: CPU attention: %s", k.name, st.message.c_str());
  const std::vector<float> ref = out.get();
  const std::vector<float> got = unpack_out(
      s, seq_attention_reference(s, pack_qkv(s, qkv.data(), 0), pack_qkv(s, qkv.data(), 1),
                                 pack_qkv(s, qkv.data(), 2), static_cast<double>(p.scale)));
  size_t nan = 0;
  for (float v : ref) nan += std::isfinite(v) ? 0 : 1;
  const double rel = rel_l2(got.data(), ref.data(), ref.size());
  CHECK(nan == 0 && rel <= 1e-5, "%s: sequence attention vs CPU backend: rel L2 %.3e, %zu NaN",
        k.name, rel, nan);
  std::printf("  %-28s sequences vs CPU backend attention: rel L2 %.2e\n", k.name, rel);
}

}  // namespace

int main() {
  g_rng.seed(7);
  auto cpu = make_cpu_backend(2, CM4J_F32);
  if (!cpu) {
    std::printf("test_attn_seq_layout: FAIL: cannot create the CPU backend\n");
    return 1;
  }
  // Head dims 8 (tiny), 64 (the real models), one head (lsun_mini 8x8) and an odd size.
  //                  name                 b  c    hw   dh
  const Case cases[] = {{"tiny b2 c64 hw256 dh8", 2, 64, 256, 8},
                        {"heads b2 c128 hw64 dh64", 2, 128, 64, 64},
                        {"one head b1 c64 hw64 dh64", 1, 64, 64, 64},
                        {"odd b3 c48 hw100 dh16", 3, 48, 100, 16}};
  for (const Case& k : cases) {
    check_indexing(k);
    check_attention(cpu.get(), k);
  }
  std::printf("test_attn_seq_layout: %d failed check(s)\n", failures);
  return failures ? 1 : 0;
}

// The AVX-512-BF16 packing kernels against the portable ones they replace on the amx and
// avx512bf16 paths: the direct conv's weight packing (conv_direct16.h), and the bf16
// attention's pack_b16_matrix and pack_a16_strided (attention_bf16.h; both stride cases: V
// and K^T) must give the same bits; the fused softmax must give the
// same bf16 probabilities as the fp32 softmax_columns followed by pack_b16_matrix, and
// inverse sums within rows * 2^-24 relative: the two fp32 sums of the same positive terms
// differ only in order (the fused one adds two rows at a time), which bounds their
// difference by one rounding per term; a missing or doubled row would be off by ~1/rows. Shapes cover
// the real model's heads (d 64, 1024 keys, 128-query blocks) and ragged ones (rows, cols
// and k not multiples of 32). Skips (77) on a CPU without AVX-512-BF16.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "cpu/attention_bf16.h"
#include "cpu/context.h"
#include "cpu/conv_direct16.h"
#include "cpu/isa.h"
#include "cpu/vecmath.h"

using namespace cm4j::cpu;

#if defined(__x86_64__) || defined(__i386__)
namespace {

int g_failures = 0;

std::vector<float> random_vector(size_t n, std::mt19937& rng, float scale) {
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// 64-byte aligned bf16 storage, poisoned so unwritten elements show.
std::vector<uint16_t> poisoned(size_t n) { return std::vector<uint16_t>(n + 32, 0x7FC1); }
uint16_t* aligned(std::vector<uint16_t>& v) {
  const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
  return reinterpret_cast<uint16_t*>((p + 63) / 64 * 64);
}

void report(bool ok, const char* what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) ++g_failures;
}

bool same(const uint16_t* a, const uint16_t* b, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

void check_pack_b(int rows, int cols, int ld, std::mt19937& rng) {
  const auto src = random_vector(static_cast<size_t>(rows) * ld, rng, 4.0f);
  const size_t n = static_cast<size_t>(pad_k16(rows)) * ((cols + kNR - 1) / kNR) * kNR;
  auto want = poisoned(n), got = poisoned(n);
  pack_b16_matrix(src.data(), rows, cols, ld, aligned(want));
  pack_b16_matrix_avx512bf16(src.data(), rows, cols, ld, aligned(got));
  char what[100];
  std::snprintf(what, sizeof what, "pack_b16_matrix %d x %d (ld %d)", rows, cols, ld);
  report(same(aligned(want), aligned(got), n), what);
}

void check_pack_a(int m, int k, bool transposed, std::mt19937& rng) {
  // V: A[r, c] = src[r * k + c]; K^T: A[r, c] = src[c * m + r].
  const auto src = random_vector(static_cast<size_t>(m) * k, rng, 4.0f);
  const int64_t rs = transposed ? 1 : k, cs = transposed ? m : 1;
  const size_t n = packed_a16_elems(m, k);
  auto want = poisoned(n), got = poisoned(n);
  pack_a16_strided(src.data(), m, k, rs, cs, aligned(want));
  pack_a16_strided_avx512bf16(src.data(), m, k, rs, cs, aligned(got));
  char what[100];
  std::snprintf(what, sizeof what, "pack_a16_strided %d x %d %s", m, k, transposed ? "(K^T)" : "(V)");
  report(same(aligned(want), aligned(got), n), what);
}

void check_direct16_weight(int c_out, int c_in, int kernel, std::mt19937& rng) {
  const auto w = random_vector(static_cast<size_t>(c_out) * c_in * kernel * kernel, rng, 1.0f);
  const size_t n = direct16_weight_elems(c_out, c_in, kernel);
  auto want = poisoned(n), got = poisoned(n);
  pack_direct16_weight(w.data(), c_out, c_in, kernel, aligned(want));
  pack_direct16_weight_avx512bf16(w.data(), c_out, c_in, kernel, aligned(got));
  char what[100];
  std::snprintf(what, sizeof what, "pack_direct16_weight [%d, %d, %d, %d]", c_out, c_in, kernel, kernel);
  report(same(aligned(want), aligned(got), n), what);
}

void check_softmax(int rows, int cols, int ld, std::mt19937& rng) {
  const auto s = random_vector(static_cast<size_t>(rows) * ld, rng, 8.0f);
  const size_t n = static_cast<size_t>(pad_k16(rows)) * ((cols + kNR - 1) / kNR) * kNR;
  auto want = poisoned(n), got = poisoned(n);
  alignas(64) float max[128], inv_want[128], inv_got[128];
  auto s_ref = s, s_fused = s;
  kVecAvx512.softmax_columns(s_ref.data(), rows, cols, ld, max, inv_want);
  pack_b16_matrix(s_ref.data(), rows, cols, ld, aligned(want));
  softmax_b16_avx512bf16(s_fused.data(), rows, cols, ld, max, inv_got, aligned(got));
  double worst = 0;
  for (int i = 0; i < cols; ++i) worst = std::fmax(worst, std::fabs(inv_got[i] / inv_want[i] - 1));
  char what[120];
  std::snprintf(what, sizeof what, "softmax_b16 %d x %d (ld %d): inv_sum off by %.1e", rows, cols, ld,
                worst);
  report(same(aligned(want), aligned(got), n) && worst <= rows * std::ldexp(1.0, -24), what);
}

}  // namespace

int main() {
  if (detect_bf16_path() == Bf16Path::kGeneric) {
    std::printf("skip: this CPU lacks AVX-512-BF16\n");
    return 77;
  }
  std::mt19937 rng(2024);
  check_direct16_weight(192, 384, 3, rng);  // a real up-block conv
  check_direct16_weight(40, 3, 3, rng);     // conv_in-like: 29 channels of padding
  check_direct16_weight(70, 45, 3, rng);    // ragged rows and channels
  check_direct16_weight(33, 72, 1, rng);
  check_pack_b(64, 128, 1024, rng);  // a query block of the real model
  check_pack_b(45, 72, 80, rng);
  check_pack_b(3, 5, 7, rng);
  check_pack_a(64, 1024, false, rng);  // V of one head
  check_pack_a(1024, 64, true, rng);   // K^T of one head
  check_pack_a(45, 70, false, rng);
  check_pack_a(70, 45, true, rng);
  check_pack_a(200, 8, true, rng);
  check_softmax(1024, 128, 128, rng);
  check_softmax(200, 72, 128, rng);
  check_softmax(7, 3, 16, rng);
  std::printf(g_failures == 0 ? "PASS\n" : "FAILED: %d checks\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}
#else
int main() {
  std::printf("skip: x86 only\n");
  return 77;
}
#endif

// nn.Linear for the time-embedding path: M is the batch, so this is a handful of dot
// products per weight row; each row of W is read once and used for every batch row.
#include <algorithm>
#include <cstring>
#include <vector>

#include "cm4j.h"
#include "cpu/ops.h"

namespace cm4j {
namespace cpu {

namespace {

constexpr int kLanes = 16;     // independent partial sums, vectorizable without -ffast-math
constexpr int kRowsPerTask = 64;

float dot(const float* x, const float* w, int k) {
  float lane[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= k; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] += x[i + l] * w[i + l];
  float total = 0;
  for (; i < k; ++i) total += x[i] * w[i];
  for (int l = 0; l < kLanes; ++l) total += lane[l];
  return total;
}

}  // namespace

Status pack_linear_weight(CpuContext& ctx, const float* w, int n, int k,
                          std::unique_ptr<Weight>* out) {
  if (w == nullptr || out == nullptr) return invalid("prepare_linear: null pointer");
  if (n <= 0 || k <= 0) return invalid("prepare_linear: non-positive shape");
  auto lw = std::make_unique<CpuWeight>();
  lw->kind = CpuWeight::Kind::kLinear;
  lw->rows = n;
  lw->cols = k;
  lw->floats = static_cast<size_t>(n) * k;
  lw->data = alloc_weight(ctx.weight_memory, lw->floats);
  if (!lw->data) return out_of_memory("linear weight", lw->bytes());
  std::memcpy(lw->data.get(), w, lw->bytes());
  *out = std::move(lw);
  return Status::Ok();
}

Status linear(CpuContext& ctx, const LinearParams& p, const LinearArgs& a) {
  if (a.x == nullptr || a.y == nullptr || a.weight == nullptr) return invalid("linear: null x, y or weight");
  const auto* w = dynamic_cast<const CpuWeight*>(a.weight);
  if (w == nullptr || w->kind != CpuWeight::Kind::kLinear) return invalid("linear: not a CPU linear weight");
  if (p.m <= 0 || w->rows != p.n || w->cols != p.k)
    return invalid("linear: weight [" + std::to_string(w->rows) + ", " + std::to_string(w->cols) +
                   "] does not match n=" + std::to_string(p.n) + " k=" + std::to_string(p.k));

  // SiLU of the input once up front, not once per output row.
  const float* x = a.x;
  std::vector<float> activated;
  if (p.silu_input) {
    activated.resize(static_cast<size_t>(p.m) * p.k);
    ctx.vec->affine_act(a.x, activated.data(), activated.size(), 0.0f, 1.0f, 0.0f, true);
    x = activated.data();
  }
  const float* weights = w->data.get();
  const auto task = [&](int t, int /*worker*/) {
    const int n0 = t * kRowsPerTask;
    const int n1 = std::min(p.n, n0 + kRowsPerTask);
    for (int m = 0; m < p.m; ++m) {
      float* y = a.y + static_cast<size_t>(m) * p.n;
      for (int n = n0; n < n1; ++n)
        y[n] = dot(x + static_cast<size_t>(m) * p.k, weights + static_cast<size_t>(n) * p.k, p.k) +
               (a.bias ? a.bias[n] : 0.0f);
      // y = act(x W^T + b) + add: the class embedding is added after the activation.
      if (p.silu_output) ctx.vec->affine_act(y + n0, y + n0, n1 - n0, 0.0f, 1.0f, 0.0f, true);
      if (a.add)
        for (int n = n0; n < n1; ++n) y[n] += a.add[static_cast<size_t>(m) * p.n + n];
    }
  };
  if (!ctx.pool.parallel_for((p.n + kRowsPerTask - 1) / kRowsPerTask, task))
    return {CM4J_ERR_INTERNAL, "cpu: linear task failed"};
  return Status::Ok();
}

}  // namespace cpu
}  // namespace cm4j

#include "plan.h"

#include <algorithm>
#include <chrono>
#include <numeric>

namespace cm4j {

namespace {
// Offsets are kept 64-byte aligned for vector loads.
constexpr size_t kAlignFloats = 16;
size_t round_up(size_t n) { return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }
}  // namespace

int Plan::buffer(size_t floats) {
  lives_.push_back({round_up(std::max<size_t>(floats, 1))});
  return static_cast<int>(lives_.size()) - 1;
}

void Plan::op(std::string name, std::vector<int> buffers, OpFn fn) {
  int index = static_cast<int>(ops_.size());
  for (int b : buffers) {
    if (b < 0) continue;
    Life& l = lives_[b];
    if (l.first < 0) l.first = index;
    l.last = index;
  }
  ops_.push_back({std::move(name), std::move(fn)});
}

void Plan::assign_offsets() {
  // Greedy by size: place each buffer at the lowest offset that does not overlap a placed
  // buffer whose lifetime intersects its own.
  std::vector<int> order(lives_.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return lives_[a].floats > lives_[b].floats; });
  offsets_.assign(lives_.size(), 0);
  std::vector<int> placed;
  arena_floats_ = 0;
  for (int b : order) {
    const Life& lb = lives_[b];
    std::vector<std::pair<size_t, size_t>> busy;  // [begin, end) of conflicting buffers
    for (int p : placed) {
      const Life& lp = lives_[p];
      bool overlap = lb.first <= lp.last && lp.first <= lb.last;
      if (overlap) busy.push_back({offsets_[p], offsets_[p] + lp.floats});
    }
    std::sort(busy.begin(), busy.end());
    size_t at = 0;
    for (const auto& r : busy) {
      if (at + lb.floats <= r.first) break;
      at = std::max(at, r.second);
    }
    offsets_[b] = at;
    arena_floats_ = std::max(arena_floats_, at + lb.floats);
    placed.push_back(b);
  }
}

Status Plan::run(ExecContext& ctx) const {
  if (ctx.op_ms) ctx.op_ms->assign(ops_.size(), 0.0);
  Status s = run_ops(ctx, 0, ops_.size());
  return s.ok() ? ctx.backend->synchronize() : s;
}

Status Plan::run_ops(ExecContext& ctx, size_t first, size_t last) const {
  using clock = std::chrono::steady_clock;
  for (size_t i = first; i < last; ++i) {
    const Op& op = ops_[i];
    const clock::time_point start = ctx.op_ms ? clock::now() : clock::time_point();
    Status s = op.fn(ctx);
    if (s.ok() && ctx.op_ms) {
      s = ctx.backend->synchronize();  // the op's own time, not the queue's
      (*ctx.op_ms)[i] = std::chrono::duration<double, std::milli>(clock::now() - start).count();
    }
    if (!s.ok()) {
      s.message = op.name + ": " + s.message;
      return s;
    }
  }
  return Status::Ok();
}

}  // namespace cm4j

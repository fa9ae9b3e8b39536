#include "plan_graphs.h"

#include <cstdint>

namespace cm4j {

PlanGraphs::Entry& PlanGraphs::find(const std::vector<const void*>& key) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->key == key) {
      entries_.splice(entries_.begin(), entries_, it);
      return entries_.front();
    }
  }
  if (entries_.size() == kMaxEntries) entries_.pop_back();  // the least recently used
  entries_.push_front({key, false, nullptr});
  return entries_.front();
}

Status PlanGraphs::run(const Plan& plan, ExecContext& ctx) {
  const auto [first, last] = plan.capturable();
  Backend* be = ctx.backend;
  if (!be->can_capture() || ctx.op_ms || first == last) return plan.run(ctx);
  Status s = plan.run_ops(ctx, 0, first);
  if (!s.ok()) return s;
  // The epoch as a pointer-sized number: a grown scratch buffer makes every key new.
  std::vector<const void*> key = {&plan, ctx.arena,
                                  reinterpret_cast<const void*>(static_cast<uintptr_t>(be->scratch_epoch()))};
  for (const auto& e : ctx.external) key.push_back(e.second);
  Entry& entry = find(key);
  const auto queue = [&] { return plan.run_ops(ctx, first, last); };
  if (entry.work) {
    s = be->replay(*entry.work);
    ++replays_;
  } else if (!entry.ran) {
    s = queue();
    entry.ran = true;
  } else {
    s = be->capture(queue, &entry.work);
    if (s.ok()) s = be->replay(*entry.work);  // a capture records; nothing ran yet
    ++captures_;
  }
  if (!s.ok()) {
    entries_.remove_if([&](const Entry& e) { return e.key == key; });
    return s;
  }
  s = plan.run_ops(ctx, last, plan.op_count());
  return s.ok() ? be->synchronize() : s;
}

}  // namespace cm4j

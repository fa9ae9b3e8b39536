#include "plan_graphs.h"

namespace cm4j {

PlanGraphs::Entry& PlanGraphs::find(const Plan& plan, const ExecContext& ctx, uint64_t epoch) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->matches(plan, ctx, epoch)) {
      entries_.splice(entries_.begin(), entries_, it);
      return entries_.front();
    }
  }
  if (entries_.size() == kMaxEntries) entries_.pop_back();  // the least recently used
  entries_.push_front({&plan, ctx.arena, epoch, ctx.external, false, nullptr});
  return entries_.front();
}

Status PlanGraphs::run(const Plan& plan, ExecContext& ctx) {
  const auto [first, last] = plan.capturable();
  Backend* be = ctx.backend;
  if (!be->can_capture() || ctx.op_ms || first == last) return plan.run(ctx);
  Status s = plan.run_ops(ctx, 0, first);
  if (!s.ok()) return s;
  // A grown scratch buffer (a new epoch) makes every key new.
  Entry& entry = find(plan, ctx, be->scratch_epoch());
  const auto queue = [&] { return plan.run_ops(ctx, first, last); };
  if (entry.work) {
    s = be->replay(*entry.work);
    ++replays_;
  } else if (!entry.ran) {
    s = queue();
    entry.ran = true;
  } else {
    s = be->capture(queue, &entry.work);
    if (s.ok()) {
      programmatic_edges_ += entry.work->programmatic_edges;
      s = be->replay(*entry.work);  // a capture records; nothing ran yet
    }
    ++captures_;
  }
  if (!s.ok()) {
    entries_.remove_if([&](const Entry& e) { return &e == &entry; });
    return s;
  }
  s = plan.run_ops(ctx, last, plan.op_count());
  return s.ok() ? be->synchronize() : s;
}

}  // namespace cm4j

// Replays of a plan's capturable ops (Plan::capturable) as captured work, on a backend that
// can capture (CUDA graphs): a forward pass at batch 1 is some 400 small launches, and one
// graph launch replaces them. Per key, the first pass runs the ops plainly (buffers and
// tables are allocated then, which a capture may not do), the second captures them and
// every later one replays. The key is the plan, the arena, the caller's buffers
// (ExecContext::external) and the backend's scratch epoch (Backend::scratch_epoch), so a
// replay reads and writes the memory its capture did; the inputs' values may change between
// passes, since they are copied into those buffers before the replay. The caller clears the
// cache whenever the plan or arena is replaced.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <utility>
#include <vector>

#include "backend.h"
#include "plan.h"

struct cm4j_unet;

namespace cm4j {

class PlanGraphs {
 public:
  static constexpr size_t kMaxEntries = 16;  // e.g. a sampling loop's steps at a few batches

  // Plan::run, with the capturable ops captured and replayed where the backend can (and
  // not while ctx profiles ops).
  Status run(const Plan& plan, ExecContext& ctx);
  // Drops every captured graph (before the plan or arena they point into goes away).
  void clear() { entries_.clear(); }

  size_t captures() const { return captures_; }
  size_t replays() const { return replays_; }
  size_t programmatic_edges() const { return programmatic_edges_; }  // over every capture
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    // The key, compared field by field, so that a pass whose graph is cached builds nothing.
    const Plan* plan;
    const float* arena;
    uint64_t epoch;
    std::vector<std::pair<int, float*>> external;
    bool ran = false;                     // one plain pass done
    std::unique_ptr<CapturedWork> work;   // after the second
    bool matches(const Plan& p, const ExecContext& ctx, uint64_t e) const {
      return plan == &p && arena == ctx.arena && epoch == e && external == ctx.external;
    }
  };
  Entry& find(const Plan& plan, const ExecContext& ctx, uint64_t epoch);

  std::list<Entry> entries_;  // most recently used first
  size_t captures_ = 0, replays_ = 0, programmatic_edges_ = 0;
};

// The captures and replays of an engine's PlanGraphs, for tests of a backend's graphs
// through the C API (engine.cpp).
void engine_graph_counts(const cm4j_unet* unet, size_t* captures, size_t* replays);
size_t engine_programmatic_edges(const cm4j_unet* unet);

}  // namespace cm4j

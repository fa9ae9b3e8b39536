// A plan is a flat list of backend calls with fixed shapes for one batch size, and the
// activation buffers they use. Buffers get offsets in one arena from their liveness, so a
// forward pass allocates nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "backend.h"

namespace cm4j {

struct Tap {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;  // host copy, filled when the plan runs with capture on
};

// The buffers of a forward pass's inputs and output (Plan::io).
struct PlanIO {
  int sample = -1;    // [B, in, S, S]
  int timestep = -1;  // [B]
  int output = -1;    // [B, out, S, S]
};

// What an op sees when it runs: the backend, resolved buffer pointers and the call's inputs.
struct ExecContext {
  Backend* backend = nullptr;
  float* arena = nullptr;
  const std::vector<size_t>* offsets = nullptr;  // per buffer, in floats
  // The call's host memory: inputs, class labels and where the output goes. A null sample,
  // timestep or output is not copied: the caller keeps it on the backend, in the memory
  // `external` gives for that buffer (cm4j_unet_sample's loop, which never leaves the device).
  const float* sample = nullptr;
  const float* timestep = nullptr;
  const int64_t* class_labels = nullptr;
  float* output = nullptr;
  std::vector<Tap>* taps = nullptr;
  // When set, each op is waited for before the next starts and its milliseconds land here,
  // one per op in run order (an op profile: slower than a plain run).
  std::vector<double>* op_ms = nullptr;
  // Buffers placed in the caller's backend memory instead of the arena: (buffer, pointer).
  std::vector<std::pair<int, float*>> external;
  float* ptr(int buffer) const {
    for (const auto& e : external)
      if (e.first == buffer) return e.second;
    return arena + (*offsets)[buffer];
  }
};

using OpFn = std::function<Status(ExecContext&)>;

class Plan {
 public:
  // A new activation buffer of `floats` elements.
  int buffer(size_t floats);
  // Appends an op that touches `buffers` (their liveness is extended to this op).
  void op(std::string name, std::vector<int> buffers, OpFn fn);
  // Assigns arena offsets; buffers whose lifetimes do not overlap share memory.
  void assign_offsets();

  size_t arena_floats() const { return arena_floats_; }
  // Runs every op in order, then waits for the backend; a failure names the op
  // ("down_blocks.1.attentions.0: ...").
  Status run(ExecContext& ctx) const;
  // Runs ops [first, last) in order, without the final wait.
  Status run_ops(ExecContext& ctx, size_t first, size_t last) const;

  // The ops [first, last) that only queue backend work on buffers of the arena or the
  // caller's (no host memory, no waiting, no per-call host values): the part of a pass a
  // backend may capture once and replay (plan_graphs.h). first == last: none.
  void set_capturable(size_t first, size_t last) { capturable_ = {first, last}; }
  std::pair<size_t, size_t> capturable() const { return capturable_; }

  const std::vector<size_t>& offsets() const { return offsets_; }
  // Which buffers hold the inputs and the output (set by the graph).
  void set_io(const PlanIO& io) { io_ = io; }
  const PlanIO& io() const { return io_; }
  // The ops in run order, by name (tests check what a plan launches).
  size_t op_count() const { return ops_.size(); }
  const std::string& op_name(size_t i) const { return ops_[i].name; }

 private:
  struct Op {
    std::string name;
    OpFn fn;
  };
  struct Life {
    size_t floats;
    int first = -1, last = -1;
  };
  std::vector<Op> ops_;
  std::vector<Life> lives_;
  std::vector<size_t> offsets_;
  size_t arena_floats_ = 0;
  PlanIO io_;
  std::pair<size_t, size_t> capturable_{0, 0};
};

}  // namespace cm4j

// The CPU backend's weight memory (cpu/weight_memory.h): aligned, disjoint allocations
// carved from shared chunks, an oversized one in its own chunk, memory usable again after
// every weight went, and weights that outlive the memory's owner.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "cpu/weight_memory.h"
#include "test_util.h"

using cm4j::cpu::WeightFloats;
using cm4j::cpu::WeightMemory;
using cm4j::cpu::alloc_weight;

int main() {
  auto memory = std::make_shared<WeightMemory>();
  std::vector<WeightFloats> weights;
  const size_t sizes[] = {1, 13, 1000, 3 << 20, 5 << 20, 40 << 20, 1};  // floats
  for (size_t n : sizes) {
    weights.push_back(alloc_weight(memory, n));
    CHECK(weights.back() != nullptr, "alloc of %zu floats failed", n);
    if (!weights.back()) return 1;
    CHECK(reinterpret_cast<uintptr_t>(weights.back().get()) % 64 == 0, "%zu floats not 64-byte aligned", n);
    for (size_t i = 0; i < n; ++i) weights.back()[i] = static_cast<float>(weights.size());
  }
  // Every value is still the one its own allocation wrote: no two overlap.
  for (size_t w = 0; w < weights.size(); ++w)
    for (size_t i = 0; i < sizes[w]; ++i)
      if (weights[w][i] != static_cast<float>(w + 1)) {
        CHECK(false, "allocation %zu overwritten at %zu", w, i);
        break;
      }

  // Freed all at once, then allocated again (the released chunks are not observable here:
  // this checks only that the memory is usable again).
  weights.clear();
  WeightFloats again = alloc_weight(memory, 100 << 20);
  CHECK(again != nullptr, "alloc after release failed");
  if (again) again[(100 << 20) - 1] = 1.0f;

  // A weight that outlives the memory's owner keeps its memory.
  WeightFloats survivor = alloc_weight(memory, 64);
  memory.reset();
  CHECK(survivor != nullptr, "alloc failed");
  if (survivor) survivor[63] = 2.0f;
  survivor.reset();
  again.reset();

  std::printf("%s: %d failure(s)\n", cm4j_test::failures ? "FAILED" : "PASSED", cm4j_test::failures);
  return cm4j_test::failures ? 1 : 0;
}

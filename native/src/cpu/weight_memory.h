// Memory for a CPU backend's prepared weights: carved from large 2 MiB-aligned chunks that
// Linux may back with transparent huge pages. Packed weights are written once, at load,
// and a model's are mostly a few MiB each: allocated one by one, the edges of each block
// fall outside any huge page, and on a VM each of their 4 KiB page faults is costly (a
// third of imagenet64's page faults). A chunk is unmapped when its last weight is freed.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

namespace cm4j {
namespace cpu {

class WeightMemory {
 public:
  WeightMemory() = default;
  ~WeightMemory();
  WeightMemory(const WeightMemory&) = delete;
  WeightMemory& operator=(const WeightMemory&) = delete;

  // count floats, 64-byte aligned and not initialized; null when out of memory.
  float* alloc(size_t count);
  void release(float* p);

 private:
  struct Chunk {
    char* base;
    size_t bytes;
    size_t used;
    int live;  // allocations not yet released
  };
  std::mutex mutex_;  // weights may be freed from any thread
  std::vector<Chunk> chunks_;  // the last one is carved from
};

// Frees through the memory it came from, which it keeps alive: a weight may outlive its
// backend.
struct WeightDeleter {
  std::shared_ptr<WeightMemory> memory;
  void operator()(float* p) const {
    if (p != nullptr) memory->release(p);
  }
};
using WeightFloats = std::unique_ptr<float[], WeightDeleter>;

// From memory; null when out of memory.
WeightFloats alloc_weight(const std::shared_ptr<WeightMemory>& memory, size_t count);

}  // namespace cpu
}  // namespace cm4j

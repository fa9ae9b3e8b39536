#include "cpu/weight_memory.h"

#include <sys/mman.h>

#include "cpu/host_memory.h"

#include <algorithm>
#include <cstdint>

namespace cm4j {
namespace cpu {

namespace {

constexpr size_t kHuge = size_t{1} << 21;
constexpr size_t kChunk = size_t{64} << 20;  // imagenet64's 1.75 GB in 28 chunks
constexpr size_t kAlign = 64;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// bytes (a multiple of kHuge) of zeroed memory at a 2 MiB boundary, or null.
char* map_chunk(size_t bytes) {
  if (!host_memory_allows(bytes)) return nullptr;
  void* p = mmap(nullptr, bytes + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = round_up(start, kHuge);
  if (aligned > start) munmap(p, aligned - start);
  const size_t tail = start + bytes + kHuge - (aligned + bytes);
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + bytes), tail);
#ifdef MADV_HUGEPAGE
  madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);
#endif
  return reinterpret_cast<char*>(aligned);
}

}  // namespace

WeightMemory::~WeightMemory() {
  for (const Chunk& c : chunks_) munmap(c.base, c.bytes);
}

float* WeightMemory::alloc(size_t count) {
  if (count > (SIZE_MAX - 2 * kHuge) / sizeof(float)) return nullptr;
  const size_t bytes = round_up(std::max<size_t>(count * sizeof(float), 1), kAlign);
  std::lock_guard<std::mutex> lock(mutex_);
  if (chunks_.empty() || chunks_.back().bytes - chunks_.back().used < bytes) {
    const size_t chunk = std::max(kChunk, round_up(bytes, kHuge));
    char* base = map_chunk(chunk);
    if (base == nullptr) return nullptr;
    chunks_.push_back({base, chunk, 0, 0});
  }
  Chunk& c = chunks_.back();
  char* p = c.base + c.used;
  c.used += bytes;
  ++c.live;
  return reinterpret_cast<float*>(p);
}

void WeightMemory::release(float* p) {
  std::lock_guard<std::mutex> lock(mutex_);
  const char* at = reinterpret_cast<const char*>(p);
  for (size_t i = 0; i < chunks_.size(); ++i) {
    Chunk& c = chunks_[i];
    if (at < c.base || at >= c.base + c.bytes) continue;
    if (--c.live > 0) return;
    if (i + 1 == chunks_.size()) {
      c.used = 0;  // the chunk being carved from stays, empty, for the next weights
      return;
    }
    munmap(c.base, c.bytes);
    chunks_.erase(chunks_.begin() + static_cast<std::ptrdiff_t>(i));
    return;
  }
}

WeightFloats alloc_weight(const std::shared_ptr<WeightMemory>& memory, size_t count) {
  return WeightFloats(memory->alloc(count), WeightDeleter{memory});
}

}  // namespace cpu
}  // namespace cm4j

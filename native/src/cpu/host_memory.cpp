#include "cpu/host_memory.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace cm4j {
namespace cpu {

namespace {

// The first number in `path` (a cgroup file), or 0 (missing, or "max": no limit).
unsigned long long read_number(const char* path) {
  std::FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  unsigned long long v = 0;
  if (std::fscanf(f, "%llu", &v) != 1) v = 0;
  std::fclose(f);
  return v;
}

}  // namespace

size_t host_memory_available() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long available = 0, swap_free = 0, kb = 0;
  bool found = false;
  while (std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
      available = kb;
      found = true;
    } else if (std::sscanf(line, "SwapFree: %llu kB", &kb) == 1) {
      swap_free = kb;
    }
  }
  std::fclose(f);
  if (!found) return 0;
  unsigned long long bytes = (available + swap_free) * 1024;
  // A container's limit (cgroup v2), which /proc/meminfo does not show.
  const unsigned long long limit = read_number("/sys/fs/cgroup/memory.max");
  const unsigned long long used = read_number("/sys/fs/cgroup/memory.current");
  if (limit > 0) bytes = std::min(bytes, limit > used ? limit - used : 0ull);
  // CM4J_CPU_MEMORY_AVAILABLE: what the user allows (and how the tests make it small).
  if (const char* env = std::getenv("CM4J_CPU_MEMORY_AVAILABLE")) {
    char* end = nullptr;
    const unsigned long long cap = std::strtoull(env, &end, 10);
    if (end != env && *end == '\0') bytes = std::min(bytes, cap);
  }
  return static_cast<size_t>(std::max(bytes, 1ull));  // 0 means "unknown"
}

bool host_memory_allows(size_t bytes) {
  constexpr size_t kChecked = size_t{16} << 20, kMargin = size_t{512} << 20;
  if (bytes < kChecked) return true;
  const size_t available = host_memory_available();
  return available == 0 || (available > kMargin && bytes <= available - kMargin);
}

}  // namespace cpu
}  // namespace cm4j

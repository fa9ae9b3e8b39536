// How much memory the host can still give, asked before large allocations. Linux grants more
// than it has (overcommit) and finds out only when the pages are touched, where the OOM killer
// ends this process, or another one, instead of an allocation failing with a message.
#pragma once

#include <cstddef>

namespace cm4j {
namespace cpu {

// MemAvailable + SwapFree from /proc/meminfo, in bytes, or less where a cgroup v2 limit
// (memory.max less memory.current) or CM4J_CPU_MEMORY_AVAILABLE (bytes) says so; 0 where
// /proc/meminfo cannot be read.
size_t host_memory_available();

// Whether `bytes` more may be taken and leave a margin of 512 MiB. Requests under 16 MiB, and
// hosts without /proc/meminfo, are not checked (reading the file costs a system call).
bool host_memory_allows(size_t bytes);

}  // namespace cpu
}  // namespace cm4j

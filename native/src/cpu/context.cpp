#include "cpu/context.h"

#include <sys/mman.h>

#include <cstdint>

#include "cm4j.h"
#include "cpu/host_memory.h"

namespace cm4j {
namespace cpu {

AlignedFloats alloc_floats(size_t count) {
  const size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
  if (!host_memory_allows(bytes)) return nullptr;
  void* p = nullptr;
  if (posix_memalign(&p, 64, bytes == 0 ? 64 : bytes) != 0) return nullptr;
#ifdef MADV_HUGEPAGE
  // Backing the 2 MiB-aligned inside of a large block with huge pages where Linux allows
  // cuts its page faults 512-fold (prepared weights have their own chunks: weight_memory.h).
  const size_t huge = size_t{1} << 21;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + huge - 1) / huge * huge;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) / huge * huge;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#endif
  return AlignedFloats(static_cast<float*>(p));
}

Status out_of_memory(const char* what, size_t bytes) {
  const size_t available = host_memory_available();
  return {CM4J_ERR_OUT_OF_MEMORY,
          std::string("cpu: out of memory allocating ") + std::to_string(bytes) + " bytes for " +
              what +
              (available > 0 ? " (" + std::to_string(available) + " bytes available)" : "")};
}

Status invalid(const std::string& message) {
  return {CM4J_ERR_INVALID_ARGUMENT, "cpu: " + message};
}

CpuContext::CpuContext(int threads, bool bf16_mode)
    : pool(threads),
      isa(choose_isa()),
      tile(tile_kernel(isa)),
      vec(&vec_kernels(isa)),
      bf16(bf16_mode),
      bf16_path(bf16_mode ? choose_bf16_path() : Bf16Path::kGeneric),
      tile16(bf16_kernel(bf16_path)),
      convert16(convert_b16),
      attn16(attention_bf16_kernels(bf16_path)),
      conv_mode(choose_conv_mode()),
      wino(&winograd_kernels(isa)) {
#if defined(__x86_64__) || defined(__i386__)
  if (isa == Isa::kAvx512) convert16 = convert_b16_avx512;
#endif
}

Status CpuContext::reserve_scratch(size_t floats) {
  if (floats <= scratch_floats_ && !scratch_.empty()) return Status::Ok();
  std::vector<AlignedFloats> fresh;
  for (int w = 0; w < pool.size(); ++w) {
    fresh.push_back(alloc_floats(floats));
    if (!fresh.back()) return out_of_memory("scratch", floats * sizeof(float));
  }
  scratch_ = std::move(fresh);
  scratch_floats_ = floats;
  return Status::Ok();
}

Status CpuContext::reserve_packed_input(size_t floats) {
  if (floats <= packed_input_floats_ && packed_input_) return Status::Ok();
  // 2 MiB aligned and backed by huge pages where Linux allows: the direct conv's tile
  // loads stride across many channel planes at once.
  const size_t huge = size_t{1} << 21;
  const size_t bytes = (floats * sizeof(float) + huge - 1) / huge * huge;
  void* p = nullptr;
  if (!host_memory_allows(bytes) || posix_memalign(&p, huge, bytes) != 0)
    return out_of_memory("packed conv input", bytes);
#ifdef MADV_HUGEPAGE
  madvise(p, bytes, MADV_HUGEPAGE);
#endif
  packed_input_.reset(static_cast<float*>(p));
  packed_input_floats_ = floats;
  return Status::Ok();
}

}  // namespace cpu
}  // namespace cm4j

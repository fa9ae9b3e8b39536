#include "cpu/isa.h"

#include <cstdlib>
#include <cstring>

namespace cm4j {
namespace cpu {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx2: return "avx2";
    default: return "generic";
  }
}

Isa detect_isa() {
#if defined(__x86_64__) || defined(__i386__)
  // __builtin_cpu_supports also checks that the OS saves the wider register state.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return Isa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
#endif
  return Isa::kGeneric;
}

Isa choose_isa() {
  const Isa best = detect_isa();
  const char* env = std::getenv("CM4J_CPU_ISA");
  if (env == nullptr || *env == '\0') return best;
  Isa wanted = best;
  if (std::strcmp(env, "avx512") == 0) wanted = Isa::kAvx512;
  else if (std::strcmp(env, "avx2") == 0) wanted = Isa::kAvx2;
  else if (std::strcmp(env, "generic") == 0) wanted = Isa::kGeneric;
  return static_cast<int>(wanted) <= static_cast<int>(best) ? wanted : best;
}

}  // namespace cpu
}  // namespace cm4j

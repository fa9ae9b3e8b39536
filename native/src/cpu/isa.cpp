#include "cpu/isa.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "cm4j.h"

#if defined(__linux__) && (defined(__x86_64__) || defined(__i386__))
#include <sys/syscall.h>
#include <unistd.h>
#endif

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

const char* bf16_path_name(Bf16Path path) {
  switch (path) {
    case Bf16Path::kAmx: return "amx";
    case Bf16Path::kAvx512Bf16: return "avx512bf16";
    default: return "generic";
  }
}

namespace {

#if defined(__x86_64__) || defined(__i386__)
// AMX needs the OS to enable the tile state (XCR0 bits 17, 18) and, on Linux, a per-process
// permission request before the first tile instruction.
bool amx_usable() {
  unsigned eax, ebx, ecx, edx;
  __asm__ volatile("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(7), "c"(0));
  const bool amx_bf16 = (edx >> 22) & 1;
  const bool amx_tile = (edx >> 24) & 1;
  if (!amx_bf16 || !amx_tile) return false;
  __asm__ volatile("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(1), "c"(0));
  if (!((ecx >> 27) & 1)) return false;  // OSXSAVE
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if (((lo >> 17) & 3) != 3) return false;
#if defined(__linux__)
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return false;
#endif
  return true;
}
#endif

}  // namespace

Bf16Path detect_bf16_path() {
  static std::once_flag once;
  static Bf16Path best = Bf16Path::kGeneric;
  std::call_once(once, [] {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    const bool avx512bf16 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("avx512bf16");
    if (avx512bf16 && amx_usable()) best = Bf16Path::kAmx;
    else if (avx512bf16) best = Bf16Path::kAvx512Bf16;
#endif
  });
  return best;
}

Bf16Path choose_bf16_path() {
  const Bf16Path best = detect_bf16_path();
  const char* env = std::getenv("CM4J_CPU_ISA");
  if (env == nullptr || *env == '\0') return best;
  Bf16Path wanted = best;
  if (std::strcmp(env, "amx") == 0) wanted = Bf16Path::kAmx;
  else if (std::strcmp(env, "avx512bf16") == 0) wanted = Bf16Path::kAvx512Bf16;
  else if (std::strcmp(env, "avx512") == 0 || std::strcmp(env, "avx2") == 0 ||
           std::strcmp(env, "generic") == 0)
    wanted = Bf16Path::kGeneric;
  return static_cast<int>(wanted) <= static_cast<int>(best) ? wanted : best;
}

Status check_isa_override() {
  const char* env = std::getenv("CM4J_CPU_ISA");
  if (env == nullptr || *env == '\0') return Status::Ok();
  // Best first, as the kernels are preferred.
  const struct {
    const char* name;
    bool available;
  } paths[] = {{"amx", detect_bf16_path() == Bf16Path::kAmx},
               {"avx512bf16", detect_bf16_path() >= Bf16Path::kAvx512Bf16},
               {"avx512", detect_isa() == Isa::kAvx512},
               {"avx2", detect_isa() >= Isa::kAvx2},
               {"generic", true}};
  std::string valid, available;
  bool known = false, usable = false;
  for (const auto& p : paths) {
    valid += (valid.empty() ? "" : ", ") + std::string(p.name);
    if (p.available) available += (available.empty() ? "" : ", ") + std::string(p.name);
    if (std::strcmp(env, p.name) == 0) {
      known = true;
      usable = p.available;
    }
  }
  if (usable) return Status::Ok();
  return {CM4J_ERR_INVALID_ARGUMENT, std::string("CM4J_CPU_ISA=") + env +
                                         (known ? ": this CPU lacks it" : ": unknown value") +
                                         "; valid: " + valid + "; available on this CPU: " + available};
}

}  // namespace cpu
}  // namespace cm4j

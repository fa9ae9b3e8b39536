// Which instruction set the CPU kernels use. Chosen once per backend: the best one the
// CPU supports, or the one CM4J_CPU_ISA=avx512|avx2|generic asks for (tests use this to
// cover every path). The library itself is built for baseline x86-64; the AVX2 and
// AVX-512 kernels live in their own files behind target attributes.
#pragma once

#include "backend.h"

namespace cm4j {
namespace cpu {

enum class Isa { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };

const char* isa_name(Isa isa);
// The best ISA this CPU (and OS) supports.
Isa detect_isa();
// CM4J_CPU_ISA when set to a supported ISA, else detect_isa(). An ISA the CPU lacks is
// lowered to the best supported one rather than crashing on an illegal instruction.
Isa choose_isa();

// How the bf16 mode multiplies: AMX-BF16 tiles, AVX-512-BF16 dot products, or a portable
// kernel that widens bf16 to fp32 (any CPU). Chosen once per bf16 backend: the best one,
// or CM4J_CPU_ISA=amx|avx512bf16 (avx512, avx2 and generic select the portable kernel).
// AMX is only reported once Linux has granted this process the tile data state
// (arch_prctl ARCH_REQ_XCOMP_PERM); if the request fails, AVX-512-BF16 is used instead.
enum class Bf16Path { kGeneric = 0, kAvx512Bf16 = 1, kAmx = 2 };
const char* bf16_path_name(Bf16Path path);
Bf16Path detect_bf16_path();
Bf16Path choose_bf16_path();

// CM4J_CPU_ISA, checked: OK when unset or empty or naming a path this CPU has; otherwise an
// error naming the value, the valid values and those this CPU has. The engine refuses to start
// a CPU backend on an error, so a forced path is never silently replaced by another.
Status check_isa_override();

}  // namespace cpu
}  // namespace cm4j

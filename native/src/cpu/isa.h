// Which instruction set the CPU kernels use. Chosen once per backend: the best one the
// CPU supports, or the one CM4J_CPU_ISA=avx512|avx2|generic asks for (tests use this to
// cover every path). The library itself is built for baseline x86-64; the AVX2 and
// AVX-512 kernels live in their own files behind target attributes.
#pragma once

namespace cm4j {
namespace cpu {

enum class Isa { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };

const char* isa_name(Isa isa);
// The best ISA this CPU (and OS) supports.
Isa detect_isa();
// CM4J_CPU_ISA when set to a supported ISA, else detect_isa(). An ISA the CPU lacks is
// lowered to the best supported one rather than crashing on an illegal instruction.
Isa choose_isa();

}  // namespace cpu
}  // namespace cm4j

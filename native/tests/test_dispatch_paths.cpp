// ctest runs the golden cases once per CPU dispatch path (CMakeLists.txt, CM4J_CPU_PATHS), so
// that a path this CPU lacks shows as skipped: the list must name every path the library has.
#include <cstdio>
#include <string>

#include "cpu/isa.h"
#include "test_util.h"

using namespace cm4j_test;
using cm4j::cpu::Bf16Path;
using cm4j::cpu::Isa;

int main() {
  const std::string listed = std::string(",") + CM4J_CPU_PATHS + ",";
  for (Isa isa : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512}) {
    std::string path = std::string("fp32:") + cm4j::cpu::isa_name(isa);
    CHECK(listed.find("," + path + ",") != std::string::npos, "%s is not in CM4J_CPU_PATHS (%s)",
          path.c_str(), CM4J_CPU_PATHS);
  }
  for (Bf16Path p : {Bf16Path::kGeneric, Bf16Path::kAvx512Bf16, Bf16Path::kAmx}) {
    std::string path = std::string("bf16:") + cm4j::cpu::bf16_path_name(p);
    CHECK(listed.find("," + path + ",") != std::string::npos, "%s is not in CM4J_CPU_PATHS (%s)",
          path.c_str(), CM4J_CPU_PATHS);
  }
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}

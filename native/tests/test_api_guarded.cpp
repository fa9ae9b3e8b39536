// Every function cm4j.h exports runs its body through guarded() (engine.cpp), so no C++
// exception can cross the C boundary into the JVM: read both files and check each definition.
#include <cstdio>
#include <regex>
#include <set>
#include <string>

#include "test_util.h"

using namespace cm4j_test;

int main() {
  const std::string header = read_text(std::string(CM4J_SOURCE_DIR) + "/native/include/cm4j.h");
  const std::string engine = read_text(std::string(CM4J_SOURCE_DIR) + "/native/src/engine.cpp");
  CHECK(!header.empty() && !engine.empty(), "cannot read cm4j.h or engine.cpp");
  std::set<std::string> exported;
  const std::regex decl(R"(CM4J_API[^;(]*?\b(cm4j_\w+)\s*\()");
  for (std::sregex_iterator it(header.begin(), header.end(), decl), end; it != end; ++it)
    exported.insert((*it)[1]);
  CHECK(exported.size() >= 25, "found only %zu exported functions in cm4j.h", exported.size());
  for (const std::string& name : exported) {
    // The definition: the name at the start of a line's declarator, its body's first statement.
    const std::regex def("\\n[\\w\\s\\*]*\\b" + name + R"(\([^)]*\)\s*\{\s*([^;]*))");
    std::smatch m;
    if (!std::regex_search(engine, m, def)) {
      CHECK(false, "%s: no definition in engine.cpp", name.c_str());
      continue;
    }
    const std::string first = m[1];
    const bool ok = first.rfind("return guarded", 0) == 0 || first.rfind("guarded(", 0) == 0;
    CHECK(ok, "%s: body does not start with guarded(...): %s", name.c_str(),
          first.substr(0, 60).c_str());
  }
  std::printf("%zu exported functions\n", exported.size());
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}

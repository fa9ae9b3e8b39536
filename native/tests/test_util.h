// Helpers for the native tests: a minimal safetensors reader (the project's validating
// reader is the Java one; these files are our own golden data), error measures, and
// CHECK macros that count failures instead of aborting.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cm4j.h"

namespace cm4j_test {

struct TensorF {
  std::string dtype;           // "F32", "I64", ...
  std::vector<int64_t> shape;
  std::vector<float> f32;      // F32 data
  std::vector<int64_t> i64;    // I64 data
  std::vector<uint8_t> raw;    // bytes as stored
  int64_t numel() const;
};

// Reads every tensor of a safetensors file; returns false with *error on failure.
bool read_safetensors(const std::string& path, std::map<std::string, TensorF>* out,
                      std::string* error);
std::string read_text(const std::string& path);

// Binds every tensor of a safetensors file (F32) to the engine; a CM4J_* status.
int bind_safetensors(cm4j_unet* unet, const std::string& path);

// ||a - b|| / ||b||, in double.
double rel_l2(const float* a, const float* b, size_t n);
double max_abs(const float* a, const float* b, size_t n);

// Golden data folder: $CM4J_GOLDEN if set, else the compile-time CM4J_GOLDEN_DIR.
std::string golden_dir();

extern int failures;
#define CHECK(cond, ...)                                              \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                              \
      std::fprintf(stderr, "\n");                                     \
      ++cm4j_test::failures;                                          \
    }                                                                 \
  } while (0)

}  // namespace cm4j_test

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

// Binds every tensor of a safetensors file (F32, F16 or BF16) to the engine straight from
// the memory-mapped file, as the Java API does; a CM4J_* status.
int bind_safetensors(cm4j_unet* unet, const std::string& path);

// ||a - b|| / ||b||, in double.
double rel_l2(const float* a, const float* b, size_t n);
double max_abs(const float* a, const float* b, size_t n);

// The scheduler's arithmetic as the Java scheduler does it, one float32 operation at a time.
// Each operation is taken in double and rounded to float once: exact for a product of two
// floats, and for a sum or quotient the same float as a float32 operation (double has more
// than 2 * 24 + 2 bits), so no compiler contraction can change these results.
float reference_scale_model_input(float x, float divisor);
float reference_scheduler_step(float model_output, float sample, float noise, float c_skip,
                               float c_out, float s_noise, float noise_scale, bool clip);

// Per-step values of a consistency-model schedule for cm4j_unet_sample, [steps, batch] each,
// computed from sigmas (sigma_min 0.002, sigma_data 0.5, as the CD checkpoints) with the
// Java scheduler's formulas.
struct SampleTables {
  std::vector<float> timesteps, input_scale, c_skip, c_out, noise_scale;
};
SampleTables sample_tables(const std::vector<float>& sigmas, int batch);

// Bitwise equality of float arrays, every NaN equal to every NaN (as Java's Arrays.equals).
// Returns the index of the first difference, or -1.
int64_t first_difference(const float* a, const float* b, size_t n);

// "1,4,8" as integers, each in [min, max]; empty when the text is not such a list (the
// benches' --batch / --threads options).
std::vector<int> parse_int_list(const std::string& text, int min, int max);

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

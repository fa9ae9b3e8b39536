#include "synth.h"

#include <cmath>

namespace cm4j {

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return h;
}

double synth_v1_variate(uint64_t key, uint64_t i) {
  // splitmix64 finalizer over a Weyl sequence; the top 24 bits give u in [0, 1).
  uint64_t z = key + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z = z ^ (z >> 31);
  double u = static_cast<double>(z >> 40) * (1.0 / 16777216.0);
  return 2.0 * u - 1.0;
}

void synth_v1_fill(const std::string& name, const std::vector<int64_t>& shape, uint64_t seed,
                   float* out) {
  uint64_t key = fnv1a64(name) ^ seed;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  bool is_weight = name.size() >= 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
  double fan_in = 1;
  for (size_t i = 1; i < shape.size(); ++i) fan_in *= static_cast<double>(shape[i]);
  double sqrt_fan_in = std::sqrt(fan_in);
  for (int64_t i = 0; i < n; ++i) {
    double v = synth_v1_variate(key, static_cast<uint64_t>(i));
    double value = shape.size() >= 2 ? v / sqrt_fan_in : is_weight ? 1.0 + 0.1 * v : 0.05 * v;
    out[i] = static_cast<float>(value);
  }
}

}  // namespace cm4j

// synth-v1: deterministic weights as a pure function of (parameter name, shape, seed), so
// the real-size model runs with no download. Formula: ../shared/golden/README.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cm4j {

uint64_t fnv1a64(const std::string& s);
// The i-th uniform variate v in [-1, 1) of a parameter's stream (before scaling).
double synth_v1_variate(uint64_t key, uint64_t i);
void synth_v1_fill(const std::string& name, const std::vector<int64_t>& shape, uint64_t seed,
                   float* out);

}  // namespace cm4j

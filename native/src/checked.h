// Element counts of shapes that come from a file or a caller, multiplied without overflow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cm4j {

// The product of dims[0..n) into *out; false (and *out untouched) when a dim is negative or
// the product passes INT64_MAX.
inline bool checked_numel(const int64_t* dims, size_t n, int64_t* out) {
  int64_t p = 1;
  for (size_t i = 0; i < n; ++i)
    if (dims[i] < 0 || __builtin_mul_overflow(p, dims[i], &p)) return false;
  *out = p;
  return true;
}

inline bool checked_numel(const std::vector<int64_t>& dims, int64_t* out) {
  return checked_numel(dims.data(), dims.size(), out);
}

}  // namespace cm4j

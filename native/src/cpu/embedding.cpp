// The conditioning inputs: sinusoidal timestep embedding and class-label lookup.
#include <cmath>
#include <cstring>

#include "cm4j.h"
#include "cpu/ops.h"

namespace cm4j {
namespace cpu {

// diffusers get_timestep_embedding: the exponent and the product t * freq are float32
// operations there, so they are rounded to float here too; exp, sin and cos are computed
// in double and rounded once, which is what a correctly rounded float32 libm would give.
Status timestep_embedding(const float* t, float* emb, int batch, int dim, bool flip_sin_to_cos,
                          float freq_shift) {
  if (t == nullptr || emb == nullptr) return invalid("timestep_embedding: null pointer");
  if (batch <= 0 || dim < 2) return invalid("timestep_embedding: bad shape");
  const int half = dim / 2;
  const float log_max_period = static_cast<float>(-std::log(10000.0));
  const float denom = static_cast<float>(half) - freq_shift;
  for (int b = 0; b < batch; ++b) {
    float* row = emb + static_cast<size_t>(b) * dim;
    float* sin_part = row + (flip_sin_to_cos ? half : 0);
    float* cos_part = row + (flip_sin_to_cos ? 0 : half);
    for (int i = 0; i < half; ++i) {
      const float exponent = (log_max_period * static_cast<float>(i)) / denom;
      const float freq = static_cast<float>(std::exp(static_cast<double>(exponent)));
      const float arg = t[b] * freq;
      sin_part[i] = static_cast<float>(std::sin(static_cast<double>(arg)));
      cos_part[i] = static_cast<float>(std::cos(static_cast<double>(arg)));
    }
    if (dim % 2 == 1) row[dim - 1] = 0.0f;  // diffusers pads odd sizes with one zero
  }
  return Status::Ok();
}

Status embedding_lookup(const float* table, const int64_t* labels, float* rows, int batch, int dim) {
  if (table == nullptr || labels == nullptr || rows == nullptr) return invalid("embedding_lookup: null pointer");
  if (batch <= 0 || dim <= 0) return invalid("embedding_lookup: bad shape");
  for (int b = 0; b < batch; ++b) {
    if (labels[b] < 0) return invalid("embedding_lookup: negative label");
    std::memcpy(rows + static_cast<size_t>(b) * dim, table + labels[b] * dim, sizeof(float) * dim);
  }
  return Status::Ok();
}

}  // namespace cpu
}  // namespace cm4j

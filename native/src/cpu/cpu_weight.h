// The CPU backend's prepared weights: convolutions packed into GEMM panels once at load,
// linear layers kept in torch's [n, k] layout (dot products along k).
#pragma once

#include "backend.h"
#include "cpu/context.h"
#include "cpu/gemm.h"
#include "cpu/gemm_bf16.h"
#include "cpu/weight_memory.h"

namespace cm4j {
namespace cpu {

struct CpuWeight : Weight {
  enum class Kind { kConv, kLinear };
  Kind kind = Kind::kConv;
  int rows = 0;    // c_out or n
  int cols = 0;    // c_in * k * k or k; direct16: the padded c_in * k * k
  int c_in = 0;    // conv only
  int kernel = 0;  // conv only
  bool bf16 = false;  // conv only: data holds packed_a16_elems bf16 (gemm_bf16.h), not floats
  bool direct16 = false;  // bf16 conv on the amx/avx512bf16 paths: the conv_direct16.h layout
  size_t floats = 0;  // allocated size of data in floats
  WeightFloats data;
  // fp32 3x3 conv chosen for Winograd F(m x m, 3x3) (winograd.h): m (2 or 4), else 0, and
  // the transformed weight, (m+2)^2 PackedA of [c_out, c_in], kept beside the direct one.
  int wino_tile = 0;
  size_t wino_floats = 0;
  WeightFloats wino;

  size_t bytes() const override { return (floats + wino_floats) * sizeof(float); }
  PackedA packed() const { return PackedA{data.get(), rows, cols}; }
  PackedA wino_packed(int xi) const {
    return PackedA{wino.get() + xi * packed_a_floats(rows, c_in), rows, c_in};
  }
  PackedA16 packed16() const {
    return PackedA16{reinterpret_cast<const uint16_t*>(data.get()), rows, cols};
  }
};

}  // namespace cpu
}  // namespace cm4j

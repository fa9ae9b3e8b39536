// What every CPU op needs: the thread pool, the ISA's kernels and per-thread scratch.
// One context per CpuBackend; the backend serializes calls, so the scratch is never
// shared between two ops.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <vector>

#include "backend.h"
#include "cpu/attention_bf16.h"
#include "cpu/gemm.h"
#include "cpu/gemm_bf16.h"
#include "cpu/thread_pool.h"
#include "cpu/vecmath.h"
#include "cpu/weight_memory.h"
#include "cpu/winograd.h"

namespace cm4j {
namespace cpu {

// 64-byte aligned float storage (a cache line, and what aligned zmm loads need).
struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using AlignedFloats = std::unique_ptr<float[], FreeDeleter>;
// Null when the allocation fails.
AlignedFloats alloc_floats(size_t count);

Status out_of_memory(const char* what, size_t bytes);
Status invalid(const std::string& message);

struct CpuContext {
  // bf16: convolutions (3x3, 1x1, qkv, to_out) multiply bf16 operands (gemm_bf16.h).
  CpuContext(int threads, bool bf16);

  ThreadPool pool;
  Isa isa;
  TileKernel tile;
  const VecKernels* vec;
  bool bf16;
  Bf16Path bf16_path;  // meaningful when bf16
  Bf16Kernel tile16;
  ConvertB16 convert16;
  AttentionBf16Kernels attn16;
  ConvMode conv_mode;  // fp32 3x3 convs: CM4J_CPU_CONV or the per-layer rule (winograd.h)
  const WinogradKernels* wino;
  // Where prepared weights live (alloc_weight); shared with them, so it outlives the last.
  std::shared_ptr<WeightMemory> weight_memory = std::make_shared<WeightMemory>();

  // Makes every worker's scratch at least `floats` long (contents not kept).
  Status reserve_scratch(size_t floats);
  float* scratch(int worker) { return scratch_[worker].get(); }

  // One buffer shared by all workers for an op's repacked input (the direct16 conv's
  // bf16 planes, the Winograd conv's transformed tiles): at least `floats` long, contents
  // not kept.
  Status reserve_packed_input(size_t floats);
  float* packed_input() { return packed_input_.get(); }

 private:
  std::vector<AlignedFloats> scratch_;
  size_t scratch_floats_ = 0;
  AlignedFloats packed_input_;
  size_t packed_input_floats_ = 0;
};

}  // namespace cpu
}  // namespace cm4j

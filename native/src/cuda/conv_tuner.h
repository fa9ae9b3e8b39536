// The NHWC mode's conv kernel, chosen per op shape by measurement (CM4J_TUNING). The
// candidates: conv2d_nhwc_mma.cu with tile 128x64, 64x64 or 128x128 and 1..8 splits, conv2d_nhwc.cu
// (WMMA), for 1x1 convs cuBLAS's GEMM where libcublas loads (cuda/cublas_gemm.h), and with
// CM4J_CUDA_WGMMA=on on a compute capability 9.0 card, conv2d_nhwc_wgmma.cu with 1..8 splits.
//
// A choice is made in two parts (cuda/tuning_cache.h), so that an image gets the same bits
// batched or alone: the order (kernel family and split count, which fix the order of each
// output's sum) per image shape, measured on image 0 of the batch alone (batch 1); then,
// where the order is the mma kernel's, its tile (which spreads the same sums over other
// blocks) per batch size, among the three tiles of that order. A shape the tuning cache
// lacks, or holds a choice that cannot run here (cuBLAS missing), is measured, in full mode,
// the first time it runs (the second kind for this process only): each candidate once into a
// scratch output, checked against the fixed rule's output (dropped unless within the
// dtype's bound), then timed with CUDA events on the backend's stream; the fastest is kept
// (the rule wins a tie) and written to the cache. Never while the stream is being captured
// (a CUDA graph's capture waits on nothing): there the rule runs. Include only with
// CM4J_HAVE_CUDA.
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "conv2d_nhwc.cuh"
#include "cuda/cublas_gemm.h"
#include "cuda/tuning_cache.h"

namespace cm4j {

// This device's identity for the cache file: name, SMs, driver, cm4j_version(), the version
// marked "+wgmma" where the wgmma kernel is a candidate (CM4J_CUDA_WGMMA=on on a card it runs
// on): its choices are measured among more kernels, so they are kept in a file of their own,
// and turning the switch on measures every shape again.
TuningIdentity tuning_identity(int device, bool wgmma = false);

class ConvTuner {
 public:
  // Opens the cache of `device`'s identity (the file under tuning_cache_dir()) unless mode
  // is off (then the device is not even asked for its identity). wgmma: the sm_90a kernel is
  // a candidate where the device runs it.
  ConvTuner(TuningMode mode, int device, bool wgmma = false);

  // The kernel for p: the cache's where it holds one that p allows, else (full mode, not
  // capturing) measured now, else the fixed rule. Measuring queues work on `stream` and
  // waits for it; a failure there falls back to the rule. Thread-safe; each shape's choice
  // is decided once per tuner (outside a capture) and then looked up in a memo.
  ConvChoice choose(const kernels::Conv2dNhwcParams& p, cudaStream_t stream, bool capturing);

  // Queues the conv with kernel `c` (a choice of this tuner), with `workspace` of at least
  // conv_choice_workspace_floats(p, c) floats.
  cudaError_t run(const kernels::Conv2dNhwcParams& p, const ConvChoice& c, float* workspace,
                  cudaStream_t stream);

 private:
  // What a choice depends on, without building strings: the shape, the batch, and whether
  // the mma kernel takes p's pointers (their alignment).
  struct MemoKey {
    int type, batch, c_in1, c_in2, c_out, kernel, stride, pad, upsample, h_in, w_in, norm, mma;
    auto tie() const {
      return std::tie(type, batch, c_in1, c_in2, c_out, kernel, stride, pad, upsample, h_in,
                      w_in, norm, mma);
    }
    bool operator<(const MemoKey& o) const { return tie() < o.tie(); }
  };

  ConvChoice decide(const kernels::Conv2dNhwcParams& p, cudaStream_t stream, bool capturing);
  // persist: write what is measured to the file, else hold it in memory only.
  void measure_order(const kernels::Conv2dNhwcParams& p, cudaStream_t stream, bool persist);
  ConvTile measure_tile(const kernels::Conv2dNhwcParams& p, const ConvChoice& c,
                        cudaStream_t stream, bool persist);
  bool measure(const kernels::Conv2dNhwcParams& p, const ConvChoice& reference,
               const std::vector<ConvChoice>& cands, cudaStream_t stream, ConvChoice* out);
  void store(const TuningEntries& add, bool persist);
  bool allowed(const kernels::Conv2dNhwcParams& p, const ConvChoice& c, bool capturing);
  std::vector<ConvChoice> candidates(const kernels::Conv2dNhwcParams& p);
  double time_ms(const kernels::Conv2dNhwcParams& p, const ConvChoice& c, float* workspace,
                 cudaStream_t stream);

  const TuningMode mode_;
  std::shared_ptr<TuningCache> cache_;
  std::mutex mu_;  // memo_ and cuBLAS's opening
  std::map<MemoKey, ConvChoice> memo_;
  // cuBLAS, opened on first need outside a capture (it allocates); absent without libcublas.
  std::unique_ptr<CublasGemm> cublas_;
  bool cublas_tried_ = false;
  std::string cublas_problem_;  // why cuBLAS did not open
  // Why the wgmma kernel is no candidate here (switched off, or a card it does not run on);
  // empty where it is one.
  std::string wgmma_problem_;
};

// p's image shape, as the tuning cache keys it.
ConvShape conv_shape_of(const kernels::Conv2dNhwcParams& p);

// The fixed rule's choice (CM4J_TUNING=off): conv2d_nhwc_mma_rule where the mma kernel
// applies, else WMMA.
ConvChoice conv_rule(const kernels::Conv2dNhwcParams& p);

// The fp32 workspace `c` needs (split-K's partial sums, cuBLAS's sums; 0 for none).
size_t conv_choice_workspace_floats(const kernels::Conv2dNhwcParams& p, const ConvChoice& c);

// Test hooks, not part of any API: `cost` replaces the timing of a candidate at a batch size
// (ms; a negative cost skips the candidate unrun), `alter` may change a candidate's output
// (fp32, NHWC) before its check, `chosen` sees every choice made. Null restores the default.
// Process-wide.
namespace conv_tuner_test {
void set_hooks(std::function<double(const ConvShape&, int batch, const ConvChoice&)> cost,
               std::function<void(const ConvChoice&, std::vector<float>*)> alter,
               std::function<void(const ConvShape&, int batch, const ConvChoice&)> chosen);
}

}  // namespace cm4j

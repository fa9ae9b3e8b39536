// Named weights: the parameters a config needs (in diffusers' state-dict names), binding
// checks against them, and each weight prepared once for the backend.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend.h"

namespace cm4j {

// How a parameter reaches the backend.
enum class ParamKind {
  Conv,    // conv weight [c_out, c_in, k, k] -> prepare_conv, under `target`
  Linear,  // nn.Linear weight [n, k] -> prepare_linear, under `target`
  Vector,  // bias / norm affine / embedding table: plain device floats, under the name
  QkvWeight,  // to_q/to_k/to_v weight [C, C]: concatenated into one 1x1 conv [3C, C]
  QkvBias,    // to_q/to_k/to_v bias [C]: concatenated into `target`.bias [3C]
  // Every resnet's time_emb_proj weight [n_r, K] / bias [n_r]: stacked in `part` order into
  // one linear [sum n_r, K] under `target` and the vector `target`.bias [sum n_r].
  TimeProjWeight,
  TimeProjBias,
};

struct ParamSpec {
  std::string name;             // e.g. down_blocks.1.attentions.0.to_q.weight
  std::vector<int64_t> shape;
  ParamKind kind = ParamKind::Vector;
  std::string target;           // prepared weight's name (conv/linear/qkv prefix)
  int part = 0;                 // q, k, v index for Qkv kinds; resnet index for TimeProj
  std::optional<ConvParams> use;  // Conv: the one conv call this weight serves, if known
  int64_t numel() const;
};

class WeightStore {
 public:
  WeightStore(Backend* backend, std::vector<ParamSpec> specs);
  ~WeightStore();

  const std::vector<ParamSpec>& specs() const { return specs_; }

  // Records name/shape problems for finalize(); returns non-OK only for hard failures
  // (out of memory, device errors). data is float32, already converted.
  Status bind(const std::string& name, const std::vector<int64_t>& shape, const float* data);
  // Every missing, unexpected, duplicate and mis-shaped key in one message.
  Status finalize();
  bool finalized() const { return finalized_; }

  const Weight* prepared(const std::string& target) const;
  const float* vec(const std::string& name) const;  // device floats
  size_t bytes() const;

 private:
  Status store_stacked(const ParamSpec& spec, const float* data);

  Backend* backend_;
  std::vector<ParamSpec> specs_;
  std::map<std::string, size_t> index_;
  std::vector<bool> bound_;
  std::vector<bool> seen_;  // bound with the wrong shape: reported as mis-shaped, not missing
  std::vector<std::string> unexpected_, misshaped_, duplicate_;
  std::map<std::string, std::unique_ptr<Weight>> prepared_;
  std::map<std::string, std::pair<float*, size_t>> vectors_;
  // A parameter stacked from parts (q/k/v, every time_emb_proj) along its first dimension,
  // kept on the host until every part has arrived. Keyed by target + ".weight" / ".bias".
  struct Stack {
    std::vector<int64_t> offset;  // per part, in floats
    std::vector<int64_t> size;    // per part, in floats
    std::vector<bool> arrived;
    int64_t rows = 0, cols = 1;   // the stacked [rows, cols] (cols 1 for biases)
    std::unique_ptr<float[]> data;  // not zeroed: every part is copied in
  };
  std::map<std::string, Stack> stacks_;
  bool finalized_ = false;
};

// float16 / bfloat16 -> float32.
float half_to_float(uint16_t h);
float bfloat16_to_float(uint16_t b);

}  // namespace cm4j

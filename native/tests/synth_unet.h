// A whole UNet for tests that need no checkpoint: a golden folder's config (tiny, lsun_mini,
// imagenet64) with synth-v1 weights (the golden README's formula) bound on a backend.
// Failures are reported through CHECK (test_util.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "synth.h"
#include "test_util.h"
#include "unet_config.h"
#include "unet_graph.h"
#include "weights.h"

namespace cm4j_test {

struct SynthUNet {
  cm4j::UNetConfig cfg;
  std::unique_ptr<cm4j::WeightStore> weights;
};

inline bool load_unet_config(const std::string& model, cm4j::UNetConfig* cfg) {
  const std::string path = model == "tiny" ? golden_dir() + "/tiny/pipeline/unet/config.json"
                                           : golden_dir() + "/" + model + "/config.json";
  const std::string json = read_text(path);
  CHECK(!json.empty(), "%s: no config at %s", model.c_str(), path.c_str());
  if (json.empty()) return false;
  cm4j::Status s = cm4j::parse_unet_config(json, cfg);
  CHECK(s.ok(), "%s: %s", model.c_str(), s.message.c_str());
  return s.ok();
}

// Every parameter of `model` filled by synth_v1_fill(name, shape, seed), bound and finalized
// on `backend` (which must outlive m->weights).
inline bool load_synth_unet(const std::string& model, cm4j::Backend* backend, int seed,
                            SynthUNet* m) {
  if (!load_unet_config(model, &m->cfg)) return false;
  std::vector<cm4j::ParamSpec> specs;
  cm4j::Status s = cm4j::build_unet(m->cfg, nullptr, {}, &specs, nullptr, nullptr);
  CHECK(s.ok(), "%s: declare: %s", model.c_str(), s.message.c_str());
  if (!s.ok()) return false;
  m->weights = std::make_unique<cm4j::WeightStore>(backend, specs);
  std::vector<float> host;
  for (const cm4j::ParamSpec& p : specs) {
    host.resize(static_cast<size_t>(p.numel()));
    cm4j::synth_v1_fill(p.name, p.shape, seed, host.data());
    s = m->weights->bind(p.name, p.shape, host.data());
    CHECK(s.ok(), "%s: bind %s: %s", model.c_str(), p.name.c_str(), s.message.c_str());
    if (!s.ok()) return false;
  }
  s = m->weights->finalize();
  CHECK(s.ok(), "%s: finalize: %s", model.c_str(), s.message.c_str());
  return s.ok();
}

}  // namespace cm4j_test

// Walks a UNet2DModel config the way diffusers' modules run, declaring every parameter
// under its state-dict name and emitting the backend calls of one forward pass.
#pragma once

#include <vector>

#include "plan.h"
#include "unet_config.h"
#include "weights.h"

namespace cm4j {

struct GraphOptions {
  int batch = 1;
  bool capture_taps = false;
  // Asked which group norms fuse into the conv they feed (Backend::conv_fuses_norm); null:
  // none do.
  const Backend* backend = nullptr;
};

// Declares the parameters of `config` into *specs (state-dict names and shapes, in the
// order they are used). When `weights` is non-null, also fills *plan with the forward pass
// for opts.batch and *taps with the debug taps it records; weights must be finalized.
Status build_unet(const UNetConfig& config, const WeightStore* weights, const GraphOptions& opts,
                  std::vector<ParamSpec>* specs, Plan* plan, std::vector<Tap>* taps);

}  // namespace cm4j

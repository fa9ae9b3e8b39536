// The subset of diffusers' UNet2DModel config that the consistency-model checkpoints use,
// parsed and validated. Anything outside it is refused with the key and value named.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend.h"

namespace cm4j {

enum class BlockType {
  ResnetDownsampleBlock2D,
  AttnDownBlock2D,
  DownBlock2D,
  AttnUpBlock2D,
  ResnetUpsampleBlock2D,
  UpBlock2D,
};

struct UNetConfig {
  int sample_size = 0;
  int in_channels = 3;
  int out_channels = 3;
  bool flip_sin_to_cos = true;
  float freq_shift = 0;
  std::vector<BlockType> down_block_types;
  std::vector<BlockType> up_block_types;
  std::vector<int> block_out_channels;
  int layers_per_block = 2;
  float mid_block_scale_factor = 1;
  std::string downsample_type = "conv";  // "conv" or "resnet"
  std::string upsample_type = "conv";    // "conv" or "resnet"
  int attention_head_dim = 8;            // 0: null, the block's channel count
  int norm_num_groups = 32;
  int attn_norm_num_groups = 0;          // 0: null (see mid_attn_groups)
  float norm_eps = 1e-5f;
  bool scale_shift = false;              // resnet_time_scale_shift == "scale_shift"
  bool add_attention = true;
  int num_class_embeds = 0;              // 0: unconditional

  int time_embed_dim() const { return block_out_channels[0] * 4; }
  // Groups of the mid-block attention's group norm; 0 means it has none (diffusers:
  // attn_norm_num_groups, else norm_num_groups only for "default" time conditioning).
  int mid_attn_groups() const {
    if (attn_norm_num_groups > 0) return attn_norm_num_groups;
    return scale_shift ? 0 : norm_num_groups;
  }
  int head_dim(int channels) const { return attention_head_dim > 0 ? attention_head_dim : channels; }
  // A bound on the elements of one image's widest activation: at each level, three times its
  // channels (an up block's input concatenates a skip of at most twice as many) over its
  // pixels. The backends count an activation's elements in 32 bits, batch included.
  int64_t image_elements() const;
  // The largest batch whose activations stay within those 32-bit counts.
  int max_batch() const;
};

const char* block_type_name(BlockType t);

// Parses config.json text. CM4J_ERR_INVALID_ARGUMENT for malformed JSON or wrong value
// types, CM4J_ERR_UNSUPPORTED for keys/values outside the family, naming key and value.
Status parse_unet_config(const std::string& json, UNetConfig* out);

}  // namespace cm4j

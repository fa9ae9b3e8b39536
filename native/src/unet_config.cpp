#include "unet_config.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <set>

#include "cm4j.h"
#include "json.h"

namespace cm4j {
namespace {

struct BlockName {
  const char* name;
  BlockType type;
  bool down;
};
constexpr BlockName kBlocks[] = {
    {"ResnetDownsampleBlock2D", BlockType::ResnetDownsampleBlock2D, true},
    {"AttnDownBlock2D", BlockType::AttnDownBlock2D, true},
    {"DownBlock2D", BlockType::DownBlock2D, true},
    {"AttnUpBlock2D", BlockType::AttnUpBlock2D, false},
    {"ResnetUpsampleBlock2D", BlockType::ResnetUpsampleBlock2D, false},
    {"UpBlock2D", BlockType::UpBlock2D, false},
};

// A key or value as a message quotes it: cut short past 60 bytes (a hostile config may hold
// megabytes in one string, which a message should not repeat).
std::string brief(const std::string& text) {
  if (text.size() <= 60) return text;
  return text.substr(0, 48) + "... (" + std::to_string(text.size()) + " bytes)";
}

Status invalid(const std::string& msg) { return {CM4J_ERR_INVALID_ARGUMENT, "config: " + msg}; }
Status unsupported(const std::string& key, const JsonValue& v, const std::string& why) {
  return {CM4J_ERR_UNSUPPORTED,
          "config: unsupported " + brief(key) + " = " + brief(v.dump()) + (why.empty() ? "" : " (" + why + ")")};
}

// Integer values are checked once, against these ranges, before any is converted to int: a
// double outside int's range would be undefined behaviour to convert. The bounds leave every
// released UNet2DModel config far inside (channels <= 1280, samples <= 1024, 3 layers, 1000
// classes) and keep each weight's element count far below 2^63 (65536^2 x 3 x 3).
constexpr int kMaxChannels = 65536;
constexpr int kMaxSampleSize = 16384;
constexpr int kMaxLayersPerBlock = 1024;
constexpr int kMaxClasses = 1 << 24;

// `key` holds an integer in [lo, hi]; *out is set only then.
Status whole(const std::string& key, const JsonValue& v, int lo, int hi, int* out) {
  if (v.type != JsonValue::Type::Number || v.number != std::floor(v.number) || v.number < lo ||
      v.number > hi)
    return invalid(key + " must be an integer in [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "], found " + brief(v.dump()));
  *out = static_cast<int>(v.number);
  return Status::Ok();
}

// Reads the config's typed values; every reader fails with the key named.
class Reader {
 public:
  explicit Reader(const JsonValue& root) : root_(root) {}

  Status integer(const char* key, int* out, int lo, int hi, bool nullable = false) {
    const JsonValue* v = root_.find(key);
    if (!v || (nullable && v->is_null())) return Status::Ok();
    return whole(key, *v, lo, hi, out);
  }
  // A number of the config, checked once here: finite and a float (the engine computes in
  // float; a double beyond float's range would become infinite).
  Status real(const char* key, float* out) {
    const JsonValue* v = root_.find(key);
    if (!v) return Status::Ok();
    if (v->type != JsonValue::Type::Number || !std::isfinite(v->number) ||
        std::fabs(v->number) > FLT_MAX)
      return invalid(std::string(key) + " must be a finite float32 number, found " + brief(v->dump()));
    *out = static_cast<float>(v->number);
    return Status::Ok();
  }
  Status boolean(const char* key, bool* out) {
    const JsonValue* v = root_.find(key);
    if (!v) return Status::Ok();
    if (v->type != JsonValue::Type::Bool)
      return invalid(std::string(key) + " must be true or false, found " + brief(v->dump()));
    *out = v->boolean;
    return Status::Ok();
  }
  Status text(const char* key, std::string* out, bool nullable = false) {
    const JsonValue* v = root_.find(key);
    if (!v || (nullable && v->is_null())) return Status::Ok();
    if (v->type != JsonValue::Type::String)
      return invalid(std::string(key) + " must be a string, found " + brief(v->dump()));
    *out = v->string;
    return Status::Ok();
  }
  // A key that must be absent, null, or one of the allowed values (the family's only choice).
  Status only(const char* key, std::initializer_list<const char*> allowed, bool null_ok) {
    const JsonValue* v = root_.find(key);
    if (!v || (null_ok && v->is_null())) return Status::Ok();
    if (v->type == JsonValue::Type::String)
      for (const char* a : allowed)
        if (v->string == a) return Status::Ok();
    std::string list;
    for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    return unsupported(key, *v, "supported: " + list + (null_ok ? ", null" : ""));
  }
  Status blocks(const char* key, bool down, std::vector<BlockType>* out) {
    const JsonValue* v = root_.find(key);
    if (!v) return invalid(std::string("missing ") + key);
    if (v->type != JsonValue::Type::Array || v->array.empty())
      return invalid(std::string(key) + " must be a non-empty list, found " + brief(v->dump()));
    for (size_t i = 0; i < v->array.size(); ++i) {
      const JsonValue& e = v->array[i];
      const BlockName* hit = nullptr;
      for (const auto& b : kBlocks)
        if (e.type == JsonValue::Type::String && e.string == b.name && b.down == down) hit = &b;
      if (!hit)
        return unsupported(std::string(key) + "[" + std::to_string(i) + "]", e,
                           down ? "supported: ResnetDownsampleBlock2D, AttnDownBlock2D, DownBlock2D"
                                : "supported: AttnUpBlock2D, ResnetUpsampleBlock2D, UpBlock2D");
      out->push_back(hit->type);
    }
    return Status::Ok();
  }

 private:
  const JsonValue& root_;
};

#define CM4J_TRY(expr)            \
  do {                            \
    Status s_ = (expr);           \
    if (!s_.ok()) return s_;      \
  } while (0)

// Keys of UNet2DModel.__init__ across diffusers releases; anything else is refused so a
// config from another model class never runs silently wrong.
const std::set<std::string> kKnownKeys = {
    "sample_size", "in_channels", "out_channels", "center_input_sample", "time_embedding_type",
    "time_embedding_dim", "freq_shift", "flip_sin_to_cos", "down_block_types", "mid_block_type",
    "up_block_types", "block_out_channels", "layers_per_block", "mid_block_scale_factor",
    "downsample_padding", "downsample_type", "upsample_type", "dropout", "act_fn",
    "attention_head_dim", "norm_num_groups", "attn_norm_num_groups", "norm_eps",
    "resnet_time_scale_shift", "add_attention", "class_embed_type", "num_class_embeds",
    "num_train_timesteps"};

Status check_structure(const JsonValue& root, UNetConfig* c) {
  if (c->block_out_channels.size() != c->down_block_types.size())
    return invalid("block_out_channels has " + std::to_string(c->block_out_channels.size()) +
                   " entries but down_block_types has " +
                   std::to_string(c->down_block_types.size()));
  if (c->up_block_types.size() != c->down_block_types.size())
    return invalid("up_block_types has " + std::to_string(c->up_block_types.size()) +
                   " entries but down_block_types has " +
                   std::to_string(c->down_block_types.size()));
  // Every level but the last halves the resolution.
  int levels = static_cast<int>(c->down_block_types.size()) - 1;
  if (levels > 20 || c->sample_size % (1 << levels) != 0)
    return unsupported("sample_size", *root.find("sample_size"),
                       "must be divisible by 2^" + std::to_string(levels));
  size_t n = c->block_out_channels.size();
  for (size_t i = 0; i < n; ++i) {
    int ch = c->block_out_channels[i];
    if (ch % c->norm_num_groups != 0)
      return unsupported("norm_num_groups", *root.find("norm_num_groups"),
                         "does not divide block_out_channels entry " + std::to_string(ch));
    // Attention splits the channels into heads of attention_head_dim (the mid block's too).
    bool attends = c->down_block_types[i] == BlockType::AttnDownBlock2D ||
                   c->up_block_types[n - 1 - i] == BlockType::AttnUpBlock2D ||
                   (i == n - 1 && c->add_attention);
    if (attends && ch % c->head_dim(ch) != 0)
      return unsupported("attention_head_dim", *root.find("attention_head_dim"),
                         "does not divide block_out_channels entry " + std::to_string(ch));
  }
  if (c->max_batch() < 1)
    return unsupported("sample_size", *root.find("sample_size"),
                       "with these block_out_channels an activation of one image would hold up to " +
                           std::to_string(c->image_elements()) + " elements, over 2^31 - 1");
  int groups = c->mid_attn_groups();
  if (groups > 0 && c->block_out_channels.back() % groups != 0)
    return unsupported("attn_norm_num_groups", *root.find("attn_norm_num_groups"),
                       "does not divide the mid block's channels");
  return Status::Ok();
}

}  // namespace

int64_t UNetConfig::image_elements() const {
  // Each factor is bounded by the parse (channels <= 2^16, pixels <= 2^28): no overflow.
  int64_t most = int64_t{3} * std::max(in_channels, out_channels) * sample_size * sample_size;
  for (size_t i = 0; i < block_out_channels.size(); ++i) {
    int64_t side = sample_size >> i;
    most = std::max<int64_t>(most, int64_t{3} * block_out_channels[i] * side * side);
  }
  return most;
}

int UNetConfig::max_batch() const { return static_cast<int>(INT32_MAX / image_elements()); }

const char* block_type_name(BlockType t) {
  for (const auto& b : kBlocks)
    if (b.type == t) return b.name;
  return "?";
}

Status parse_unet_config(const std::string& json, UNetConfig* out) {
  JsonValue root;
  std::string error;
  if (!parse_json(json, &root, &error)) return invalid("invalid JSON at " + error);
  if (root.type != JsonValue::Type::Object) return invalid("the top level must be an object");
  for (const auto& kv : root.object)
    if (kv.first.empty() || (kv.first[0] != '_' && !kKnownKeys.count(kv.first)))
      return unsupported(kv.first, kv.second, "not a UNet2DModel key");

  UNetConfig c;
  Reader r(root);
  const JsonValue* size = root.find("sample_size");
  if (!size) return invalid("missing sample_size");
  if (size->type == JsonValue::Type::Array && size->array.size() == 2) {  // [s, s]: square
    int w = 0;
    CM4J_TRY(whole("sample_size[0]", size->array[0], 1, kMaxSampleSize, &c.sample_size));
    CM4J_TRY(whole("sample_size[1]", size->array[1], 1, kMaxSampleSize, &w));
    if (w != c.sample_size) return unsupported("sample_size", *size, "only square samples");
  } else if (size->type == JsonValue::Type::Array) {
    return unsupported("sample_size", *size, "only square samples");
  } else {
    CM4J_TRY(r.integer("sample_size", &c.sample_size, 1, kMaxSampleSize));
  }
  CM4J_TRY(r.integer("in_channels", &c.in_channels, 1, kMaxChannels));
  CM4J_TRY(r.integer("out_channels", &c.out_channels, 1, kMaxChannels));
  bool center = false;
  CM4J_TRY(r.boolean("center_input_sample", &center));
  if (center) return unsupported("center_input_sample", *root.find("center_input_sample"), "");
  CM4J_TRY(r.only("time_embedding_type", {"positional"}, false));
  if (const JsonValue* v = root.find("time_embedding_dim"); v && !v->is_null())
    return unsupported("time_embedding_dim", *v, "only null (4 x block_out_channels[0])");
  CM4J_TRY(r.real("freq_shift", &c.freq_shift));
  CM4J_TRY(r.boolean("flip_sin_to_cos", &c.flip_sin_to_cos));
  CM4J_TRY(r.blocks("down_block_types", true, &c.down_block_types));
  CM4J_TRY(r.blocks("up_block_types", false, &c.up_block_types));
  CM4J_TRY(r.only("mid_block_type", {"UNetMidBlock2D"}, false));
  if (const JsonValue* v = root.find("block_out_channels")) {
    if (v->type != JsonValue::Type::Array)
      return invalid("block_out_channels must be a list, found " + brief(v->dump()));
    for (size_t i = 0; i < v->array.size(); ++i) {
      int ch = 0;
      CM4J_TRY(whole("block_out_channels[" + std::to_string(i) + "]", v->array[i], 1, kMaxChannels,
                     &ch));
      c.block_out_channels.push_back(ch);
    }
  } else {
    return invalid("missing block_out_channels");
  }
  CM4J_TRY(r.integer("layers_per_block", &c.layers_per_block, 1, kMaxLayersPerBlock));
  CM4J_TRY(r.real("mid_block_scale_factor", &c.mid_block_scale_factor));
  int padding = 1;
  CM4J_TRY(r.integer("downsample_padding", &padding, INT32_MIN, INT32_MAX));
  if (padding != 1) return unsupported("downsample_padding", *root.find("downsample_padding"), "only 1");
  CM4J_TRY(r.only("downsample_type", {"conv", "resnet"}, false));
  CM4J_TRY(r.text("downsample_type", &c.downsample_type));
  CM4J_TRY(r.only("upsample_type", {"conv", "resnet"}, false));
  CM4J_TRY(r.text("upsample_type", &c.upsample_type));
  CM4J_TRY(r.only("act_fn", {"silu", "swish"}, false));
  CM4J_TRY(r.integer("attention_head_dim", &c.attention_head_dim, 1, kMaxChannels, true));
  if (const JsonValue* v = root.find("attention_head_dim"); v && v->is_null()) c.attention_head_dim = 0;
  CM4J_TRY(r.integer("norm_num_groups", &c.norm_num_groups, 1, kMaxChannels));
  CM4J_TRY(r.integer("attn_norm_num_groups", &c.attn_norm_num_groups, 1, kMaxChannels, true));
  CM4J_TRY(r.real("norm_eps", &c.norm_eps));
  // Group norm divides by sqrt(variance + eps): a constant group (variance 0) would give NaN.
  if (!(c.norm_eps > 0))
    return invalid("norm_eps must be positive, found " + brief(root.find("norm_eps")->dump()));
  CM4J_TRY(r.only("resnet_time_scale_shift", {"default", "scale_shift"}, false));
  std::string shift = "default";
  CM4J_TRY(r.text("resnet_time_scale_shift", &shift));
  c.scale_shift = shift == "scale_shift";
  CM4J_TRY(r.boolean("add_attention", &c.add_attention));
  CM4J_TRY(r.only("class_embed_type", {}, true));
  CM4J_TRY(r.integer("num_class_embeds", &c.num_class_embeds, 0, kMaxClasses, true));
  // Training-only numbers, not used here, still checked like the others.
  float dropout = 0;
  CM4J_TRY(r.real("dropout", &dropout));
  int train_steps = 0;
  CM4J_TRY(r.integer("num_train_timesteps", &train_steps, 0, INT32_MAX, true));
  CM4J_TRY(check_structure(root, &c));
  *out = c;
  return Status::Ok();
}

}  // namespace cm4j

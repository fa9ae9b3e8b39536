// Binding: every missing, unexpected, duplicate and mis-shaped key reported together;
// f16/bf16 inputs converted; calls out of order refused; bound data used in place or
// staged, never kept past the call.
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cm4j.h"
#include "test_util.h"
#include "weights.h"

using namespace cm4j_test;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The tiny model's output for one fixed input, its weights bound from the memory-mapped
// file (offset < 0), or each from a copy `offset` bytes into a buffer that is overwritten
// with NaNs right after its bind (1: float32 data off its alignment, converted through the
// engine's staging buffer; 0: aligned, used where it lies).
std::vector<float> tiny_output(const std::string& config, int offset) {
  cm4j_unet* u = nullptr;
  std::vector<float> out;
  if (cm4j_unet_create(config.c_str(), "cpu:2", CM4J_F32, &u) != CM4J_OK) return out;
  const std::string file = golden_dir() + "/tiny/pipeline/unet/diffusion_pytorch_model.safetensors";
  int rc = CM4J_OK;
  if (offset < 0) {
    rc = bind_safetensors(u, file);
  } else {
    std::map<std::string, TensorF> weights;
    std::string error;
    CHECK(read_safetensors(file, &weights, &error), "%s", error.c_str());
    for (const auto& kv : weights) {
      const TensorF& t = kv.second;
      std::vector<uint32_t> buffer(t.raw.size() / 4 + 2);  // 4-byte aligned
      char* data = reinterpret_cast<char*>(buffer.data()) + offset;
      std::memcpy(data, t.raw.data(), t.raw.size());
      if (rc == CM4J_OK)
        rc = cm4j_unet_bind(u, kv.first.c_str(), CM4J_F32, t.shape.data(),
                            static_cast<int>(t.shape.size()), data, static_cast<int64_t>(t.raw.size()));
      std::memset(buffer.data(), 0xFF, buffer.size() * 4);  // NaNs, should the engine look again
    }
  }
  const int s = cm4j_unet_sample_size(u), c = cm4j_unet_in_channels(u);
  std::vector<float> sample(static_cast<size_t>(c) * s * s, 0.1f), result(sample.size());
  float t = 250.0f;
  int64_t label = 7;
  if (rc == CM4J_OK && cm4j_unet_finalize(u) == CM4J_OK &&
      cm4j_unet_forward(u, 1, sample.data(), &t, &label, result.data()) == CM4J_OK)
    out = result;
  CHECK(!out.empty(), "tiny model, weights at offset %d: %s", offset, cm4j_last_error());
  cm4j_unet_destroy(u);
  return out;
}

}  // namespace

int main() {
  std::string config = read_text(golden_dir() + "/tiny/pipeline/unet/config.json");
  cm4j_unet* u = nullptr;
  CHECK(cm4j_unet_create(config.c_str(), "cpu", CM4J_F32, &u) == CM4J_OK, "%s", cm4j_last_error());
  if (!u) return 1;
  int n = cm4j_unet_param_count(u);
  CHECK(n == 225, "tiny has 225 parameters, found %d", n);  // as in its safetensors file

  float dummy[3] = {0, 0, 0};
  CHECK(cm4j_unet_forward(u, 1, dummy, dummy, nullptr, dummy) == CM4J_ERR_STATE,
        "forward before finalize: %s", cm4j_last_error());

  std::vector<float> data;
  for (int i = 0; i < n; ++i) {
    std::string name = cm4j_unet_param_name(u, i);
    int64_t shape[4];
    int ndim = cm4j_unet_param_shape(u, i, shape);
    if (name == "conv_in.bias") continue;  // left missing
    if (name == "conv_out.weight") shape[0] = 4;  // mis-shaped
    int64_t numel = 1;
    for (int d = 0; d < ndim; ++d) numel *= shape[d];
    data.assign(static_cast<size_t>(numel), 0.5f);
    CHECK(cm4j_unet_bind(u, name.c_str(), CM4J_F32, shape, ndim, data.data(), numel * 4) == CM4J_OK,
          "bind %s: %s", name.c_str(), cm4j_last_error());
  }
  int64_t one = 1;
  cm4j_unet_bind(u, "unet.extra.weight", CM4J_F32, &one, 1, dummy, 4);
  int64_t bytes_wrong = 3;
  CHECK(cm4j_unet_bind(u, "conv_in.bias", CM4J_F32, &bytes_wrong, 1, dummy, 4) ==
            CM4J_ERR_INVALID_ARGUMENT, "byte count mismatch accepted");

  CHECK(cm4j_unet_finalize(u) == CM4J_ERR_WEIGHTS, "finalize accepted bad weights");
  std::string msg = cm4j_last_error();
  CHECK(contains(msg, "1 missing keys: conv_in.bias"), "%s", msg.c_str());
  CHECK(contains(msg, "1 unexpected keys: unet.extra.weight"), "%s", msg.c_str());
  CHECK(contains(msg, "conv_out.weight (expected [3, 32, 3, 3], found [4, 32, 3, 3])"), "%s", msg.c_str());
  cm4j_unet_destroy(u);
  cm4j_unet_destroy(nullptr);  // harmless

  // The same output, bit for bit, whether a weight is read where it lies or staged.
  const std::vector<float> mapped = tiny_output(config, -1), aligned = tiny_output(config, 0),
                           unaligned = tiny_output(config, 1);
  CHECK(!mapped.empty() && mapped.size() == aligned.size() && mapped.size() == unaligned.size() &&
            first_difference(mapped.data(), aligned.data(), mapped.size()) < 0 &&
            first_difference(mapped.data(), unaligned.data(), mapped.size()) < 0,
        "tiny output differs between the mapped file, aligned and unaligned copies");

  // Half-precision conversions, including subnormals and infinities.
  CHECK(cm4j::half_to_float(0x3C00) == 1.0f, "f16 1.0");
  CHECK(cm4j::half_to_float(0xC000) == -2.0f, "f16 -2.0");
  CHECK(cm4j::half_to_float(0x0001) == 5.960464477539063e-08f, "f16 smallest subnormal");
  CHECK(cm4j::half_to_float(0x7C00) > 1e38f, "f16 inf");
  CHECK(cm4j::bfloat16_to_float(0x3F80) == 1.0f, "bf16 1.0");
  CHECK(cm4j::bfloat16_to_float(0xC0A0) == -5.0f, "bf16 -5.0");
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}

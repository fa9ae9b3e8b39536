// Binding: every missing, unexpected, duplicate and mis-shaped key reported together;
// f16/bf16 inputs converted; calls out of order refused.
#include <cstdio>
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

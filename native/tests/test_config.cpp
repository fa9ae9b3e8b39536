// Config parsing: the family is accepted, everything else refused with key and value named.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cm4j.h"
#include "test_util.h"
#include "unet_config.h"

using namespace cm4j_test;

namespace {

std::string tiny() { return read_text(golden_dir() + "/tiny/pipeline/unet/config.json"); }

// Replaces the first occurrence of `from` in the tiny config.
std::string edited(const std::string& from, const std::string& to) {
  std::string s = tiny();
  size_t at = s.find(from);
  if (at == std::string::npos) return "";
  return s.replace(at, from.size(), to);
}

void expect_error(const std::string& json, int code, const char* needle) {
  cm4j::UNetConfig c;
  cm4j::Status s = cm4j::parse_unet_config(json, &c);
  CHECK(s.code == code, "expected code %d for '%s', got %d: %s", code, needle, s.code,
        s.message.c_str());
  CHECK(s.message.find(needle) != std::string::npos, "message '%s' lacks '%s'",
        s.message.c_str(), needle);
}

}  // namespace

int main() {
  for (const char* model : {"imagenet64", "lsun_mini"}) {
    cm4j::UNetConfig c;
    cm4j::Status s = cm4j::parse_unet_config(read_text(golden_dir() + "/" + model + "/config.json"), &c);
    CHECK(s.ok(), "%s: %s", model, s.message.c_str());
    // The bound per image is 3 x channels x side^2 at each level (concatenations and qkv are
    // at most three blocks wide): 3 x 192 x 64^2 = 2,359,296 for imagenet64, so 910 images.
    if (std::string(model) == "imagenet64")
      CHECK(c.max_batch() == 910, "imagenet64 max_batch %d, expected 910", c.max_batch());
  }
  cm4j::UNetConfig c;
  CHECK(cm4j::parse_unet_config(tiny(), &c).ok(), "tiny config");
  CHECK(c.num_class_embeds == 1000 && c.scale_shift && c.attention_head_dim == 8, "tiny values");

  expect_error(edited("\"AttnDownBlock2D\"", "\"CrossAttnDownBlock2D\""), CM4J_ERR_UNSUPPORTED,
               "down_block_types[1] = \"CrossAttnDownBlock2D\"");
  expect_error(edited("\"AttnUpBlock2D\"", "\"AttnDownBlock2D\""), CM4J_ERR_UNSUPPORTED,
               "up_block_types[0]");
  expect_error(edited("\"positional\"", "\"fourier\""), CM4J_ERR_UNSUPPORTED,
               "time_embedding_type = \"fourier\"");
  expect_error(edited("\"scale_shift\"", "\"spatial\""), CM4J_ERR_UNSUPPORTED,
               "resnet_time_scale_shift = \"spatial\"");
  expect_error(edited("\"class_embed_type\": null", "\"class_embed_type\": \"timestep\""),
               CM4J_ERR_UNSUPPORTED, "class_embed_type = \"timestep\"");
  expect_error(edited("\"act_fn\": \"silu\"", "\"act_fn\": \"gelu\""), CM4J_ERR_UNSUPPORTED,
               "act_fn = \"gelu\"");
  expect_error(edited("\"center_input_sample\": false", "\"center_input_sample\": true"),
               CM4J_ERR_UNSUPPORTED, "center_input_sample");
  expect_error(edited("\"act_fn\"", "\"cross_attention_dim\": 768, \"act_fn\""),
               CM4J_ERR_UNSUPPORTED, "cross_attention_dim = 768");
  expect_error(edited("\"norm_num_groups\": 32", "\"norm_num_groups\": 24"),
               CM4J_ERR_UNSUPPORTED, "norm_num_groups = 24");
  expect_error(edited("\"attention_head_dim\": 8", "\"attention_head_dim\": 7"),
               CM4J_ERR_UNSUPPORTED, "attention_head_dim = 7");
  expect_error(edited("\"layers_per_block\": 2", "\"layers_per_block\": \"two\""),
               CM4J_ERR_INVALID_ARGUMENT, "layers_per_block must be an integer");
  expect_error(edited("32,\n    64\n  ]", "32\n  ]"), CM4J_ERR_INVALID_ARGUMENT,
               "block_out_channels has 1 entries");
  expect_error("{\"sample_size\": 32,", CM4J_ERR_INVALID_ARGUMENT, "invalid JSON");
  expect_error("{\"a\": 1, \"a\": 2}", CM4J_ERR_INVALID_ARGUMENT, "duplicate key");
  expect_error("[1, 2]", CM4J_ERR_INVALID_ARGUMENT, "top level must be an object");

  // Every number is range-checked before it is converted, with the key (and entry) named:
  // a double outside int's range would be undefined behaviour to convert.
  const char* channels = "32,\n    64\n  ]";
  const struct {
    const char* from;
    const char* to;
    int code;
    const char* needle;
  } ranges[] = {
      {channels, "32,\n    1e300\n  ]", CM4J_ERR_INVALID_ARGUMENT,
       "block_out_channels[1] must be an integer in [1, 65536], found 1e+300"},
      {channels, "-32,\n    64\n  ]", CM4J_ERR_INVALID_ARGUMENT,
       "block_out_channels[0] must be an integer in [1, 65536], found -32"},
      {channels, "32,\n    64.5\n  ]", CM4J_ERR_INVALID_ARGUMENT, "block_out_channels[1] must be an integer"},
      {"\"sample_size\": 32", "\"sample_size\": [1e300, 1e300]", CM4J_ERR_INVALID_ARGUMENT,
       "sample_size[0] must be an integer in [1, 16384]"},
      {"\"sample_size\": 32", "\"sample_size\": 4294967328", CM4J_ERR_INVALID_ARGUMENT,
       "sample_size must be an integer in [1, 16384]"},
      {"\"num_class_embeds\": 1000", "\"num_class_embeds\": -3", CM4J_ERR_INVALID_ARGUMENT,
       "num_class_embeds must be an integer in [0, 16777216]"},
      {"\"norm_eps\": 1e-05", "\"norm_eps\": 1e300", CM4J_ERR_INVALID_ARGUMENT,
       "norm_eps must be a finite float32 number, found 1e+300"},
      {"\"norm_eps\": 1e-05", "\"norm_eps\": -1", CM4J_ERR_INVALID_ARGUMENT,
       "norm_eps must be positive, found -1"},
      {"\"norm_eps\": 1e-05", "\"norm_eps\": 1e-50", CM4J_ERR_INVALID_ARGUMENT,
       "norm_eps must be positive, found 1e-50"},
      {"\"dropout\": 0.0", "\"dropout\": \"none\"", CM4J_ERR_INVALID_ARGUMENT,
       "dropout must be a finite float32 number"},
      // in range, but one image's activations would pass the backends' 32-bit element counts
      {"\"sample_size\": 32", "\"sample_size\": 16384", CM4J_ERR_UNSUPPORTED,
       "an activation of one image would hold up to 25769803776 elements"},
  };
  for (const auto& r : ranges) expect_error(edited(r.from, r.to), r.code, r.needle);
  // A value (or key) of 100 kB is quoted cut short, with its size, not repeated whole.
  const std::string huge(100000, 'a');
  expect_error(edited("\"dropout\": 0.0", "\"dropout\": \"" + huge + "\""),
               CM4J_ERR_INVALID_ARGUMENT,
               "found \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa... (100002 bytes)");
  expect_error(edited("\"dropout\": 0.0", "\"" + huge + "\": 1"), CM4J_ERR_UNSUPPORTED,
               "unsupported aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa... (100000 bytes)");

  // Through the C API: the same errors, as status codes plus cm4j_last_error().
  cm4j_unet* u = nullptr;
  CHECK(cm4j_unet_create(edited("\"AttnDownBlock2D\"", "\"Foo\"").c_str(), "cpu", CM4J_F32, &u) ==
            CM4J_ERR_UNSUPPORTED && u == nullptr, "create with unknown block: %s", cm4j_last_error());
  CHECK(cm4j_unet_create(tiny().c_str(), "gpu", CM4J_F32, &u) == CM4J_ERR_INVALID_ARGUMENT,
        "bad device: %s", cm4j_last_error());
  CHECK(std::string(cm4j_last_error()).find("found gpu") != std::string::npos, "%s", cm4j_last_error());
  for (const char* bad : {"cpu:0", "cpu:", "cpu:x", "cpu:99999", "tpu:1", "cuda:"}) {
    CHECK(cm4j_unet_create(tiny().c_str(), bad, CM4J_F32, &u) == CM4J_ERR_INVALID_ARGUMENT,
          "device %s accepted", bad);
    CHECK(std::string(cm4j_last_error()).find(std::string("found ") + bad) != std::string::npos,
          "%s", cm4j_last_error());
  }
  // cpu:N sets the thread count; the engine works the same on one thread.
  CHECK(cm4j_unet_create(tiny().c_str(), "cpu:1", CM4J_F32, &u) == CM4J_OK, "cpu:1: %s",
        cm4j_last_error());
  cm4j_unet_destroy(u);
  u = nullptr;
  CHECK(cm4j_unet_create(tiny().c_str(), "cpu", CM4J_F16, &u) == CM4J_ERR_UNSUPPORTED,
        "fp16 on cpu: %s", cm4j_last_error());

  // CM4J_CPU_ISA is an explicit choice: an unknown value or a path this CPU lacks is an error
  // naming the valid and the available values, never silently another path.
  setenv("CM4J_CPU_ISA", "avx1024", 1);
  CHECK(cm4j_unet_create(tiny().c_str(), "cpu", CM4J_F32, &u) == CM4J_ERR_INVALID_ARGUMENT &&
            u == nullptr, "unknown CM4J_CPU_ISA accepted");
  std::string m = cm4j_last_error();
  CHECK(m.find("CM4J_CPU_ISA=avx1024: unknown value; valid: amx, avx512bf16, avx512, avx2, "
               "generic; available on this CPU: ") != std::string::npos, "%s", m.c_str());
  CHECK(m.find("generic", m.find("available")) != std::string::npos, "%s", m.c_str());
  for (const char* path : {"amx", "avx512bf16", "avx512", "avx2"}) {
    setenv("CM4J_CPU_ISA", path, 1);
    int rc = cm4j_unet_create(tiny().c_str(), "cpu", CM4J_BF16, &u);
    m = cm4j_last_error();
    const bool lacked = m.find(std::string("CM4J_CPU_ISA=") + path + ": this CPU lacks it") == 0;
    CHECK(rc == CM4J_OK || (rc == CM4J_ERR_INVALID_ARGUMENT && lacked), "%s: %d %s", path, rc,
          m.c_str());
    std::printf("CM4J_CPU_ISA=%s: %s\n", path, rc == CM4J_OK ? "available" : m.c_str());
    cm4j_unet_destroy(u);
    u = nullptr;
  }
  unsetenv("CM4J_CPU_ISA");

  // CM4J_CPU_CONV likewise: an unknown value stops the engine, naming the valid ones.
  setenv("CM4J_CPU_CONV", "fft", 1);
  CHECK(cm4j_unet_create(tiny().c_str(), "cpu", CM4J_F32, &u) == CM4J_ERR_INVALID_ARGUMENT &&
            u == nullptr, "unknown CM4J_CPU_CONV accepted");
  m = cm4j_last_error();
  CHECK(m.find("CM4J_CPU_CONV=fft: unknown value; valid: direct, winograd, winograd2x2") !=
            std::string::npos, "%s", m.c_str());
  for (const char* conv : {"direct", "winograd", "winograd2x2"}) {
    setenv("CM4J_CPU_CONV", conv, 1);
    CHECK(cm4j_unet_create(tiny().c_str(), "cpu", CM4J_F32, &u) == CM4J_OK, "CM4J_CPU_CONV=%s: %s",
          conv, cm4j_last_error());
    cm4j_unet_destroy(u);
    u = nullptr;
  }
  unsetenv("CM4J_CPU_CONV");
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}

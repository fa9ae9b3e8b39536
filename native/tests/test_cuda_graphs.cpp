// CUDA graphs (CM4J_CUDA_GRAPHS=on) against the same engine without them, on device "cuda"
// (a GPU, or the CPU emulator of kernels/dev/emu): the tiny model's forward passes with new
// inputs each (the second pass captures, later ones replay) and two-step sampling loops
// (the second call captures each step, the third replays) give bit for bit the outputs of
// the engine without graphs; a bad CM4J_CUDA_GRAPHS value is refused by name.
// Skips (77) without a CUDA device. Options: --dtype=fp32|fp16|bf16 (default fp32).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cm4j.h"
#include "plan_graphs.h"
#include "test_util.h"

using namespace cm4j_test;

namespace {

cm4j_unet* open_tiny(const std::string& config, int dtype, const char* graphs) {
  setenv("CM4J_CUDA_GRAPHS", graphs, 1);
  cm4j_unet* u = nullptr;
  const bool ok = cm4j_unet_create(config.c_str(), "cuda", dtype, &u) == CM4J_OK &&
                  cm4j_unet_bind_synth(u, 5) == CM4J_OK && cm4j_unet_finalize(u) == CM4J_OK;
  unsetenv("CM4J_CUDA_GRAPHS");
  CHECK(ok, "engine with CM4J_CUDA_GRAPHS=%s: %s", graphs, cm4j_last_error());
  if (!ok) cm4j_unet_destroy(u);
  return ok ? u : nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  int dtype = CM4J_F32;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--dtype=fp16") == 0) dtype = CM4J_F16;
    else if (std::strcmp(argv[i], "--dtype=bf16") == 0) dtype = CM4J_BF16;
    else if (std::strcmp(argv[i], "--dtype=fp32") != 0) {
      std::fprintf(stderr, "usage: %s [--dtype=fp32|fp16|bf16]\n", argv[0]);
      return 2;
    }
  }
  if (cm4j_cuda_device_count() == 0) {
    std::printf("test_cuda_graphs: skipped: %s\n", cm4j_last_error());
    return 77;
  }
  const std::string config = read_text(golden_dir() + "/tiny/pipeline/unet/config.json");
  CHECK(!config.empty(), "no tiny config under %s", golden_dir().c_str());
  if (config.empty()) return 1;

  setenv("CM4J_CUDA_GRAPHS", "sometimes", 1);
  cm4j_unet* bad = nullptr;
  const int rc = cm4j_unet_create(config.c_str(), "cuda", dtype, &bad);
  unsetenv("CM4J_CUDA_GRAPHS");
  CHECK(rc != CM4J_OK && std::strstr(cm4j_last_error(), "CM4J_CUDA_GRAPHS=sometimes"),
        "a bad CM4J_CUDA_GRAPHS: rc %d, %s", rc, cm4j_last_error());
  cm4j_unet_destroy(bad);

  cm4j_unet* with = open_tiny(config, dtype, "on");
  cm4j_unet* without = open_tiny(config, dtype, "off");
  if (!with || !without) return 1;
  const int batch = 2, s = cm4j_unet_sample_size(with), c = cm4j_unet_in_channels(with);
  const size_t n = static_cast<size_t>(batch) * c * s * s;
  std::vector<float> sample(n), a(n), b(n);
  for (int pass = 0; pass < 4; ++pass) {
    for (size_t i = 0; i < n; ++i) sample[i] = static_cast<float>((i * (pass + 5)) % 19) / 9.0f - 1.0f;
    const float t[2] = {4.0f + 90 * pass, 700.0f - 60 * pass};
    const int64_t labels[2] = {pass, 990 - pass};
    CHECK(cm4j_unet_forward(with, batch, sample.data(), t, labels, a.data()) == CM4J_OK,
          "forward %d with graphs: %s", pass, cm4j_last_error());
    CHECK(cm4j_unet_forward(without, batch, sample.data(), t, labels, b.data()) == CM4J_OK,
          "forward %d without: %s", pass, cm4j_last_error());
    const int64_t d = first_difference(a.data(), b.data(), n);
    CHECK(d == -1, "forward %d: graphs on and off differ at %lld (%g vs %g)", pass,
          static_cast<long long>(d), d < 0 ? 0.0 : a[d], d < 0 ? 0.0 : b[d]);
  }
  size_t captures = 0, replays = 0;
  cm4j::engine_graph_counts(with, &captures, &replays);
  CHECK(captures == 1 && replays == 2, "forward: %zu captures, %zu replays; expected 1 and 2",
        captures, replays);
  std::printf("forward: 4 passes identical with graphs on and off (1 capture, 2 replays)\n");

  SampleTables tables = sample_tables({80.0f, 0.661f}, batch);
  std::vector<float> noise(2 * n);
  const int64_t labels[2] = {17, 400};
  for (int call = 0; call < 3; ++call) {
    for (size_t i = 0; i < n; ++i) sample[i] = static_cast<float>((i * (call + 2)) % 23) / 11.0f - 1.0f;
    for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<float>((i * 3 + call) % 7) / 3.0f - 1.0f;
    for (cm4j_unet* u : {with, without}) {
      CHECK(cm4j_unet_sample(u, batch, 2, sample.data(), tables.timesteps.data(),
                             tables.input_scale.data(), tables.c_skip.data(), tables.c_out.data(),
                             tables.noise_scale.data(), 1.0f, noise.data(), labels, 1,
                             u == with ? a.data() : b.data()) == CM4J_OK,
            "sampling loop %d: %s", call, cm4j_last_error());
    }
    const int64_t d = first_difference(a.data(), b.data(), n);
    CHECK(d == -1, "sampling loop %d: graphs on and off differ at %lld", call, static_cast<long long>(d));
  }
  size_t loop_captures = 0, loop_replays = 0;
  cm4j::engine_graph_counts(with, &loop_captures, &loop_replays);
  loop_captures -= captures;
  loop_replays -= replays;
  CHECK(loop_captures == 2 && loop_replays == 2,
        "sampling loops: %zu captures, %zu replays; expected 2 and 2", loop_captures, loop_replays);
  std::printf("sampling loops: 3 two-step calls identical (%zu captures, %zu replays)\n",
              loop_captures, loop_replays);
  cm4j_unet_destroy(with);
  cm4j_unet_destroy(without);
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}

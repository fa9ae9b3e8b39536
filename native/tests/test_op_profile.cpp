// The op profile (cm4j_unet_set_profile_ops): a profiled pass gives the same output bit for
// bit as a plain one, one named, non-negative time per op of the plan, summing to no more
// than the pass's wall time; a sampling loop's profile is that of its last step; disabling
// clears it. CPU backend, tiny model, synth-v1 weights.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cm4j.h"
#include "test_util.h"

using namespace cm4j_test;

namespace {

double wall_ms(const std::chrono::steady_clock::time_point& start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main() {
  const std::string config = read_text(golden_dir() + "/tiny/pipeline/unet/config.json");
  if (config.empty()) {
    std::printf("test_op_profile: no tiny config under %s\n", golden_dir().c_str());
    return 1;
  }
  cm4j_unet* u = nullptr;
  CHECK(cm4j_unet_create(config.c_str(), "cpu:1", CM4J_F32, &u) == CM4J_OK &&
            cm4j_unet_bind_synth(u, 3) == CM4J_OK && cm4j_unet_finalize(u) == CM4J_OK,
        "engine: %s", cm4j_last_error());
  if (failures) return 1;
  const int batch = 2, s = cm4j_unet_sample_size(u), c = cm4j_unet_in_channels(u);
  const size_t n = static_cast<size_t>(batch) * c * s * s;
  std::vector<float> sample(n), plain(n), profiled(n), t = {10.0f, 600.0f};
  for (size_t i = 0; i < n; ++i) sample[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
  std::vector<int64_t> labels = {1, 2};
  const int64_t* lab = cm4j_unet_num_class_embeds(u) > 0 ? labels.data() : nullptr;

  CHECK(cm4j_unet_forward(u, batch, sample.data(), t.data(), lab, plain.data()) == CM4J_OK,
        "plain forward: %s", cm4j_last_error());
  CHECK(cm4j_unet_op_count(u) == 0, "a profile without profiling: %d ops", cm4j_unet_op_count(u));

  CHECK(cm4j_unet_set_profile_ops(u, 1) == CM4J_OK, "enable: %s", cm4j_last_error());
  const auto start = std::chrono::steady_clock::now();
  CHECK(cm4j_unet_forward(u, batch, sample.data(), t.data(), lab, profiled.data()) == CM4J_OK,
        "profiled forward: %s", cm4j_last_error());
  const double pass_ms = wall_ms(start);
  CHECK(first_difference(plain.data(), profiled.data(), n) == -1,
        "profiled output differs from the plain one at %lld",
        static_cast<long long>(first_difference(plain.data(), profiled.data(), n)));
  const int ops = cm4j_unet_op_count(u);
  CHECK(ops >= 20, "only %d ops profiled", ops);
  double sum_ms = 0;
  int convs = 0;
  for (int i = 0; i < ops; ++i) {
    const char* name = cm4j_unet_op_name(u, i);
    const double ms = cm4j_unet_op_ms(u, i);
    CHECK(name && *name, "op %d has no name", i);
    CHECK(ms >= 0, "op %d (%s): %g ms", i, name ? name : "?", ms);
    sum_ms += ms;
    convs += name && std::string(name).find("conv") != std::string::npos;
  }
  CHECK(convs > 0, "no conv among the %d op names", ops);
  CHECK(sum_ms <= pass_ms, "ops sum to %.3f ms, more than the pass's %.3f ms", sum_ms, pass_ms);
  CHECK(cm4j_unet_op_name(u, ops) == nullptr && cm4j_unet_op_ms(u, -1) == -1.0, "out of range");

  // A two-step sampling loop: the profile of its last step, the same plan's ops.
  SampleTables tables = sample_tables({80.0f, 0.7f}, batch);
  std::vector<float> looped(n);
  CHECK(cm4j_unet_sample(u, batch, 2, sample.data(), tables.timesteps.data(),
                         tables.input_scale.data(), tables.c_skip.data(), tables.c_out.data(),
                         tables.noise_scale.data(), 1.0f, nullptr, lab, 1, looped.data()) == CM4J_OK,
        "sampling loop: %s", cm4j_last_error());
  CHECK(cm4j_unet_op_count(u) == ops, "sampling loop profiled %d ops, forward %d",
        cm4j_unet_op_count(u), ops);

  CHECK(cm4j_unet_set_profile_ops(u, 0) == CM4J_OK, "disable: %s", cm4j_last_error());
  CHECK(cm4j_unet_op_count(u) == 0, "disabling kept %d ops", cm4j_unet_op_count(u));
  cm4j_unet_destroy(u);
  std::printf("%d ops, %.3f ms of %.3f ms\n", ops, sum_ms, pass_ms);
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}

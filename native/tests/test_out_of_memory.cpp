// An engine whose arena cannot grow: the call that needs more reports CM4J_ERR_OUT_OF_MEMORY,
// and the engine stays usable. A batch size that ran before runs again, with the same bits,
// through forward and through the sampling loop (the failed call must not leave the cached
// plan behind without its arena). The address space is capped with RLIMIT_AS in a child
// process, so the allocation fails on any machine, whatever its memory. And an arena larger
// than the host has left is refused before it is allocated, with what is available in the
// message: Linux would grant it and kill the process when its pages were touched.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "cm4j.h"
#include "test_util.h"

using namespace cm4j_test;

namespace {

// 8x8 samples, two levels of 8 and 16 channels with attention; unconditional, so a failing
// call reads no per-image labels.
const char* kConfig = R"({"_class_name": "UNet2DModel", "sample_size": 8, "in_channels": 3,
 "out_channels": 3, "layers_per_block": 1, "block_out_channels": [8, 16],
 "down_block_types": ["ResnetDownsampleBlock2D", "AttnDownBlock2D"],
 "up_block_types": ["AttnUpBlock2D", "ResnetUpsampleBlock2D"], "attention_head_dim": 4,
 "norm_num_groups": 4, "attn_norm_num_groups": 4, "resnet_time_scale_shift": "scale_shift",
 "upsample_type": "resnet", "downsample_type": "resnet", "norm_eps": 1e-05, "freq_shift": 0,
 "mid_block_scale_factor": 1, "dropout": 0.0})";

constexpr int kImage = 3 * 8 * 8;

// This process's virtual memory size in bytes (VmSize), 0 if unknown.
size_t vm_size() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmSize:", 0) == 0) return std::stoull(line.substr(7)) * 1024;
  return 0;
}

// One forward pass and one 2-step sampling loop of image batch b (inputs from `seed`).
struct Outputs {
  std::vector<float> forward, sample;
};
int run(cm4j_unet* u, int b, Outputs* out) {
  std::vector<float> x(static_cast<size_t>(b) * kImage), t(b, 3.0f), ts(2 * b), ones(2 * b, 1.0f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 17) / 8.0f - 1.0f;
  for (int i = 0; i < b; ++i) {
    ts[i] = 40.0f;
    ts[b + i] = 10.0f;
  }
  std::vector<float> noise(2 * x.size(), 0.5f), c_skip(2 * b, 0.25f), zeros(2 * b, 0.0f);
  out->forward.assign(x.size(), 0.0f);
  out->sample.assign(x.size(), 0.0f);
  int rc = cm4j_unet_forward(u, b, x.data(), t.data(), nullptr, out->forward.data());
  if (rc != CM4J_OK) return rc;
  return cm4j_unet_sample(u, b, 2, x.data(), ts.data(), ones.data(), c_skip.data(), ones.data(),
                          zeros.data(), 1.0f, noise.data(), nullptr, 1, out->sample.data());
}

// The child: 0 when every check holds, else the number of the first that failed.
int child() {
  cm4j_unet* u = nullptr;
  if (cm4j_unet_create(kConfig, "cpu:1", CM4J_F32, &u) != CM4J_OK) return 10;
  if (cm4j_unet_bind_synth(u, 3) != CM4J_OK || cm4j_unet_finalize(u) != CM4J_OK) return 11;
  Outputs before;
  if (run(u, 2, &before) != CM4J_OK) return 12;
  const int64_t per_image = cm4j_unet_arena_bytes(u) / 2;
  if (per_image <= 0) return 13;
  // A 2 GiB arena on a host said to have 1 GiB left (CM4J_CPU_MEMORY_AVAILABLE): refused
  // before it is allocated, where Linux would have granted it.
  const int two_gib = static_cast<int>((int64_t{2} << 30) / per_image);
  if (two_gib > cm4j_unet_max_batch(u)) return 14;
  {
    setenv("CM4J_CPU_MEMORY_AVAILABLE", "1073741824", 1);
    std::vector<float> x(static_cast<size_t>(two_gib) * kImage, 0.0f), t(two_gib, 3.0f),
        y(x.size());
    const int rc = cm4j_unet_forward(u, two_gib, x.data(), t.data(), nullptr, y.data());
    unsetenv("CM4J_CPU_MEMORY_AVAILABLE");
    if (rc != CM4J_ERR_OUT_OF_MEMORY) return 20;
    if (std::strstr(cm4j_last_error(), "(1073741824 bytes available)") == nullptr) return 21;
  }
  // A batch whose arena alone is 4 GiB, under an address space capped 1 GiB above today's.
  const int big = static_cast<int>((int64_t{4} << 30) / per_image);
  if (big > cm4j_unet_max_batch(u)) return 14;
  std::vector<float> x(static_cast<size_t>(big) * kImage, 0.0f), t(big, 3.0f), y(x.size());
  const size_t cap = vm_size() + (size_t{1} << 30);
  const rlimit limit{cap, cap};
  if (vm_size() == 0 || setrlimit(RLIMIT_AS, &limit) != 0) return 15;
  const int rc = cm4j_unet_forward(u, big, x.data(), t.data(), nullptr, y.data());
  if (rc != CM4J_ERR_OUT_OF_MEMORY) return 16;
  if (std::strstr(cm4j_last_error(), "out of memory") == nullptr) return 17;
  Outputs after;
  if (run(u, 2, &after) != CM4J_OK) return 18;
  if (after.forward != before.forward || after.sample != before.sample) return 19;
  cm4j_unet_destroy(u);
  return 0;
}

}  // namespace

int main() {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) {
    std::printf("FAILED: fork\n");
    return 1;
  }
  if (pid == 0) _exit(child());
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status), "the child died of signal %d (a pass after the failed one crashed?)",
        WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  if (WIFEXITED(status))
    CHECK(WEXITSTATUS(status) == 0,
          "check %d failed (16: no OUT_OF_MEMORY for the 4 GiB arena; 18-19: batch 2 did not "
          "run again, or gave other bits; 20-21: an arena past the host's memory was not "
          "refused, or its message does not say what is available)",
          WEXITSTATUS(status));
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}

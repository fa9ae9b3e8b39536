// Whole-UNet latency with synth-v1 weights (or a safetensors file's): seconds per image at
// each batch size, the engine's weight and arena bytes, the process's peak RSS, and the
// process's CPU seconds per image (best pass; on a shared machine it varies less than wall
// time, since time the cores spend on other work does not count).
//   bench_unet [--config FILE] [--weights FILE.safetensors] [--device cpu|cuda]
//              [--batch 1,4] [--iters N] [--dtype fp32|bf16|fp16|fp32,bf16] [--threads 1,2]
//              [--open-only 1] [--profile 1]
// Comma lists run each combination in turn, side by side in one table (the engine of one
// dtype/thread count is destroyed before the next is built; peak RSS is the process's, so
// cumulative). --threads sets the CPU engine's thread count (device "cpu:N"; 0: one per
// core, the default). --weights binds each tensor from the memory-mapped file, as the Java
// API does, and every engine's open is printed: wall and CPU (user, system) seconds of
// cm4j_unet_create, of the binds (conversion, packing, Winograd transforms) and of
// cm4j_unet_finalize; --open-only 1 stops there. --profile 1 adds, per batch, one profiled
// pass (cm4j_unet_set_profile_ops) split into convolutions, group norms, attention and the
// rest, as shares of the pass.
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "cm4j.h"
#include "test_util.h"

namespace {

// Wall, user and system seconds since construction.
struct Stopwatch {
  std::chrono::steady_clock::time_point wall = std::chrono::steady_clock::now();
  rusage start = usage();
  static rusage usage() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru;
  }
  static double seconds(const timeval& a, const timeval& b) {
    return (b.tv_sec - a.tv_sec) + (b.tv_usec - a.tv_usec) / 1e6;
  }
  std::string lap(const char* what) const {
    const rusage now = usage();
    char line[160];
    std::snprintf(line, sizeof line, "%s %.3f s (user %.3f, sys %.3f)", what,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count(),
                  seconds(start.ru_utime, now.ru_utime), seconds(start.ru_stime, now.ru_stime));
    return line;
  }
};

double peak_rss_mb() { return Stopwatch::usage().ru_maxrss / 1024.0; }  // KiB on Linux

// The op profile's kind of an op, from its plan name: "conv" (conv*, to_qkv, to_out.0,
// resamplers' convs), "group_norm" (norm1/2, group_norm, conv_norm_out) or "attention"
// (the softmax attention op itself, "...attentions.N"); else "other".
const char* op_kind(const std::string& name) {
  const size_t dot = name.rfind('.');
  const std::string last = dot == std::string::npos ? name : name.substr(dot + 1);
  if (last.find("norm") != std::string::npos) return "group_norm";
  if (last.find("conv") != std::string::npos || last == "to_qkv" ||
      name.size() > 9 && name.compare(name.size() - 9, 9, ".to_out.0") == 0)
    return "conv";
  const size_t at = name.rfind("attentions.");
  if (at != std::string::npos && name.find('.', at + 11) == std::string::npos) return "attention";
  return "other";
}

// One profiled pass, printed as each kind's milliseconds and share of the pass.
bool print_profile(cm4j_unet* u, int batch, const float* sample, const float* t,
                   const int64_t* labels, float* out) {
  if (cm4j_unet_set_profile_ops(u, 1) != CM4J_OK ||
      cm4j_unet_forward(u, batch, sample, t, labels, out) != CM4J_OK)
    return false;
  const char* kinds[] = {"conv", "group_norm", "attention", "other"};
  double ms[4] = {0, 0, 0, 0}, total = 0;
  for (int i = 0; i < cm4j_unet_op_count(u); ++i) {
    const std::string kind = op_kind(cm4j_unet_op_name(u, i));
    const double op_ms = cm4j_unet_op_ms(u, i);
    for (int k = 0; k < 4; ++k)
      if (kind == kinds[k]) ms[k] += op_ms;
    total += op_ms;
  }
  std::printf("  profile, batch %d: %.1f ms", batch, total);
  for (int k = 0; k < 4; ++k) std::printf(", %s %.1f ms (%.1f%%)", kinds[k], ms[k], 100 * ms[k] / total);
  std::printf("\n");
  return cm4j_unet_set_profile_ops(u, 0) == CM4J_OK;
}

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = cm4j_test::golden_dir() + "/imagenet64/config.json";
  std::string device = "cpu";
  std::vector<int> batches = {1, 4};
  int iters = 2;
  std::vector<std::string> dtypes = {"fp32"};
  std::vector<int> threads = {0};
  std::string weights;
  bool open_only = false;
  bool profile = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--config") config_path = argv[i + 1];
    else if (a == "--device") device = argv[i + 1];
    else if (a == "--batch") batches = cm4j_test::parse_int_list(argv[i + 1], 1, 1 << 20);
    else if (a == "--threads") threads = cm4j_test::parse_int_list(argv[i + 1], 0, 1024);
    else if (a == "--iters") iters = std::atoi(argv[i + 1]);
    else if (a == "--weights") weights = argv[i + 1];
    else if (a == "--open-only") open_only = std::atoi(argv[i + 1]) != 0;
    else if (a == "--profile") profile = std::atoi(argv[i + 1]) != 0;
    else if (a == "--dtype") {
      dtypes.clear();
      std::stringstream ss(argv[i + 1]);
      std::string item;
      while (std::getline(ss, item, ',')) dtypes.push_back(item);
    }
  }
  if (batches.empty() || threads.empty()) {
    std::fprintf(stderr, "bench_unet: --batch takes sizes >= 1 and --threads counts >= 0, as 1,4\n");
    return 2;
  }
  std::string config = cm4j_test::read_text(config_path);
  std::printf("config %s, device %s, %d iteration(s) after one warm-up\n", config_path.c_str(),
              device.c_str(), iters);
  if (!open_only)
    std::printf("%6s %7s %6s %10s %10s %10s %12s %10s %12s %12s\n", "dtype", "threads", "batch",
                "s/pass", "s/image", "images/s", "weights MB", "arena MB", "peak RSS MB",
                "cpu s/image");
  if (device != "cpu") threads = {0};
  for (const std::string& dtype_name : dtypes) for (int nthreads : threads) {
    int dtype = dtype_name == "bf16" ? CM4J_BF16 : dtype_name == "fp16" ? CM4J_F16 : CM4J_F32;
    if (dtype == CM4J_F32 && dtype_name != "fp32") {
      std::fprintf(stderr, "bench_unet: unknown dtype %s\n", dtype_name.c_str());
      return 1;
    }
    std::string dev = nthreads > 0 ? device + ":" + std::to_string(nthreads) : device;
    cm4j_unet* u = nullptr;
    const Stopwatch open;
    std::string phases;
    bool ok = cm4j_unet_create(config.c_str(), dev.c_str(), dtype, &u) == CM4J_OK;
    phases += open.lap("create");
    const Stopwatch bind;
    ok = ok && (weights.empty() ? cm4j_unet_bind_synth(u, 1)
                                : cm4j_test::bind_safetensors(u, weights)) == CM4J_OK;
    phases += bind.lap(", bind");
    const Stopwatch finalize;
    ok = ok && cm4j_unet_finalize(u) == CM4J_OK;
    phases += finalize.lap(", finalize");
    if (!ok) {
      std::fprintf(stderr, "bench_unet: %s\n", cm4j_last_error());
      return cm4j_test::failures = 1;
    }
    if (!weights.empty())
      std::printf("%s %s: %s: %s\n", dtype_name.c_str(), dev.c_str(), open.lap("open").c_str(),
                  phases.c_str());
    if (open_only) {
      cm4j_unet_destroy(u);
      continue;
    }
    int c = cm4j_unet_in_channels(u), s = cm4j_unet_sample_size(u);
    bool conditional = cm4j_unet_num_class_embeds(u) > 0;
    for (int batch : batches) {
      std::vector<float> sample(static_cast<size_t>(batch) * c * s * s, 0.1f), out(sample.size());
      std::vector<float> t(batch, 250.0f);
      std::vector<int64_t> labels(batch, 7);
      double best = 1e30, best_cpu = 1e30;
      for (int it = 0; it <= iters; ++it) {
        auto t0 = std::chrono::steady_clock::now();
        const double cpu0 = cpu_seconds();
        if (cm4j_unet_forward(u, batch, sample.data(), t.data(), conditional ? labels.data() : nullptr,
                              out.data()) != CM4J_OK) {
          std::fprintf(stderr, "bench_unet: %s\n", cm4j_last_error());
          return 1;
        }
        double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double cpu = cpu_seconds() - cpu0;
        if (it > 0) {  // the first pass builds the plan and arena
          best = std::min(best, sec);
          best_cpu = std::min(best_cpu, cpu);
        }
      }
      std::string nt = nthreads > 0 ? std::to_string(nthreads) : "all";
      std::printf("%6s %7s %6d %10.3f %10.3f %10.3f %12.1f %10.1f %12.1f %12.3f\n",
                  dtype_name.c_str(), nt.c_str(), batch, best, best / batch, batch / best,
                  cm4j_unet_weight_bytes(u) / 1e6, cm4j_unet_arena_bytes(u) / 1e6, peak_rss_mb(),
                  best_cpu / batch);
      if (profile && !print_profile(u, batch, sample.data(), t.data(),
                                    conditional ? labels.data() : nullptr, out.data())) {
        std::fprintf(stderr, "bench_unet: %s\n", cm4j_last_error());
        return 1;
      }
      std::fflush(stdout);
    }
    cm4j_unet_destroy(u);
  }
  return 0;
}

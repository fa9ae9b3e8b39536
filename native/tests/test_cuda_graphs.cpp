// CUDA graphs (CM4J_CUDA_GRAPHS=on) against the same engine without them, on device "cuda"
// (a GPU, or the CPU emulator of kernels/dev/emu): the tiny model's forward passes with new
// inputs each (captured once, the last pass replayed) and two-step sampling loops
// (the second call captures each step, the third replays) give bit for bit the outputs of
// the engine without graphs, with the graphs' kernels launched programmatically
// (CM4J_CUDA_PDL=on: on a 9.0+ card its graphs have programmatic edges, the others' none;
// the emulator also counts the launches and fails one whose thread reaches a barrier before
// waiting for the kernel before) and without; a bad CM4J_CUDA_GRAPHS or CM4J_CUDA_PDL value
// is refused by name. Skips (77) without a CUDA device. Options: --dtype=fp32|fp16|bf16 (default fp32).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if defined(CM4J_HAVE_CUDA)
#include "cuda/cuda_backend.h"
#endif
#include "cm4j.h"
#include "plan_graphs.h"
#include "test_util.h"

using namespace cm4j_test;

namespace {

cm4j_unet* open_tiny(const std::string& config, int dtype, const char* graphs, const char* pdl) {
  setenv("CM4J_CUDA_GRAPHS", graphs, 1);
  setenv("CM4J_CUDA_PDL", pdl, 1);
  cm4j_unet* u = nullptr;
  const bool ok = cm4j_unet_create(config.c_str(), "cuda", dtype, &u) == CM4J_OK &&
                  cm4j_unet_bind_synth(u, 5) == CM4J_OK && cm4j_unet_finalize(u) == CM4J_OK;
  unsetenv("CM4J_CUDA_GRAPHS");
  unsetenv("CM4J_CUDA_PDL");
  CHECK(ok, "engine with CM4J_CUDA_GRAPHS=%s CM4J_CUDA_PDL=%s: %s", graphs, pdl,
        cm4j_last_error());
  if (!ok) cm4j_unet_destroy(u);
  return ok ? u : nullptr;
}

// Kernels run with programmatic dependent launch so far: counted by the emulator; -1 on a
// device, where nothing counts them.
long programmatic_launches() {
#if defined(CM4J_CUDA_EMULATION)
  return cm4j_emu::state().programmatic_launches;
#else
  return -1;
#endif
}

// Whether the backend takes CM4J_CUDA_PDL here: kernels compiled from sm_90+ PTX (so a 9.0+
// card).
bool pdl_taken() {
#if defined(CM4J_HAVE_CUDA)
  return cm4j::cuda_kernels_ptx_version() >= 90;
#else
  return false;
#endif
}

void refuse(const std::string& config, int dtype, const char* name) {
  setenv(name, "sometimes", 1);
  cm4j_unet* bad = nullptr;
  const int rc = cm4j_unet_create(config.c_str(), "cuda", dtype, &bad);
  unsetenv(name);
  CHECK(rc != CM4J_OK && std::strstr(cm4j_last_error(), (std::string(name) + "=sometimes").c_str()),
        "a bad %s: rc %d, %s", name, rc, cm4j_last_error());
  cm4j_unet_destroy(bad);
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

  refuse(config, dtype, "CM4J_CUDA_GRAPHS");
  refuse(config, dtype, "CM4J_CUDA_PDL");

  cm4j_unet* with = open_tiny(config, dtype, "on", "off");
  cm4j_unet* programmatic = open_tiny(config, dtype, "on", "on");
  cm4j_unet* without = open_tiny(config, dtype, "off", "on");  // no graph: PDL unused
  if (!with || !programmatic || !without) return 1;
  // The programmatic engine's own launches, and everyone else's (which must be none).
  long pdl_launches = 0, other_launches = 0;
  // Runs call(), u's work, and counts the kernels it launched programmatically.
  auto run = [&](cm4j_unet* u, auto&& call) {
    const long before = programmatic_launches();
    call();
    (u == programmatic ? pdl_launches : other_launches) += programmatic_launches() - before;
  };
  const int batch = 2, s = cm4j_unet_sample_size(with), c = cm4j_unet_in_channels(with);
  const size_t n = static_cast<size_t>(batch) * c * s * s;
  std::vector<float> sample(n), a(n), b(n);
  // A pass runs plainly the first time its key (plan, buffers, scratch epoch) is seen, is
  // captured the second, replayed after: the NHWC mode's first pass grows the scratch buffer
  // (its fp32 output's conversion), so there the capture comes a pass later. The last of
  // the four passes replays in either mode.
  size_t captures = 0, replays = 0;
  for (int pass = 0; pass < 4; ++pass) {
    for (size_t i = 0; i < n; ++i) sample[i] = static_cast<float>((i * (pass + 5)) % 19) / 9.0f - 1.0f;
    const float t[2] = {4.0f + 90 * pass, 700.0f - 60 * pass};
    const int64_t labels[2] = {pass, 990 - pass};
    CHECK(cm4j_unet_forward(without, batch, sample.data(), t, labels, b.data()) == CM4J_OK,
          "forward %d without: %s", pass, cm4j_last_error());
    for (cm4j_unet* u : {with, programmatic}) {
      const char* which = u == with ? "with graphs" : "with graphs and PDL";
      size_t replays_before = 0;
      cm4j::engine_graph_counts(u, &captures, &replays_before);
      run(u, [&] {
        CHECK(cm4j_unet_forward(u, batch, sample.data(), t, labels, a.data()) == CM4J_OK,
              "forward %d %s: %s", pass, which, cm4j_last_error());
      });
      const int64_t d = first_difference(a.data(), b.data(), n);
      CHECK(d == -1, "forward %d: %s and without differ at %lld (%g vs %g)", pass, which,
            static_cast<long long>(d), d < 0 ? 0.0 : a[d], d < 0 ? 0.0 : b[d]);
      cm4j::engine_graph_counts(u, &captures, &replays);
      CHECK(pass < 3 || (captures == 1 && replays == replays_before + 1),
            "forward %s: %zu captures, the last pass %s; expected 1 capture and a replay",
            which, captures, replays > replays_before ? "replayed" : "did not replay");
    }
  }
  std::printf("forward: 4 passes identical with graphs on (with PDL and without) and off "
              "(%zu capture, %zu replays)\n", captures, replays);

  // Each graph engine's counts so far, {with, programmatic}: the loops' come on top.
  size_t forward_captures[2] = {}, forward_replays[2] = {};
  cm4j::engine_graph_counts(with, &forward_captures[0], &forward_replays[0]);
  cm4j::engine_graph_counts(programmatic, &forward_captures[1], &forward_replays[1]);

  SampleTables tables = sample_tables({80.0f, 0.661f}, batch);
  std::vector<float> noise(2 * n);
  const int64_t labels[2] = {17, 400};
  for (int call = 0; call < 3; ++call) {
    for (size_t i = 0; i < n; ++i) sample[i] = static_cast<float>((i * (call + 2)) % 23) / 11.0f - 1.0f;
    for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<float>((i * 3 + call) % 7) / 3.0f - 1.0f;
    for (cm4j_unet* u : {without, with, programmatic}) {
      run(u, [&] {
        CHECK(cm4j_unet_sample(u, batch, 2, sample.data(), tables.timesteps.data(),
                               tables.input_scale.data(), tables.c_skip.data(),
                               tables.c_out.data(), tables.noise_scale.data(), 1.0f,
                               noise.data(), labels, 1, u == without ? b.data() : a.data()) == CM4J_OK,
              "sampling loop %d: %s", call, cm4j_last_error());
      });
      const int64_t d = u == without ? -1 : first_difference(a.data(), b.data(), n);
      CHECK(d == -1, "sampling loop %d: graphs on%s and off differ at %lld", call,
            u == programmatic ? " with PDL" : "", static_cast<long long>(d));
    }
  }
  for (int e = 0; e < 2; ++e) {
    size_t loop_captures = 0, loop_replays = 0;
    cm4j::engine_graph_counts(e == 0 ? with : programmatic, &loop_captures, &loop_replays);
    loop_captures -= forward_captures[e];
    loop_replays -= forward_replays[e];
    CHECK(loop_captures == 2 && loop_replays == 2,
          "sampling loops: %zu captures, %zu replays; expected 2 and 2", loop_captures,
          loop_replays);
  }
  std::printf("sampling loops: 3 two-step calls identical (2 captures, 2 replays)\n");
  // Where the backend takes CM4J_CUDA_PDL, its captures hold programmatic edges; the
  // others' none.
  const bool pdl = pdl_taken();
  const size_t edges = cm4j::engine_programmatic_edges(programmatic);
  CHECK((edges > 0) == pdl && cm4j::engine_programmatic_edges(with) == 0,
        "programmatic edges: %zu in the PDL engine's graphs (PDL %s here), %zu in the other's",
        edges, pdl ? "taken" : "not taken", cm4j::engine_programmatic_edges(with));
  size_t graphs = 0, unused = 0;
  cm4j::engine_graph_counts(programmatic, &graphs, &unused);
  std::printf("programmatic edges: %zu in the PDL engine's %zu graphs\n", edges, graphs);
  if (programmatic_launches() >= 0) {
    // Each replay's kernels, every one launched programmatically; nobody else's.
    CHECK(pdl_launches > 0 && other_launches == 0,
          "programmatic launches: %ld by the PDL engine, %ld by the others", pdl_launches,
          other_launches);
    std::printf("programmatic launches: %ld, each thread waiting before its first barrier\n",
                pdl_launches);
  }
  cm4j_unet_destroy(with);
  cm4j_unet_destroy(programmatic);
  cm4j_unet_destroy(without);
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}

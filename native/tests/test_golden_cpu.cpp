// The whole UNet on the CPU backend against diffusers' golden outputs: `sample` and every
// tap.* within relative L2 1e-4, for tiny (stored weights), imagenet64 and lsun_mini
// (synth-v1 seed 1). No JVM involved. CM4J_GOLDEN_MODELS=tiny,... picks a subset.
// The CPU backend's bf16 mode runs the same cases against the bf16 bound of
// ../shared/golden/README.md (6e-2 relative L2) on `sample` and every tap: by default after
// float32 where the CPU has a bf16 unit (AMX or AVX-512-BF16; the portable kernel takes
// ~45 s for imagenet64 on 2 cores), or alone with CM4J_GOLDEN_DTYPE=bf16 (any CPU;
// CM4J_CPU_ISA=amx|avx512bf16|avx2 picks the bf16 path). CM4J_GOLDEN_DTYPE=fp32: float32 only.
// ctest runs it once per dispatch path (CMakeLists.txt): a path forced with CM4J_CPU_ISA that
// this CPU lacks is a skip (exit 77), never a silent run of another path; and once more for
// each Winograd variant forced with CM4J_CPU_CONV, on the AVX-512 and generic paths.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cm4j.h"
#include "cpu/isa.h"
#include "test_util.h"

using namespace cm4j_test;

namespace {

constexpr double kBound = 1e-4;  // CPU float32 bound of ../shared/golden/README.md
constexpr double kBoundBf16 = 6e-2;  // bf16 bound of ../shared/golden/README.md
int g_dtype = CM4J_F32;

bool selected(const char* model) {
  const char* env = std::getenv("CM4J_GOLDEN_MODELS");
  return !env || std::strstr(env, model) != nullptr;
}

void run_case(const char* model, const char* device, double bound) {
  if (!selected(model)) return;
  std::string dir = golden_dir() + "/" + model;
  std::string config = std::string(model) == "tiny"
                           ? read_text(golden_dir() + "/tiny/pipeline/unet/config.json")
                           : read_text(dir + "/config.json");
  cm4j_unet* u = nullptr;
  int rc = cm4j_unet_create(config.c_str(), device, g_dtype, &u);
  CHECK(rc == CM4J_OK, "%s: create: %s", model, cm4j_last_error());
  if (rc) return;
  rc = std::string(model) == "tiny"
           ? bind_safetensors(u, golden_dir() + "/tiny/pipeline/unet/diffusion_pytorch_model.safetensors")
           : cm4j_unet_bind_synth(u, 1);
  CHECK(rc == CM4J_OK, "%s: bind: %s", model, cm4j_last_error());
  rc = cm4j_unet_finalize(u);
  CHECK(rc == CM4J_OK, "%s: finalize: %s", model, cm4j_last_error());

  std::map<std::string, TensorF> in, expected;
  std::string error;
  CHECK(read_safetensors(dir + "/unet_case.inputs.safetensors", &in, &error), "%s", error.c_str());
  CHECK(read_safetensors(dir + "/unet_case.expected.safetensors", &expected, &error), "%s", error.c_str());
  const TensorF& sample = in["sample"];
  int batch = static_cast<int>(sample.shape[0]);
  std::vector<float> out(expected["sample"].f32.size());
  cm4j_unet_set_capture_taps(u, 1);
  const int64_t* labels = in.count("class_labels") ? in["class_labels"].i64.data() : nullptr;
  rc = cm4j_unet_forward(u, batch, sample.f32.data(), in["timestep"].f32.data(), labels, out.data());
  CHECK(rc == CM4J_OK, "%s: forward: %s", model, cm4j_last_error());
  if (rc == CM4J_OK) {
    double err = rel_l2(out.data(), expected["sample"].f32.data(), out.size());
    std::printf("%-10s %-6s %-28s rel_l2 %.3e\n", model, device, "sample", err);
    CHECK(err <= bound, "%s sample rel_l2 %.3e > %.0e", model, err, bound);
    int taps = cm4j_unet_tap_count(u);
    int compared = 0;
    for (int i = 0; i < taps; ++i) {
      std::string name = std::string("tap.") + cm4j_unet_tap_name(u, i);
      auto it = expected.find(name);
      CHECK(it != expected.end(), "%s: tap %s not in the golden file", model, name.c_str());
      if (it == expected.end()) continue;
      std::vector<float> tap(it->second.f32.size());
      CHECK(cm4j_unet_tap_copy(u, i, tap.data(), static_cast<int64_t>(tap.size())) == CM4J_OK,
            "%s: %s", name.c_str(), cm4j_last_error());
      double e = rel_l2(tap.data(), it->second.f32.data(), tap.size());
      std::printf("%-10s %-6s %-28s rel_l2 %.3e\n", model, device, name.c_str(), e);
      CHECK(e <= bound, "%s %s rel_l2 %.3e > %.0e", model, name.c_str(), e, bound);
      ++compared;
    }
    int expected_taps = 0;
    for (const auto& kv : expected) expected_taps += kv.first.rfind("tap.", 0) == 0;
    CHECK(compared == expected_taps, "%s: compared %d taps of %d", model, compared, expected_taps);
  }
  cm4j_unet_destroy(u);
}

}  // namespace

int main() {
  const char* dtype = std::getenv("CM4J_GOLDEN_DTYPE");
  const std::string mode = dtype ? dtype : "";
  if (!mode.empty() && mode != "fp32" && mode != "bf16") {
    std::fprintf(stderr, "CM4J_GOLDEN_DTYPE: expected fp32 or bf16, found %s\n", dtype);
    return 2;
  }
  const std::string isa = cm4j::cpu::isa_name(cm4j::cpu::choose_isa());
  const std::string bf16 = cm4j::cpu::bf16_path_name(cm4j::cpu::choose_bf16_path());
  const char* conv = std::getenv("CM4J_CPU_CONV");
  std::printf("kernels: fp32 %s, bf16 %s; 3x3 convs: %s\n", isa.c_str(), bf16.c_str(),
              conv && *conv ? conv : "per-layer rule");
  if (const char* forced = std::getenv("CM4J_CPU_ISA")) {
    // The fp32 names select the fp32 kernels and the bf16 mode's portable kernel.
    const std::string want = forced;
    const bool fp32_name = want == "avx512" || want == "avx2" || want == "generic";
    const bool served = (mode != "bf16" ? !fp32_name || want == isa : true) &&
                        (mode != "fp32" ? (fp32_name ? bf16 == "generic" : want == bf16) : true);
    if (!served) {
      std::printf("SKIPPED: CM4J_CPU_ISA=%s is not available on this CPU\n", forced);
      return 77;
    }
  }
  bool run_bf16 = mode == "bf16";
  if (mode.empty()) {
    run_bf16 = cm4j::cpu::detect_bf16_path() != cm4j::cpu::Bf16Path::kGeneric;
    if (!run_bf16) std::printf("bf16: skipped, this CPU has neither AMX nor AVX-512-BF16 (CM4J_GOLDEN_DTYPE=bf16 forces it)\n");
  }
  struct Mode {
    int dtype;
    double bound;
    const char* name;
  };
  std::vector<Mode> modes;
  if (mode != "bf16") modes.push_back({CM4J_F32, kBound, "fp32"});
  if (run_bf16) modes.push_back({CM4J_BF16, kBoundBf16, "bf16"});
  for (const Mode& m : modes) {
    g_dtype = m.dtype;
    std::printf("== dtype %s, bound %.0e\n", m.name, m.bound);
    run_case("tiny", "cpu", m.bound);
    run_case("lsun_mini", "cpu", m.bound);
    run_case("imagenet64", "cpu", m.bound);
  }
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}

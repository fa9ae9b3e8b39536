// The C API fed random and hostile arguments through every entry point: random configs,
// devices, dtypes, names, shapes, byte counts, batch sizes and null pointers. Every call must
// return a status (or its documented failure value) with a message and never crash. Built with
// CM4J_SANITIZE (ASan + UBSan, `ctest -L sanitize`), it also shows no memory error, undefined
// behaviour or leak. A fixed seed and case count keep it deterministic and bounded.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cm4j.h"
#include "test_util.h"

using namespace cm4j_test;

namespace {

std::mt19937_64 rng(20261201);

int pick(int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); }
template <typename T, size_t N>
T pick(const T (&pool)[N]) {
  return pool[pick(static_cast<int>(N))];
}

// A small valid model: 8x8 samples, two levels of 8 and 16 channels, attention, 10 classes.
const char* kBase = R"({"_class_name": "UNet2DModel", "sample_size": 8, "in_channels": 3,
 "out_channels": 3, "layers_per_block": 1, "block_out_channels": [8, 16],
 "down_block_types": ["ResnetDownsampleBlock2D", "AttnDownBlock2D"],
 "up_block_types": ["AttnUpBlock2D", "ResnetUpsampleBlock2D"], "attention_head_dim": 4,
 "norm_num_groups": 4, "attn_norm_num_groups": 4, "resnet_time_scale_shift": "scale_shift",
 "upsample_type": "resnet", "downsample_type": "resnet", "num_class_embeds": 10,
 "norm_eps": 1e-05, "freq_shift": 0, "mid_block_scale_factor": 1, "dropout": 0.0})";

const char* kKeys[] = {"sample_size", "in_channels", "out_channels", "layers_per_block",
                       "block_out_channels", "attention_head_dim", "norm_num_groups",
                       "attn_norm_num_groups", "num_class_embeds", "norm_eps", "freq_shift",
                       "mid_block_scale_factor", "dropout", "downsample_padding",
                       "num_train_timesteps", "down_block_types", "up_block_types"};
const char* kValues[] = {"0", "-1", "1", "2", "3", "4", "7", "16", "2.5", "1e300", "-1e300",
                         "1e400", "-1e400", "2147483647", "2147483648", "-2147483649",
                         "9.3e18", "1e-300", "65536", "65537", "16384", "null", "true",
                         "\"x\"", "[]", "[8]", "[8, 16, 32]", "[1e300, 16]", "[-8, 16]",
                         "[8.5, 16]", "[8, 8]", "[1e300, 1e300]", "{}", "[[8]]",
                         "[\"AttnDownBlock2D\", \"AttnDownBlock2D\"]"};

// Values a key may well hold: a mutation with one of them often still makes a valid model.
const char* kPlausible[] = {"1", "2", "4", "8", "16", "null", "[4, 8]", "[16, 16]", "0.5"};

// The base config with one or two keys replaced (or added) by random values, sometimes then
// truncated or with a byte flipped.
std::string random_config() {
  std::string json = kBase;
  for (int k = 1 + pick(2); k > 0; --k) {
    std::string key = std::string("\"") + pick(kKeys) + "\"";
    std::string value = pick(2) == 0 ? pick(kPlausible) : pick(kValues);
    size_t at = json.find(key + ":");
    if (at == std::string::npos) {
      json.insert(1, key + ": " + value + ", ");
      continue;
    }
    size_t start = at + key.size() + 1;
    size_t end = start;
    int depth = 0;
    while (end < json.size() && (depth > 0 || (json[end] != ',' && json[end] != '}'))) {
      if (json[end] == '[') ++depth;
      if (json[end] == ']') --depth;
      ++end;
    }
    json.replace(start, end - start, " " + value);
  }
  switch (pick(8)) {
    case 0: json.resize(static_cast<size_t>(pick(static_cast<int>(json.size())))); break;
    case 1: json[static_cast<size_t>(pick(static_cast<int>(json.size())))] ^= 1 + pick(127); break;
    default: break;
  }
  return json;
}

// A call that failed left a message.
void expect_failure(int rc, const char* what) {
  CHECK(rc != CM4J_OK, "%s: expected a failure", what);
  CHECK(std::strlen(cm4j_last_error()) > 0, "%s: failed (%d) with no message", what, rc);
}

int64_t total_params(const cm4j_unet* u) {
  int64_t total = 0;
  for (int i = 0; i < cm4j_unet_param_count(u); ++i) {
    int64_t shape[4] = {0, 0, 0, 0};
    int ndim = cm4j_unet_param_shape(u, i, shape);
    CHECK(ndim >= 1 && ndim <= 4 && cm4j_unet_param_name(u, i) != nullptr, "param %d", i);
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= shape[d];
    total += n;
  }
  return total;
}

// Every entry point with a null handle, null outputs and out-of-range indices.
void null_handles() {
  CHECK(cm4j_version() != nullptr && cm4j_last_error() != nullptr, "version/last_error");
  expect_failure(cm4j_unet_create(kBase, "cpu", CM4J_F32, nullptr), "create, null out");
  cm4j_unet* u = reinterpret_cast<cm4j_unet*>(1);
  expect_failure(cm4j_unet_create(nullptr, "cpu", CM4J_F32, &u), "create, null config");
  CHECK(u == nullptr, "create failed but set *out");
  cm4j_unet_destroy(nullptr);
  CHECK(cm4j_unet_param_count(nullptr) == 0 && cm4j_unet_param_name(nullptr, 0) == nullptr, "null");
  int64_t shape[4];
  expect_failure(cm4j_unet_param_shape(nullptr, 0, shape), "param_shape null");
  CHECK(cm4j_unet_in_channels(nullptr) == 0 && cm4j_unet_out_channels(nullptr) == 0 &&
            cm4j_unet_sample_size(nullptr) == 0 && cm4j_unet_num_class_embeds(nullptr) == 0 &&
            cm4j_unet_max_batch(nullptr) == 0,
        "null handle facts");
  float f[4] = {0, 0, 0, 0};
  expect_failure(cm4j_unet_bind(nullptr, "x", CM4J_F32, shape, 1, f, 4), "bind null");
  expect_failure(cm4j_unet_bind_synth(nullptr, 1), "bind_synth null");
  expect_failure(cm4j_unet_finalize(nullptr), "finalize null");
  expect_failure(cm4j_unet_forward(nullptr, 1, f, f, nullptr, f), "forward null");
  expect_failure(cm4j_unet_sample(nullptr, 1, 1, f, f, f, f, f, f, 1, nullptr, nullptr, 0, f),
                 "sample null");
  expect_failure(cm4j_unet_edit(nullptr, 1, 1, f, f, f, f, f, f, nullptr, nullptr, CM4J_EDIT_NONE,
                                1, nullptr, nullptr, f),
                 "edit null");
  expect_failure(cm4j_unet_set_capture_taps(nullptr, 1), "set_capture_taps null");
  CHECK(cm4j_unet_tap_count(nullptr) == 0 && cm4j_unet_tap_name(nullptr, 0) == nullptr, "taps");
  CHECK(cm4j_unet_tap_shape(nullptr, 0, shape) == -1, "tap_shape null");
  expect_failure(cm4j_unet_tap_copy(nullptr, 0, f, 1), "tap_copy null");
  CHECK(cm4j_unet_weight_bytes(nullptr) == 0 && cm4j_unet_arena_bytes(nullptr) == 0, "bytes");
  expect_failure(cm4j_unet_set_profile_ops(nullptr, 1), "set_profile_ops null");
  CHECK(cm4j_unet_op_count(nullptr) == 0 && cm4j_unet_op_name(nullptr, 0) == nullptr &&
            cm4j_unet_op_ms(nullptr, 0) == -1.0,
        "op profile null");
  expect_failure(cm4j_synth_v1(nullptr, shape, 1, 0, f, 1), "synth null name");
  expect_failure(cm4j_synth_v1("x", nullptr, 1, 0, f, 1), "synth null shape");
  expect_failure(cm4j_synth_v1("x", shape, 1, 0, nullptr, 1), "synth null out");
}

// Random configs, devices and dtypes through create; what is created is queried and freed.
void random_creates(int cases) {
  const char* devices[] = {"cpu", "cpu:1", "cpu:2", "cpu:0", "cpu:-1", "cpu:99999", "cuda",
                           "cuda:99", "gpu", "", "cpu:1x", nullptr};
  const int dtypes[] = {CM4J_F32, CM4J_F32, CM4J_BF16, CM4J_F16, -1, 3, INT_MAX};
  int created = 0;
  for (int i = 0; i < cases; ++i) {
    std::string json = random_config();
    cm4j_unet* u = nullptr;
    int rc = cm4j_unet_create(json.c_str(), pick(devices), pick(dtypes), &u);
    if (rc != CM4J_OK) {
      CHECK(u == nullptr, "create failed (%d) but set *out", rc);
      CHECK(std::strlen(cm4j_last_error()) > 0, "create failed (%d) with no message", rc);
      continue;
    }
    ++created;
    CHECK(cm4j_unet_sample_size(u) > 0 && cm4j_unet_in_channels(u) > 0 &&
              cm4j_unet_max_batch(u) > 0, "created facts");
    // Synthesize only what is small: a mutated config may declare a valid but huge model.
    if (total_params(u) < (1 << 20)) {
      CHECK(cm4j_unet_bind_synth(u, static_cast<uint64_t>(i)) == CM4J_OK, "bind_synth: %s",
            cm4j_last_error());
      CHECK(cm4j_unet_finalize(u) == CM4J_OK, "finalize: %s", cm4j_last_error());
    }
    cm4j_unet_destroy(u);
  }
  std::printf("random configs: %d of %d created\n", created, cases);
}

// Random names, dtypes, shapes and byte counts through bind and synth_v1. The buffer holds
// every byte count passed that a shape could match, so ASan flags only a read past nbytes.
void random_binds(cm4j_unet* u, int cases) {
  const int64_t dims[] = {-1, 0, 1, 2, 3, 8, 16, 4096, INT32_MAX, INT64_MAX / 2, INT64_MAX,
                          INT64_MIN};
  const int dtypes[] = {CM4J_F32, CM4J_F16, CM4J_BF16, -1, 7};
  const size_t kMaxBuffer = 1 << 16;
  std::vector<uint8_t> buffer(2 * kMaxBuffer, 0x3c);
  for (int i = 0; i < cases; ++i) {
    int ndim = pick(10) - 1;  // -1 .. 8
    int64_t shape[8];
    for (int d = 0; d < 8; ++d) shape[d] = pick(dims);
    int params = cm4j_unet_param_count(u);
    std::string name = pick(3) == 0 ? "nope" : cm4j_unet_param_name(u, pick(params));
    if (pick(4) == 0) {  // a real parameter's own shape, the bytes it needs
      int index = pick(params);
      name = cm4j_unet_param_name(u, index);
      ndim = cm4j_unet_param_shape(u, index, shape);
    }
    int dtype = pick(dtypes);
    int64_t es = dtype == CM4J_F32 ? 4 : 2;
    int64_t numel = 1;
    bool fits = ndim >= 0;
    for (int d = 0; d < std::max(ndim, 0) && fits; ++d) {
      fits = shape[d] >= 0 && (shape[d] == 0 || numel <= static_cast<int64_t>(kMaxBuffer) / shape[d]);
      if (fits) numel *= shape[d];
    }
    fits = fits && numel * es <= static_cast<int64_t>(kMaxBuffer);
    const int64_t wrong[] = {-1, 0, 3, INT64_MAX, INT64_MIN, static_cast<int64_t>(kMaxBuffer) * 2};
    int64_t nbytes = fits && pick(2) == 0 ? numel * es : pick(wrong);
    const void* data = pick(8) == 0 ? nullptr : buffer.data();
    const int64_t* shape_arg = pick(8) == 0 ? nullptr : shape;
    int rc = cm4j_unet_bind(u, name.c_str(), dtype, shape_arg, ndim, data, nbytes);
    if (rc != CM4J_OK) CHECK(std::strlen(cm4j_last_error()) > 0, "bind failed with no message");
    if (fits && ndim >= 0 && shape_arg && numel * 4 <= static_cast<int64_t>(kMaxBuffer)) {
      int64_t n = pick(2) == 0 ? numel : numel + 1;
      rc = cm4j_synth_v1(name.c_str(), shape, ndim, rng(), reinterpret_cast<float*>(buffer.data()), n);
      CHECK((rc == CM4J_OK) == (n == numel), "synth_v1 n=%lld numel=%lld: %s",
            static_cast<long long>(n), static_cast<long long>(numel), cm4j_last_error());
    } else if (ndim > 0 && shape_arg) {
      rc = cm4j_synth_v1(name.c_str(), shape, ndim, 0, reinterpret_cast<float*>(buffer.data()), 1);
      if (!fits) CHECK(rc != CM4J_OK || numel == 1, "synth_v1 accepted an unfit shape");
    }
  }
  // Whatever was bound, finalize reports it in one status.
  int rc = cm4j_unet_finalize(u);
  if (rc != CM4J_OK) CHECK(std::strlen(cm4j_last_error()) > 0, "finalize failed with no message");
}

// Forward passes, sampling loops and editing loops, half of them with one fault (a bad batch,
// step count, label, timestep or clip flag, a null buffer, or an edit's bad replacement or
// patch), then every tap read back.
void random_runs(cm4j_unet* u, int cases) {
  const int image = 3 * 8 * 8;
  // INT_MAX is over the model's max_batch; any batch it allows would read the whole batch.
  const int bad_batches[] = {-1, 0, INT_MAX, INT_MIN};
  const int64_t bad_labels[] = {10, -1, INT64_MAX, INT64_MIN};
  const float bad_times[] = {NAN, INFINITY, -INFINITY};
  int ran = 0;
  for (int i = 0; i < cases; ++i) {
    const int b = 1 + pick(2), s = 1 + pick(2);
    std::vector<float> sample(static_cast<size_t>(b) * image, 0.25f), out(sample.size());
    std::vector<float> table(static_cast<size_t>(b) * s, 1.0f), t(table.size(), 20.0f);
    std::vector<float> noise(static_cast<size_t>(s) * b * image, 0.1f);
    std::vector<int64_t> labels(static_cast<size_t>(b), pick(10));
    int batch = b, steps = s, clip = pick(2);
    const float* in = sample.data();
    const float* c_out = table.data();
    const int64_t* lab = labels.data();
    float* dst = out.data();
    std::vector<float> reference(sample.size(), -0.5f), mask(static_cast<size_t>(b) * 8 * 8, 1.0f);
    int replacement = pick(4), patch = 1 << pick(4);  // CM4J_EDIT_NONE..SUPERRES; 1 to 8
    const int mode = pick(3);                          // forward, sample, edit
    const bool forward = mode == 0, edit = mode == 2;
    const int fault = pick(2) == 0 ? 1 + pick(edit ? 10 : 8) : 0;
    switch (fault) {
      case 1: batch = pick(bad_batches); break;
      case 2: steps = -pick(2); break;
      case 3: labels[0] = pick(bad_labels); break;
      case 4: lab = nullptr; break;
      case 5: t[0] = pick(bad_times); break;
      case 6: clip = 2; break;
      case 7: in = nullptr; c_out = nullptr; break;
      case 8: dst = nullptr; break;
      case 9: replacement = pick(2) == 0 ? -1 : 4; break;
      case 10: replacement = CM4J_EDIT_SUPERRES; patch = 3; break;
    }
    int rc;
    CHECK(cm4j_unet_set_profile_ops(u, pick(2)) == CM4J_OK, "profile: %s", cm4j_last_error());
    if (forward) {
      CHECK(cm4j_unet_set_capture_taps(u, pick(2)) == CM4J_OK, "taps: %s", cm4j_last_error());
      rc = cm4j_unet_forward(u, batch, in, t.data(), lab, dst);
    } else if (!edit) {
      rc = cm4j_unet_sample(u, batch, steps, in, t.data(), table.data(), table.data(), c_out,
                            table.data(), 1.0f, pick(2) == 0 ? nullptr : noise.data(), lab, clip,
                            dst);
    } else {
      rc = cm4j_unet_edit(u, batch, steps, in, t.data(), table.data(), table.data(), c_out,
                          table.data(), pick(2) == 0 ? nullptr : noise.data(), lab, replacement,
                          patch, reference.data(), mask.data(), dst);
    }
    // forward does not read steps, clip or finite timesteps; an edit has no clip flag
    const bool harmless = (forward && (fault == 2 || fault == 5 || fault == 6)) || (edit && fault == 6);
    if (fault == 0 || harmless) {
      CHECK(rc == CM4J_OK, "run without a fault: %s", cm4j_last_error());
    } else {
      expect_failure(rc, "run with a fault");
    }
    ran += rc == CM4J_OK;
    for (int k = -1; k <= cm4j_unet_tap_count(u); ++k) {
      int64_t shape[4];
      int ndim = cm4j_unet_tap_shape(u, k, shape);
      const char* name = cm4j_unet_tap_name(u, k);
      bool valid = k >= 0 && k < cm4j_unet_tap_count(u);
      CHECK((ndim >= 1) == valid && (name != nullptr) == valid, "tap %d", k);
      if (!valid) continue;
      int64_t n = 1;
      for (int d = 0; d < ndim; ++d) n *= shape[d];
      std::vector<float> copy(static_cast<size_t>(n));
      CHECK(cm4j_unet_tap_copy(u, k, copy.data(), n) == CM4J_OK, "tap_copy: %s", cm4j_last_error());
      expect_failure(cm4j_unet_tap_copy(u, k, copy.data(), n + 1), "tap_copy with a wrong size");
    }
    for (int k = -1; k <= cm4j_unet_op_count(u); ++k) {
      const bool valid = k >= 0 && k < cm4j_unet_op_count(u);
      CHECK((cm4j_unet_op_name(u, k) != nullptr) == valid && (cm4j_unet_op_ms(u, k) >= 0) == valid,
            "op %d", k);
    }
  }
  CHECK(cm4j_unet_weight_bytes(u) > 0 && cm4j_unet_arena_bytes(u) > 0, "engine bytes");
  CHECK(ran > 0, "no forward pass or sampling loop ran");
  std::printf("random runs: %d of %d ran\n", ran, cases);
}

}  // namespace

int main() {
  null_handles();
  random_creates(300);

  cm4j_unet* u = nullptr;
  CHECK(cm4j_unet_create(kBase, "cpu:2", CM4J_F32, &u) == CM4J_OK, "base: %s", cm4j_last_error());
  if (!u) return 1;
  expect_failure(cm4j_unet_forward(u, 1, nullptr, nullptr, nullptr, nullptr), "forward before finalize");
  random_binds(u, 400);
  cm4j_unet_destroy(u);

  u = nullptr;
  CHECK(cm4j_unet_create(kBase, "cpu:2", CM4J_F32, &u) == CM4J_OK, "base: %s", cm4j_last_error());
  if (!u) return 1;
  CHECK(cm4j_unet_bind_synth(u, 7) == CM4J_OK && cm4j_unet_finalize(u) == CM4J_OK, "finalize: %s",
        cm4j_last_error());
  random_runs(u, 60);
  cm4j_unet_destroy(u);

  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}

#include "test_util.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "json.h"

namespace cm4j_test {

int failures = 0;

int64_t TensorF::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

// Calls fn(name, tensor) for every tensor of the safetensors image bytes[0, size), each
// tensor's raw bytes left empty and its data at tensor_data(t) = bytes + begin.
template <typename Fn>
bool each_tensor(const std::string& path, const char* bytes, size_t size, std::string* error,
                 Fn fn) {
  if (size < 8) {
    *error = path + ": too short";
    return false;
  }
  uint64_t n;
  std::memcpy(&n, bytes, 8);
  if (n > size - 8) {
    *error = path + ": header length past the end";
    return false;
  }
  cm4j::JsonValue header;
  if (!cm4j::parse_json(std::string(bytes + 8, n), &header, error)) return false;
  const char* data = bytes + 8 + n;
  size_t data_len = size - 8 - n;
  for (const auto& kv : header.object) {
    if (kv.first == "__metadata__") continue;
    TensorF t;
    t.dtype = kv.second.find("dtype")->string;
    for (const auto& d : kv.second.find("shape")->array) t.shape.push_back(static_cast<int64_t>(d.number));
    const auto& off = kv.second.find("data_offsets")->array;
    size_t begin = static_cast<size_t>(off[0].number), end = static_cast<size_t>(off[1].number);
    if (end < begin || end > data_len) {
      *error = path + ": bad offsets for " + kv.first;
      return false;
    }
    if (!fn(kv.first, std::move(t), data + begin, end - begin)) return false;
  }
  return true;
}

}  // namespace

bool read_safetensors(const std::string& path, std::map<std::string, TensorF>* out,
                      std::string* error) {
  const std::string bytes = read_text(path);
  return each_tensor(path, bytes.data(), bytes.size(), error,
                     [&](const std::string& name, TensorF t, const char* data, size_t nbytes) {
                       t.raw.assign(data, data + nbytes);
                       if (t.dtype == "F32") {
                         t.f32.resize(nbytes / 4);
                         std::memcpy(t.f32.data(), data, nbytes);
                       } else if (t.dtype == "I64") {
                         t.i64.resize(nbytes / 8);
                         std::memcpy(t.i64.data(), data, nbytes);
                       }
                       (*out)[name] = std::move(t);
                       return true;
                     });
}

int bind_safetensors(cm4j_unet* unet, const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY);
  struct stat st {};
  if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
    std::fprintf(stderr, "%s: cannot open or empty\n", path.c_str());
    if (fd >= 0) close(fd);
    return CM4J_ERR_WEIGHTS;
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) {
    std::fprintf(stderr, "%s: cannot map\n", path.c_str());
    return CM4J_ERR_WEIGHTS;
  }
  std::string error;
  int rc = CM4J_OK;
  const bool parsed = each_tensor(
      path, static_cast<const char*>(map), size, &error,
      [&](const std::string& name, const TensorF& t, const char* data, size_t nbytes) {
        const int dtype = t.dtype == "F16" ? CM4J_F16 : t.dtype == "BF16" ? CM4J_BF16 : CM4J_F32;
        rc = cm4j_unet_bind(unet, name.c_str(), dtype, t.shape.data(),
                            static_cast<int>(t.shape.size()), data, static_cast<int64_t>(nbytes));
        return rc == CM4J_OK;
      });
  munmap(map, size);
  if (!parsed && rc == CM4J_OK) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return CM4J_ERR_WEIGHTS;
  }
  return rc;
}

double rel_l2(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  if (std::isnan(num)) return INFINITY;
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

double max_abs(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (!(d <= m)) m = d;  // NaN propagates as the maximum
  }
  return m;
}

std::vector<int> parse_int_list(const std::string& text, int min, int max) {
  std::vector<int> out;
  for (const char* p = text.c_str(); *p;) {
    char* end = nullptr;
    const long v = std::strtol(p, &end, 10);
    if (end == p || v < min || v > max || (*end && *end != ',')) return {};
    out.push_back(static_cast<int>(v));
    p = *end ? end + 1 : end;
  }
  return out;
}

std::string golden_dir() {
  const char* env = std::getenv("CM4J_GOLDEN");
  return env ? env : CM4J_GOLDEN_DIR;
}

float reference_scale_model_input(float x, float divisor) {
  return static_cast<float>(static_cast<double>(x) / divisor);
}

namespace {
float mul(float a, float b) { return static_cast<float>(static_cast<double>(a) * b); }
float add(float a, float b) { return static_cast<float>(static_cast<double>(a) + b); }
}  // namespace

float reference_scheduler_step(float model_output, float sample, float noise, float c_skip,
                               float c_out, float s_noise, float noise_scale, bool clip) {
  float denoised = add(mul(c_out, model_output), mul(c_skip, sample));
  if (clip) {  // Math.min(Math.max(d, -1f), 1f): NaN stays NaN
    if (denoised < -1.0f) denoised = -1.0f;
    if (denoised > 1.0f) denoised = 1.0f;
  }
  return add(denoised, mul(mul(noise, s_noise), noise_scale));
}

SampleTables sample_tables(const std::vector<float>& sigmas, int batch) {
  const float sigma_min = 0.002f, sigma_data = 0.5f, sigma_data2 = 0.25f;
  SampleTables t;
  for (size_t s = 0; s < sigmas.size(); ++s) {
    const float sigma = sigmas[s];
    const float next = s + 1 < sigmas.size() ? sigmas[s + 1] : sigma_min;
    const float shifted = sigma - sigma_min;
    const float values[5] = {
        static_cast<float>(250.0 * std::log(static_cast<double>(sigma))),
        std::sqrt(sigma * sigma + sigma_data2),
        (1.0f / (shifted * shifted + sigma_data2)) * sigma_data2,
        shifted * sigma_data / std::sqrt(sigma * sigma + sigma_data2),
        std::sqrt(std::max(next, sigma_min) * std::max(next, sigma_min) -
                  static_cast<float>(0.002 * 0.002))};
    std::vector<float>* tables[5] = {&t.timesteps, &t.input_scale, &t.c_skip, &t.c_out,
                                     &t.noise_scale};
    for (int k = 0; k < 5; ++k) tables[k]->insert(tables[k]->end(), batch, values[k]);
  }
  return t;
}

int64_t first_difference(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return static_cast<int64_t>(i);
  }
  return -1;
}

}  // namespace cm4j_test

// Header-only helpers shared by the CUDA tests (test_cuda_ops, test_cuda_cudnn): seeded
// random inputs and a float buffer owned by a backend. Header-only because CMake builds
// each tests/test_*.cpp with test_util.cpp alone.
#pragma once

#include <cstddef>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "backend.h"

namespace cm4j_test {

// The tests' random source; each test seeds it (the seed is printed so a run repeats).
inline std::mt19937_64 g_rng;

inline std::vector<float> randn(size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}

inline std::vector<float> uniform(size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}

// A buffer of floats on one backend, freed with it; failures are printed and leave p null
// (alloc) or the buffer as it was (upload), and get() then returns NaN. An activation
// buffer (constructed with its shape) moves through upload_activation /
// download_activation, so a backend may keep it in its own storage; element_bytes < 4
// allocates just what that storage needs (2 for fp16/bf16), so that the emulator's guard
// page catches a kernel writing past it.
struct Buf {
  cm4j::Backend* be = nullptr;
  float* p = nullptr;
  size_t n = 0;
  bool activation = false;
  cm4j::ActShape shape;
  Buf() = default;
  Buf(cm4j::Backend* b, size_t count, size_t element_bytes = sizeof(float)) : be(b), n(count) {
    const size_t bytes = (count * element_bytes + 3) / 4 * 4;
    cm4j::Status s = be->alloc(bytes, &p);
    if (!s.ok()) {
      std::printf("alloc of %zu bytes failed on %s: %s\n", bytes, be->name(),
                  s.message.c_str());
      p = nullptr;
    }
  }
  Buf(cm4j::Backend* b, const std::vector<float>& host) : Buf(b, host.size()) { set(host); }
  Buf(cm4j::Backend* b, const cm4j::ActShape& s, size_t element_bytes = sizeof(float))
      : Buf(b, s.numel(), element_bytes) {
    activation = true;
    shape = s;
  }
  Buf(cm4j::Backend* b, const cm4j::ActShape& s, const std::vector<float>& host,
      size_t element_bytes = sizeof(float))
      : Buf(b, s, element_bytes) {
    set(host);
  }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  ~Buf() {
    if (p) be->free(p);
  }
  void set(const std::vector<float>& host) {
    if (p) {
      cm4j::Status s = activation ? be->upload_activation(p, host.data(), shape)
                                  : be->upload(p, host.data(), host.size());
      if (!s.ok()) std::printf("upload failed on %s: %s\n", be->name(), s.message.c_str());
    }
  }
  void poison() { set(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN())); }
  std::vector<float> get() const {
    std::vector<float> h(n, std::numeric_limits<float>::quiet_NaN());
    if (p) {
      cm4j::Status s = activation ? be->download_activation(h.data(), p, shape)
                                  : be->download(h.data(), p, n);
      if (!s.ok()) std::printf("download failed on %s: %s\n", be->name(), s.message.c_str());
    }
    return h;
  }
};

// The conv parameters of a test case (any struct with the ConvParams geometry fields
// batch, c1, c2, h, w, c_out, kernel, stride, pad, up); out_scale stays at its default.
// Params: the backend's ConvParams, or a kernel's parameters of the same field names
// (kernels::Conv2dNhwcParams).
template <typename Params = cm4j::ConvParams, typename Case>
Params conv_params(const Case& k) {
  Params p;
  p.batch = k.batch;
  p.c_in1 = k.c1;
  p.c_in2 = k.c2;
  p.h_in = k.h;
  p.w_in = k.w;
  p.c_out = k.c_out;
  p.kernel = k.kernel;
  p.stride = k.stride;
  p.pad = k.pad;
  p.upsample = k.up;
  return p;
}

}  // namespace cm4j_test

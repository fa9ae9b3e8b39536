#include "weights.h"

#include <cstring>
#include <sstream>

#include "cm4j.h"

namespace cm4j {

int64_t ParamSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// "3 missing keys: a, b, c" with at most 8 names, so a wrong checkpoint stays readable.
void list_problems(std::ostringstream& os, const char* what, const std::vector<std::string>& names) {
  if (names.empty()) return;
  os << "\n  " << names.size() << " " << what << ": ";
  for (size_t i = 0; i < names.size() && i < 8; ++i) os << (i ? ", " : "") << names[i];
  if (names.size() > 8) os << ", ... (" << names.size() - 8 << " more)";
}

}  // namespace

WeightStore::WeightStore(Backend* backend, std::vector<ParamSpec> specs)
    : backend_(backend), specs_(std::move(specs)), bound_(specs_.size(), false),
      seen_(specs_.size(), false) {
  for (size_t i = 0; i < specs_.size(); ++i) index_[specs_[i].name] = i;
}

WeightStore::~WeightStore() {
  for (auto& kv : vectors_) backend_->free(kv.second.first);
}

Status WeightStore::bind(const std::string& name, const std::vector<int64_t>& shape,
                         const float* data) {
  if (finalized_) return {CM4J_ERR_STATE, "weights are already finalized"};
  auto it = index_.find(name);
  if (it == index_.end()) {
    unexpected_.push_back(name);
    return Status::Ok();
  }
  const ParamSpec& spec = specs_[it->second];
  if (bound_[it->second]) {
    duplicate_.push_back(name);
    return Status::Ok();
  }
  if (shape != spec.shape) {
    seen_[it->second] = true;
    misshaped_.push_back(name + " (expected " + shape_str(spec.shape) + ", found " +
                         shape_str(shape) + ")");
    return Status::Ok();
  }
  bound_[it->second] = true;
  switch (spec.kind) {
    case ParamKind::Conv: {
      int k = spec.shape.size() == 4 ? static_cast<int>(spec.shape[2]) : 1;
      return backend_->prepare_conv(data, static_cast<int>(spec.shape[0]),
                                    static_cast<int>(spec.shape[1]), k, &prepared_[spec.target]);
    }
    case ParamKind::Linear:
      return backend_->prepare_linear(data, static_cast<int>(spec.shape[0]),
                                      static_cast<int>(spec.shape[1]), &prepared_[spec.target]);
    case ParamKind::Vector: {
      size_t n = static_cast<size_t>(spec.numel());
      float* p = nullptr;
      Status s = backend_->alloc(n * sizeof(float), &p);
      if (!s.ok()) return s;
      vectors_[name] = {p, n};
      return backend_->upload(p, data, n);
    }
    case ParamKind::QkvWeight:
    case ParamKind::QkvBias:
      return store_qkv(spec, data);
  }
  return Status::Ok();
}

Status WeightStore::store_qkv(const ParamSpec& spec, const float* data) {
  bool is_bias = spec.kind == ParamKind::QkvBias;
  std::string key = spec.target + (is_bias ? ".bias" : ".weight");
  auto& parts = qkv_pending_[key];
  parts.resize(3);
  parts[spec.part].assign(data, data + spec.numel());
  for (const auto& p : parts)
    if (p.empty()) return Status::Ok();
  // q, k, v stacked along the output dimension: [3C, C] (weights) or [3C] (biases).
  std::vector<float> all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  qkv_pending_.erase(key);
  if (!is_bias) {
    int c = static_cast<int>(spec.shape[1]);
    return backend_->prepare_conv(all.data(), 3 * static_cast<int>(spec.shape[0]), c, 1,
                                  &prepared_[spec.target]);
  }
  float* p = nullptr;
  Status s = backend_->alloc(all.size() * sizeof(float), &p);
  if (!s.ok()) return s;
  vectors_[key] = {p, all.size()};
  return backend_->upload(p, all.data(), all.size());
}

Status WeightStore::finalize() {
  std::vector<std::string> missing;
  for (size_t i = 0; i < specs_.size(); ++i)
    if (!bound_[i] && !seen_[i]) missing.push_back(specs_[i].name);
  if (!missing.empty() || !unexpected_.empty() || !misshaped_.empty() || !duplicate_.empty()) {
    std::ostringstream os;
    os << "weights do not match the config:";
    list_problems(os, "missing keys", missing);
    list_problems(os, "unexpected keys", unexpected_);
    list_problems(os, "mis-shaped keys", misshaped_);
    list_problems(os, "keys bound twice", duplicate_);
    return {CM4J_ERR_WEIGHTS, os.str()};
  }
  finalized_ = true;
  return Status::Ok();
}

const Weight* WeightStore::prepared(const std::string& target) const {
  auto it = prepared_.find(target);
  return it == prepared_.end() ? nullptr : it->second.get();
}

const float* WeightStore::vec(const std::string& name) const {
  auto it = vectors_.find(name);
  return it == vectors_.end() ? nullptr : it->second.first;
}

size_t WeightStore::bytes() const {
  size_t total = 0;
  for (const auto& kv : prepared_) total += kv.second->bytes();
  for (const auto& kv : vectors_) total += kv.second.second * sizeof(float);
  return total;
}

float half_to_float(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalize
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float bfloat16_to_float(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace cm4j

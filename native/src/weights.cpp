#include "weights.h"

#include <algorithm>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "checked.h"
#include "cm4j.h"

namespace cm4j {

int64_t ParamSpec::numel() const {
  int64_t n = 0;
  // The config's ranges keep every parameter far below 2^63; a shape past it is a bug.
  if (!checked_numel(shape, &n)) throw std::overflow_error("parameter " + name + ": shape overflows");
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

bool is_stacked(ParamKind k) {
  return k == ParamKind::QkvWeight || k == ParamKind::QkvBias || k == ParamKind::TimeProjWeight ||
         k == ParamKind::TimeProjBias;
}
bool is_stacked_bias(ParamKind k) { return k == ParamKind::QkvBias || k == ParamKind::TimeProjBias; }

std::string stack_key(const ParamSpec& spec) {
  return spec.target + (is_stacked_bias(spec.kind) ? ".bias" : ".weight");
}

}  // namespace

WeightStore::WeightStore(Backend* backend, std::vector<ParamSpec> specs)
    : backend_(backend), specs_(std::move(specs)), bound_(specs_.size(), false),
      seen_(specs_.size(), false) {
  for (size_t i = 0; i < specs_.size(); ++i) index_[specs_[i].name] = i;
  // Where each part of a stacked parameter goes: parts in `part` order, rows appended.
  for (const ParamSpec& spec : specs_) {
    if (!is_stacked(spec.kind)) continue;
    Stack& st = stacks_[stack_key(spec)];
    if (st.size.size() <= static_cast<size_t>(spec.part)) st.size.resize(spec.part + 1, 0);
    st.size[spec.part] = spec.numel();
    st.rows += spec.shape[0];
    st.cols = spec.shape.size() > 1 ? spec.shape[1] : 1;
  }
  for (auto& kv : stacks_) {
    Stack& st = kv.second;
    int64_t at = 0;
    for (int64_t n : st.size) {
      st.offset.push_back(at);
      at += n;
    }
    st.arrived.assign(st.size.size(), false);
  }
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
      if (spec.use) return backend_->prepare_conv_for(data, *spec.use, &prepared_[spec.target]);
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
    case ParamKind::TimeProjWeight:
    case ParamKind::TimeProjBias:
      return store_stacked(spec, data);
  }
  return Status::Ok();
}

Status WeightStore::store_stacked(const ParamSpec& spec, const float* data) {
  const std::string key = stack_key(spec);
  Stack& st = stacks_[key];
  if (!st.data) st.data.reset(new float[static_cast<size_t>(st.rows * st.cols)]);
  std::copy(data, data + spec.numel(), st.data.get() + st.offset[spec.part]);
  st.arrived[spec.part] = true;
  for (bool a : st.arrived)
    if (!a) return Status::Ok();
  // Every part stacked along the output dimension: q/k/v [3C, C] (a 1x1 conv), the
  // time_emb_projs [sum n_r, K] (one linear), or their biases.
  const std::unique_ptr<float[]> all = std::move(st.data);  // freed on return
  const int rows = static_cast<int>(st.rows), cols = static_cast<int>(st.cols);
  if (spec.kind == ParamKind::QkvWeight)
    return backend_->prepare_conv(all.get(), rows, cols, 1, &prepared_[spec.target]);
  if (spec.kind == ParamKind::TimeProjWeight)
    return backend_->prepare_linear(all.get(), rows, cols, &prepared_[spec.target]);
  const size_t n = static_cast<size_t>(st.rows * st.cols);
  float* p = nullptr;
  Status s = backend_->alloc(n * sizeof(float), &p);
  if (!s.ok()) return s;
  vectors_[key] = {p, n};
  return backend_->upload(p, all.get(), n);
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

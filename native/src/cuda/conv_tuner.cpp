#include "cuda/conv_tuner.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <set>
#include <utility>

#include "cm4j.h"
#include "conv2d_nhwc_mma.cuh"
#include "conv2d_nhwc_wgmma.cuh"
#include "weights.h"

namespace cm4j {

namespace {

// Timing: the best of kRounds means over kLaunches back-to-back launches (the check's run
// before them is the warm-up).
constexpr int kRounds = 3;
constexpr int kLaunches = 5;

std::mutex g_timing_mu;  // held while a shape is measured and recorded (ConvTuner::decide)
std::mutex g_hooks_mu;
std::atomic<bool> g_hooked{false};  // any hook set: the conv path takes no lock otherwise
std::function<double(const ConvShape&, int, const ConvChoice&)> g_cost;
std::function<void(const ConvChoice&, std::vector<float>*)> g_alter;
std::function<void(const ConvShape&, int, const ConvChoice&)> g_chosen;

// The library has no logger: a problem with the cache file goes to stderr, once per text.
void warn_once(const std::string& text) {
  static std::mutex mu;
  static std::set<std::string> said;
  std::lock_guard<std::mutex> lock(mu);
  if (said.insert(text).second) std::fprintf(stderr, "cm4j: %s\n", text.c_str());
}

int norm_of(const kernels::Conv2dNhwcParams& p) { return p.norm ? (p.norm_silu ? 2 : 1) : 0; }

// An order as a choice for p, with the tile the rule would take (the tile is chosen apart).
ConvChoice choice_of(const ConvOrder& order, const kernels::Conv2dNhwcParams& p) {
  ConvChoice c{order.kernel, ConvTile{0, 0}, order.splits};
  if (c.kernel == ConvChoice::kMma) c.tile = {kernels::conv2d_nhwc_mma_tile_m(p), 64};
  if (c.kernel == ConvChoice::kWmma) c.tile = {64, 64};
  if (c.kernel == ConvChoice::kWgmma) c.tile = {128, 128};
  return c;
}

kernels::Conv2dNhwcMmaConfig mma_config(const ConvChoice& c) {
  kernels::Conv2dNhwcMmaConfig m;
  m.tile_m = c.tile.m;
  m.tile_n = c.tile.n;
  m.splits = c.splits;
  return m;
}

// Device memory for one measurement, freed on every path.
struct Scratch {
  void* p = nullptr;
  ~Scratch() {
    if (p) cudaFree(p);
  }
  bool alloc(size_t bytes) { return bytes == 0 || cudaMalloc(&p, bytes) == cudaSuccess; }
};

// The conv's output (NHWC, 2-byte elements) in fp32 on the host.
bool download(const kernels::Conv2dNhwcParams& p, const void* src, size_t count,
              cudaStream_t stream, std::vector<float>* out) {
  std::vector<uint16_t> bits(count);
  if (cudaMemcpyAsync(bits.data(), src, count * 2, cudaMemcpyDeviceToHost, stream) != cudaSuccess ||
      cudaStreamSynchronize(stream) != cudaSuccess)
    return false;
  out->resize(count);
  for (size_t i = 0; i < count; ++i)
    (*out)[i] = p.type == kernels::HalfType::kBF16 ? bfloat16_to_float(bits[i]) : half_to_float(bits[i]);
  return true;
}

// Within the dtype's bound of the reference (the op tests' relative L2: 2e-3 fp16, 1.5e-2
// bf16), and finite wherever the reference is.
bool agrees(const std::vector<float>& got, const std::vector<float>& ref, kernels::HalfType type) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::isfinite(ref[i]) && !std::isfinite(got[i])) return false;
    const double d = static_cast<double>(got[i]) - ref[i];
    diff += d * d;
    norm += static_cast<double>(ref[i]) * ref[i];
  }
  const double bound = type == kernels::HalfType::kBF16 ? 1.5e-2 : 2e-3;
  return std::sqrt(diff) <= bound * std::sqrt(norm);
}

}  // namespace

// Milliseconds per launch of `c`, or a negative value when a launch or event failed.
double ConvTuner::time_ms(const kernels::Conv2dNhwcParams& p, const ConvChoice& c,
                          float* workspace, cudaStream_t stream) {
  cudaEvent_t start = nullptr, stop = nullptr;
  double best = std::numeric_limits<double>::infinity();
  bool ok = cudaEventCreate(&start) == cudaSuccess && cudaEventCreate(&stop) == cudaSuccess;
  for (int r = 0; ok && r < kRounds; ++r) {
    ok = cudaEventRecord(start, stream) == cudaSuccess;
    for (int i = 0; ok && i < kLaunches; ++i) ok = run(p, c, workspace, stream) == cudaSuccess;
    float ms = 0;
    ok = ok && cudaEventRecord(stop, stream) == cudaSuccess &&
         cudaEventSynchronize(stop) == cudaSuccess &&
         cudaEventElapsedTime(&ms, start, stop) == cudaSuccess;
    if (ok) best = std::min(best, static_cast<double>(ms) / kLaunches);
  }
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  if (!ok) cudaGetLastError();
  return ok ? best : -1;
}

bool ConvTuner::allowed(const kernels::Conv2dNhwcParams& p, const ConvChoice& c, bool capturing) {
  switch (c.kernel) {
    case ConvChoice::kWmma: return !p.norm;  // a fused norm: the mma kernel only
    case ConvChoice::kMma:
      return kernels::conv2d_nhwc_mma_supports(p) &&
             kernels::conv2d_nhwc_mma_config_ok(p, mma_config(c));
    case ConvChoice::kWgmma:
      return wgmma_problem_.empty() && kernels::conv2d_nhwc_mma_supports(p) &&
             kernels::conv2d_nhwc_wgmma_config_ok(p, c.splits);
    case ConvChoice::kCublas:
      if (!cublas_conv_supports(p)) return false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!cublas_tried_ && !capturing) {
          cublas_tried_ = true;
          cublas_.reset(CublasGemm::open(&cublas_problem_));
        }
        return cublas_ != nullptr;
      }
  }
  return false;
}

// The rule first (the reference, and the winner of a tie), then every other configuration.
std::vector<ConvChoice> ConvTuner::candidates(const kernels::Conv2dNhwcParams& p) {
  std::vector<ConvChoice> out{conv_rule(p)};
  auto add = [&](const ConvChoice& c) {
    if (allowed(p, c, false) && !(c == out[0])) out.push_back(c);
  };
  add(ConvChoice{ConvChoice::kWmma, {64, 64}, 1});
  for (const ConvTile tile : {ConvTile{128, 64}, ConvTile{64, 64}, ConvTile{128, 128}})
    for (int splits = 1; splits <= 8; ++splits)
      add(ConvChoice{ConvChoice::kMma, tile, splits});
  add(ConvChoice{ConvChoice::kCublas, {0, 0}, 1});
  for (int splits = 1; splits <= 8; ++splits)
    add(ConvChoice{ConvChoice::kWgmma, {128, 128}, splits});
  return out;
}

namespace conv_tuner_test {
void set_hooks(std::function<double(const ConvShape&, int, const ConvChoice&)> cost,
               std::function<void(const ConvChoice&, std::vector<float>*)> alter,
               std::function<void(const ConvShape&, int, const ConvChoice&)> chosen) {
  std::lock_guard<std::mutex> lock(g_hooks_mu);
  g_cost = std::move(cost);
  g_alter = std::move(alter);
  g_chosen = std::move(chosen);
  g_hooked = g_cost || g_alter || g_chosen;
}
}  // namespace conv_tuner_test

TuningIdentity tuning_identity(int device, bool wgmma) {
  TuningIdentity id;
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, device) == cudaSuccess) {
    id.gpu = prop.name;
    id.sms = prop.multiProcessorCount;
  }
  if (cudaDriverGetVersion(&id.driver) != cudaSuccess) id.driver = 0;
  cudaGetLastError();
  id.version = std::string(cm4j_version()) + (wgmma ? "+wgmma" : "");
  return id;
}

ConvShape conv_shape_of(const kernels::Conv2dNhwcParams& p) {
  ConvShape s;
  s.dtype = p.type == kernels::HalfType::kBF16 ? "bf16" : "fp16";
  s.c_in1 = p.c_in1;
  s.c_in2 = p.c_in2;
  s.c_out = p.c_out;
  s.kernel = p.kernel;
  s.stride = p.stride;
  s.pad = p.pad;
  s.upsample = p.upsample ? 1 : 0;
  s.h_in = p.h_in;
  s.w_in = p.w_in;
  s.norm = norm_of(p);
  return s;
}

ConvChoice conv_rule(const kernels::Conv2dNhwcParams& p) {
  if (!kernels::conv2d_nhwc_mma_supports(p)) return ConvChoice{ConvChoice::kWmma, {64, 64}, 1};
  const kernels::Conv2dNhwcMmaConfig rule = kernels::conv2d_nhwc_mma_rule(p);
  return ConvChoice{ConvChoice::kMma, {rule.tile_m, rule.tile_n}, rule.splits};
}

size_t conv_choice_workspace_floats(const kernels::Conv2dNhwcParams& p, const ConvChoice& c) {
  switch (c.kernel) {
    case ConvChoice::kMma: return kernels::conv2d_nhwc_mma_workspace_floats(p, c.splits);
    case ConvChoice::kWmma: return 0;
    case ConvChoice::kCublas: return static_cast<size_t>(p.batch) * p.h_out * p.w_out * p.c_out;
    case ConvChoice::kWgmma: return kernels::conv2d_nhwc_wgmma_workspace_floats(p, c.splits);
  }
  return 0;
}

cudaError_t ConvTuner::run(const kernels::Conv2dNhwcParams& p, const ConvChoice& c,
                           float* workspace, cudaStream_t stream) {
  switch (c.kernel) {
    case ConvChoice::kMma: return kernels::conv2d_nhwc_mma_forward(p, mma_config(c), workspace, stream);
    case ConvChoice::kWmma: return kernels::conv2d_nhwc_forward(p, stream);
    case ConvChoice::kCublas:
      return cublas_ ? cublas_->conv(p, workspace, stream) : cudaErrorInvalidValue;
    case ConvChoice::kWgmma:
      return kernels::conv2d_nhwc_wgmma_forward(p, c.splits, workspace, stream);
  }
  return cudaErrorInvalidValue;
}

ConvTuner::ConvTuner(TuningMode mode, int device, bool wgmma) : mode_(mode) {
  if (mode_ == TuningMode::kOff) {
    wgmma_problem_ = "CM4J_TUNING is off";
    return;
  }
  cudaDeviceProp prop;
  if (!wgmma) {
    wgmma_problem_ = "CM4J_CUDA_WGMMA is not on";
  } else if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    wgmma_problem_ = "the card's compute capability is unknown";
  } else if (!kernels::conv2d_nhwc_wgmma_device_ok(prop.major, prop.minor)) {
    wgmma_problem_ = "it runs on compute capability 9.0 only, and this card has " +
                     std::to_string(prop.major) + "." + std::to_string(prop.minor);
  }
  const TuningIdentity identity = tuning_identity(device, wgmma_problem_.empty());
  const std::string dir = tuning_cache_dir();
  cache_ = TuningCache::open(dir.empty() ? "" : dir + "/" + tuning_file_name(identity), identity);
  if (!cache_->problem().empty())
    warn_once(cache_->problem() + (mode_ == TuningMode::kFull ? "; measuring its shapes anew"
                                                             : "; using the fixed rule"));
}

ConvChoice ConvTuner::choose(const kernels::Conv2dNhwcParams& p, cudaStream_t stream,
                             bool capturing) {
  ConvChoice c;
  if (mode_ == TuningMode::kOff) {
    c = conv_rule(p);
  } else {
    const MemoKey key{static_cast<int>(p.type), p.batch, p.c_in1, p.c_in2, p.c_out, p.kernel,
                      p.stride, p.pad, p.upsample ? 1 : 0, p.h_in, p.w_in, norm_of(p),
                      kernels::conv2d_nhwc_mma_supports(p) ? 1 : 0};
    bool known = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = memo_.find(key);
      if ((known = it != memo_.end())) c = it->second;
    }
    if (!known) {
      c = decide(p, stream, capturing);
      // Inside a capture the rule may stand in for a measurement still to come.
      if (!capturing) {
        std::lock_guard<std::mutex> lock(mu_);
        memo_.emplace(key, c);
      }
    }
  }
  if (g_hooked) {
    std::lock_guard<std::mutex> lock(g_hooks_mu);
    if (g_chosen) g_chosen(conv_shape_of(p), p.batch, c);
  }
  return c;
}

ConvChoice ConvTuner::decide(const kernels::Conv2dNhwcParams& p, cudaStream_t stream,
                             bool capturing) {
  const ConvChoice rule = conv_rule(p);
  if (rule.kernel == ConvChoice::kWmma) return rule;  // the mma kernel does not apply: no choice
  const bool measuring = mode_ == TuningMode::kFull && !capturing;
  const ConvShape shape = conv_shape_of(p);
  // One measurement at a time in the process (two engines on one card would time each
  // other); the second to meet a shape takes the first one's result after the lock.
  ConvOrder order;
  bool kept = false;  // the order is this process's alone (TuningCache::keep), not the file's
  if (!cache_->find_order(shape, &order, &kept)) {
    if (!measuring) return rule;
    std::lock_guard<std::mutex> timing(g_timing_mu);
    if (!cache_->find_order(shape, &order, &kept)) {
      measure_order(p, stream, true);
      cache_->find_order(shape, &order, &kept);  // kept where nothing could be measured
    }
  }
  ConvChoice c = choice_of(order, p);
  if (!allowed(p, c, capturing)) {
    std::string why;
    if (c.kernel == ConvChoice::kCublas && !capturing) {
      std::lock_guard<std::mutex> lock(mu_);  // allowed() writes it under mu_
      why = cublas_problem_;
    }
    if (c.kernel == ConvChoice::kWgmma) why = wgmma_problem_;
    if (!why.empty())
      warn_once(std::string("the tuning cache chooses ") +
                (c.kernel == ConvChoice::kCublas ? "cuBLAS" : "the wgmma kernel") +
                " for some convs, but " + why +
                (measuring ? "; measuring them anew for this process (the file keeps its choice)"
                           : "; using the fixed rule for them"));
    if (!measuring) return rule;
    // The file's choice is right for a machine where it runs (the file's identity does not
    // say whether cuBLAS loads), so the new order is held in memory only; another thread may
    // have measured it meanwhile, and then its order stands (one order per image shape).
    std::lock_guard<std::mutex> timing(g_timing_mu);
    if (!cache_->find_order(shape, &order, &kept) || !allowed(p, choice_of(order, p), false)) {
      measure_order(p, stream, false);
      cache_->find_order(shape, &order, &kept);
    }
    c = choice_of(order, p);
  }
  const bool persist = !kept;  // a tile for an order the file does not hold stays in memory
  if (c.kernel != ConvChoice::kMma) return c;
  // The tile: the rule's where the cache has none for this batch (the same sums).
  ConvTile tile;
  if (cache_->find_tile({shape, p.batch}, &tile)) {
    c.tile = tile;
    return c;
  }
  if (!measuring) return c;
  std::lock_guard<std::mutex> timing(g_timing_mu);
  c.tile = cache_->find_tile({shape, p.batch}, &tile) ? tile : measure_tile(p, c, stream, persist);
  return c;
}

// Puts the order of p's image shape in the cache, measured on image 0 alone, with its tile
// at batch 1; the rule's order (in memory only) where nothing could be measured.
void ConvTuner::measure_order(const kernels::Conv2dNhwcParams& p, cudaStream_t stream,
                              bool persist) {
  kernels::Conv2dNhwcParams one = p;  // the first image of every tensor, and its dst
  one.batch = 1;
  const ConvShape shape = conv_shape_of(p);
  TuningEntries add;
  ConvChoice best;
  const bool measured = measure(one, conv_rule(one), candidates(one), stream, &best);
  if (!measured) best = conv_rule(one);
  add.orders[shape] = ConvOrder{best.kernel, best.splits};
  if (measured && best.kernel == ConvChoice::kMma) add.tiles[{shape, 1}] = best.tile;
  store(add, measured && persist);
}

// The fastest tile for order `c` at p's batch (the rule's first: it wins a tie).
ConvTile ConvTuner::measure_tile(const kernels::Conv2dNhwcParams& p, const ConvChoice& c,
                                 cudaStream_t stream, bool persist) {
  std::vector<ConvChoice> tiles;
  for (const ConvTile t : {ConvTile{kernels::conv2d_nhwc_mma_tile_m(p), 64}, ConvTile{128, 64},
                           ConvTile{64, 64}, ConvTile{128, 128}}) {
    ConvChoice tiled = c;
    tiled.tile = t;
    if (std::find(tiles.begin(), tiles.end(), tiled) == tiles.end()) tiles.push_back(tiled);
  }
  ConvChoice best;
  TuningEntries add;
  const bool measured = measure(p, conv_rule(p), tiles, stream, &best);
  add.tiles[{conv_shape_of(p), p.batch}] = (measured ? best : tiles[0]).tile;
  store(add, measured && persist);
  return add.tiles.begin()->second;
}

// Writes measured choices to the cache file (persist) or holds them in memory only.
void ConvTuner::store(const TuningEntries& add, bool persist) {
  std::string error;
  if (!persist) cache_->keep(add);
  else if (!cache_->record(add, &error)) warn_once(error + "; the measured choice is used, not kept");
}

// Runs `reference` into a scratch output, then each candidate, and sets *out to the fastest
// that agrees with it (the first of equals); false when none could be run.
bool ConvTuner::measure(const kernels::Conv2dNhwcParams& p, const ConvChoice& reference,
                        const std::vector<ConvChoice>& cands, cudaStream_t stream,
                        ConvChoice* out) {
  std::function<double(const ConvShape&, int, const ConvChoice&)> cost;
  std::function<void(const ConvChoice&, std::vector<float>*)> alter;
  {
    std::lock_guard<std::mutex> hooks(g_hooks_mu);
    cost = g_cost;
    alter = g_alter;
  }
  const size_t count = static_cast<size_t>(p.batch) * p.h_out * p.w_out * p.c_out;
  size_t workspace_floats = conv_choice_workspace_floats(p, reference);
  for (const ConvChoice& c : cands)
    workspace_floats = std::max(workspace_floats, conv_choice_workspace_floats(p, c));
  Scratch reference_out, candidate_out, workspace;
  if (!reference_out.alloc(count * 2) || !candidate_out.alloc(count * 2) ||
      !workspace.alloc(workspace_floats * sizeof(float))) {
    cudaGetLastError();
    return false;
  }
  // Scratch outputs: the reference must outlive the candidates' runs, and p.dst is written
  // once, by the chosen kernel, after the measurement.
  kernels::Conv2dNhwcParams q = p;
  q.dst = reference_out.p;
  float* ws = static_cast<float*>(workspace.p);
  std::vector<float> want, got;
  if (run(q, reference, ws, stream) != cudaSuccess ||
      !download(q, reference_out.p, count, stream, &want)) {
    cudaGetLastError();
    return false;
  }
  q.dst = candidate_out.p;
  const ConvShape shape = conv_shape_of(p);
  double best = std::numeric_limits<double>::infinity();
  for (const ConvChoice& c : cands) {
    const double hooked = cost ? cost(shape, p.batch, c) : 0;
    if (hooked < 0) continue;
    if (run(q, c, ws, stream) != cudaSuccess || !download(q, q.dst, count, stream, &got)) {
      cudaGetLastError();
      continue;
    }
    if (alter) alter(c, &got);
    if (!agrees(got, want, p.type)) continue;
    const double ms = cost ? hooked : time_ms(q, c, ws, stream);
    if (ms >= 0 && ms < best) {
      best = ms;
      *out = c;
    }
  }
  return best < std::numeric_limits<double>::infinity();
}

}  // namespace cm4j

// The tuning cache: which conv kernel runs each op shape, measured once on a card
// (cuda/conv_tuner.h) and kept in a text file per card and library version, so later
// processes on that card make the same choice without timing. Plain C++ (no CUDA), built
// in every configuration, so its parser and writer are tested without a GPU.
//
// A choice has two parts. Its order (the kernel family and the split-K count) fixes the
// order in which each output's sum is added up, so it is decided per image shape, batch
// excluded: an image gets the same bits batched or alone. Its tile (the mma kernel's block
// tile) only spreads the same sums over other blocks, so it is decided per batch.
//
// The file (one per identity, under tuning_cache_dir()):
//   cm4j-tuning 3
//   gpu NVIDIA H100 80GB HBM3
//   sms 132
//   driver 12040
//   cm4j 0.1.0
//   order fp16 192 0 192 3 1 1 0 64 64 0 mma 2
//   tile fp16 192 0 192 3 1 1 0 64 64 0 8 128x64
//   end 2
// The image shape: dtype, c_in1, c_in2, c_out, kernel, stride, pad, upsample, h_in, w_in,
// norm (a group norm fused into the conv's gather: 0 none, 1 norm, 2 norm + SiLU). An order
// line ends with "mma SPLITS" (conv2d_nhwc_mma.cu, 1..8 splits), "wgmma SPLITS"
// (conv2d_nhwc_wgmma.cu, 1..8 splits, its one tile), "wmma 1" (conv2d_nhwc.cu) or "cublas 1"
// (cuBLAS's GEMM, 1x1 convs; cuda/cublas_gemm.h); a tile line with the batch
// and the mma kernel's tile (128x64, 64x64 or 128x128), used where the shape's order is mma.
// Files of formats 1 and 2 (2 named a tile by its pixels alone) are ignored.
// Every file is hostile input: anything else is refused as a whole, naming the file and line.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <utility>

namespace cm4j {

// CM4J_TUNING: off = the fixed rule everywhere; cached = the cache's choices, the rule for
// shapes it lacks; full = also measure the shapes it lacks and write them.
enum class TuningMode { kOff, kCached, kFull };

// Parses a CM4J_TUNING value (null or empty: cached); false for anything else.
bool parse_tuning_mode(const char* text, TuningMode* out);

// The card and library a cache file holds choices for; a file of another identity is ignored.
struct TuningIdentity {
  std::string gpu;     // cudaDeviceProp::name
  int sms = 0;         // multiprocessors
  int driver = 0;      // cudaDriverGetVersion
  std::string version; // cm4j_version()
};

// One image's conv shape, as the NHWC mode's conv sees it (the batch is not part of it).
struct ConvShape {
  std::string dtype;  // "fp16" or "bf16"
  int c_in1 = 0, c_in2 = 0, c_out = 0, kernel = 3, stride = 1, pad = 1;
  int upsample = 0, h_in = 0, w_in = 0;
  int norm = 0;  // a group norm fused into the gather: 0 none, 1 norm, 2 norm + SiLU
  auto tie() const {
    return std::tie(dtype, c_in1, c_in2, c_out, kernel, stride, pad, upsample, h_in, w_in, norm);
  }
  bool operator<(const ConvShape& o) const { return tie() < o.tie(); }
  bool operator==(const ConvShape& o) const { return tie() == o.tie(); }
};

// The mma kernel's block tile, output pixels x output channels: 128x64, 64x64 or 128x128.
struct ConvTile {
  int m = 64, n = 64;
  bool operator==(const ConvTile& o) const { return m == o.m && n == o.n; }
  std::string text() const;  // "128x64", as in the file
  bool parse(const std::string& text);  // one of the three
};

// Which kernel runs a conv.
struct ConvChoice {
  enum Kernel { kMma, kWmma, kCublas, kWgmma } kernel = kMma;
  // mma: 128x64, 64x64 or 128x128; wgmma: 128x128; wmma: 64x64; cublas: 0x0 (its own)
  ConvTile tile;
  int splits = 1;  // mma, wgmma: 1..8; wmma, cublas: 1
  bool operator==(const ConvChoice& o) const {
    return kernel == o.kernel && tile == o.tile && splits == o.splits;
  }
  std::string text() const;  // "mma 128x64 1", "wmma 64x64 1", "cublas 1"
};

// The part of a choice that fixes the order of each output's sum: per image shape.
struct ConvOrder {
  ConvChoice::Kernel kernel = ConvChoice::kMma;
  int splits = 1;  // mma, wgmma: 1..8; wmma, cublas: 1
  bool operator==(const ConvOrder& o) const { return kernel == o.kernel && splits == o.splits; }
  std::string text() const;  // "mma 2", as in the file
  bool parse(const std::string& kernel_name, const std::string& splits);
};

// An image shape at one batch size.
using ConvAtBatch = std::pair<ConvShape, int>;

struct TuningEntries {
  std::map<ConvShape, ConvOrder> orders;  // per image shape
  std::map<ConvAtBatch, ConvTile> tiles;  // the mma kernel's tile per image shape and batch
  size_t size() const { return orders.size() + tiles.size(); }
  bool operator==(const TuningEntries& o) const { return orders == o.orders && tiles == o.tiles; }
  // Adds o's entries; where both hold a shape, o's wins when `replace`, else ours stays.
  void add(const TuningEntries& o, bool replace);
};

// The folder of the tuning files: $CM4J_TUNING_CACHE, else $XDG_CACHE_HOME/cm4j/tuning,
// else $HOME/.cache/cm4j/tuning (the XDG convention the Hugging Face cache follows); empty
// when none of them is set.
std::string tuning_cache_dir();

// identity's file name in that folder: the GPU name's letters and digits, SMs, driver and
// version, e.g. "NVIDIA-H100-80GB-HBM3_132sm_driver12040_cm4j-0.1.0.tune".
std::string tuning_file_name(const TuningIdentity& identity);

enum class TuningLoad { kLoaded, kMissing, kIgnored, kInvalid };

// Reads `path` into *entries. kMissing: no file; kIgnored: a well-formed header of another
// format version or identity (*error says which); kInvalid: anything malformed (*error names
// the file, the line and what is wrong). *entries is filled only on kLoaded.
TuningLoad load_tuning_file(const std::string& path, const TuningIdentity& identity,
                            TuningEntries* entries, std::string* error);

// Writes the file whole: a temporary file in the same folder (created if missing), then a
// rename over `path`, so a reader sees the old file or the new one, never part of one.
bool write_tuning_file(const std::string& path, const TuningIdentity& identity,
                       const TuningEntries& entries, std::string* error);

// One identity's choices, shared by every backend of the process on that identity's file.
// Thread-safe. A file that fails to load is reported once (problem()) and treated as empty.
class TuningCache {
 public:
  // The process's cache of `path` (empty: in memory only) for `identity`, loaded on first use.
  static std::shared_ptr<TuningCache> open(const std::string& path, const TuningIdentity& identity);

  TuningCache(std::string path, TuningIdentity identity);
  // *kept (when given): whether the order is held in memory only (keep), not the file's.
  bool find_order(const ConvShape& shape, ConvOrder* out, bool* kept = nullptr) const;
  bool find_tile(const ConvAtBatch& shape, ConvTile* tile) const;
  // Adds measured entries and rewrites the file, merged with what another process may have
  // written meanwhile (this process's entries win; processes take turns through a flock on
  // ".<file>.lock" beside it); false with *error when it could not be
  // written (the entries are kept in memory all the same). The file is written outside the
  // lock that find_order and find_tile take, so lookups never wait for the disk.
  bool record(const TuningEntries& add, std::string* error);
  // Adds entries in memory only: a shape that could not be measured, or whose cached order
  // cannot run in this process (measured again for it alone). Its orders are then `kept`
  // until recorded.
  void keep(const TuningEntries& add);
  const std::string& problem() const { return problem_; }  // why the file was not used

 private:
  const std::string path_;
  const TuningIdentity identity_;
  mutable std::mutex mu_;    // entries_, recorded_ and kept_
  std::mutex file_mu_;       // one rewrite of the file at a time, outside mu_
  TuningEntries entries_;    // the file's, then ours
  TuningEntries recorded_;   // ours
  std::set<ConvShape> kept_;  // shapes whose order in entries_ is in memory only
  std::string problem_;
};

}  // namespace cm4j

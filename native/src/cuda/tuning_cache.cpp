#include "cuda/tuning_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

namespace cm4j {

namespace {

// 1: choices per batch (order and tile together); 2: a tile's pixels alone (128 or 64).
constexpr int kFormat = 3;
// About 50 bytes a line: room for every shape of several models at hundreds of batch sizes
// (a serving process tunes a tile per batch size it meets); anything larger is not ours.
constexpr size_t kMaxFileBytes = 16 << 20;

// A decimal integer in [lo, hi] with nothing else (no sign, space or leading '+').
bool parse_int(const std::string& s, int lo, int hi, int* out) {
  if (s.empty() || s.size() > 9) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < lo || v > hi) return false;
  *out = v;
  return true;
}

std::vector<std::string> split_spaces(const std::string& line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= line.size()) {
    size_t j = line.find(' ', i);
    if (j == std::string::npos) j = line.size();
    out.push_back(line.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

const char* const kKernelNames[] = {"mma", "wmma", "cublas", "wgmma"};  // by ConvChoice::Kernel
constexpr int kKernels = 4;

// "order SHAPE KERNEL_NAME SPLITS" or "tile SHAPE BATCH TILE" into *entries: false with
// *why on anything else, or a shape listed twice.
bool parse_entry(const std::string& line, TuningEntries* entries, std::string* why) {
  const std::vector<std::string> f = split_spaces(line);
  const bool order = f[0] == "order";
  if (f.size() != 14 || (!order && f[0] != "tile")) {
    *why = "expected \"order DTYPE C_IN1 C_IN2 C_OUT KERNEL STRIDE PAD UPSAMPLE H W NORM "
           "KERNEL_NAME SPLITS\" or \"tile DTYPE C_IN1 C_IN2 C_OUT KERNEL STRIDE PAD UPSAMPLE "
           "H W NORM BATCH TILE\"";
    return false;
  }
  if (f[1] != "fp16" && f[1] != "bf16") {
    *why = "dtype \"" + f[1].substr(0, 16) + "\" is not fp16 or bf16";
    return false;
  }
  ConvShape shape;
  shape.dtype = f[1];
  struct Field { const char* name; int lo, hi; int* out; };
  const Field fields[] = {
      {"c_in1", 1, 65536, &shape.c_in1},   {"c_in2", 0, 65536, &shape.c_in2},
      {"c_out", 1, 65536, &shape.c_out},   {"kernel", 1, 15, &shape.kernel},
      {"stride", 1, 8, &shape.stride},     {"pad", 0, 15, &shape.pad},
      {"upsample", 0, 1, &shape.upsample}, {"h", 1, 65536, &shape.h_in},
      {"w", 1, 65536, &shape.w_in},        {"norm", 0, 2, &shape.norm},
  };
  for (size_t i = 0; i < 10; ++i) {
    if (!parse_int(f[2 + i], fields[i].lo, fields[i].hi, fields[i].out)) {
      *why = std::string(fields[i].name) + " \"" + f[2 + i].substr(0, 16) + "\" is not an integer in " +
             std::to_string(fields[i].lo) + ".." + std::to_string(fields[i].hi);
      return false;
    }
  }
  if (order) {
    ConvOrder o;
    if (!o.parse(f[12], f[13])) {
      *why = "\"" + f[12].substr(0, 16) + " " + f[13].substr(0, 16) +
             "\" is not a kernel order (mma 1..8, wgmma 1..8, wmma 1 or cublas 1)";
      return false;
    }
    if (!entries->orders.emplace(shape, o).second) {
      *why = "a shape's order listed twice";
      return false;
    }
    return true;
  }
  int batch = 0;
  ConvTile tile;
  if (!parse_int(f[12], 1, 1 << 20, &batch)) {
    *why = "batch \"" + f[12].substr(0, 16) + "\" is not an integer in 1.." + std::to_string(1 << 20);
    return false;
  }
  if (!tile.parse(f[13])) {
    *why = "tile \"" + f[13].substr(0, 16) + "\" is not 128x64, 64x64 or 128x128";
    return false;
  }
  if (!entries->tiles.emplace(ConvAtBatch{shape, batch}, tile).second) {
    *why = "a shape's tile at one batch listed twice";
    return false;
  }
  return true;
}

std::string shape_text(const ConvShape& s) {
  return s.dtype + ' ' + std::to_string(s.c_in1) + ' ' + std::to_string(s.c_in2) + ' ' +
         std::to_string(s.c_out) + ' ' + std::to_string(s.kernel) + ' ' + std::to_string(s.stride) +
         ' ' + std::to_string(s.pad) + ' ' + std::to_string(s.upsample) + ' ' +
         std::to_string(s.h_in) + ' ' + std::to_string(s.w_in) + ' ' + std::to_string(s.norm);
}

std::string header_text(const TuningIdentity& id) {
  return "cm4j-tuning " + std::to_string(kFormat) + "\ngpu " + id.gpu + "\nsms " +
         std::to_string(id.sms) + "\ndriver " + std::to_string(id.driver) + "\ncm4j " +
         id.version + "\n";
}

bool make_dirs(const std::string& dir, std::string* error) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/') continue;
    const std::string part = dir.substr(0, i);
    if (mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
      *error = "cannot create folder " + part + ": " + std::strerror(errno);
      return false;
    }
  }
  return true;
}

bool write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string identity_text(const TuningIdentity& id) {
  return id.gpu + "\n" + std::to_string(id.sms) + "\n" + std::to_string(id.driver) + "\n" +
         id.version;
}

}  // namespace

bool parse_tuning_mode(const char* text, TuningMode* out) {
  if (!text || !*text || std::strcmp(text, "cached") == 0) *out = TuningMode::kCached;
  else if (std::strcmp(text, "off") == 0) *out = TuningMode::kOff;
  else if (std::strcmp(text, "full") == 0) *out = TuningMode::kFull;
  else return false;
  return true;
}

std::string ConvTile::text() const { return std::to_string(m) + "x" + std::to_string(n); }

bool ConvTile::parse(const std::string& text) {
  for (const ConvTile t : {ConvTile{128, 64}, ConvTile{64, 64}, ConvTile{128, 128}}) {
    if (text == t.text()) {
      *this = t;
      return true;
    }
  }
  return false;
}

std::string ConvChoice::text() const {
  const std::string name = kKernelNames[kernel];
  if (kernel == kCublas) return name + " " + std::to_string(splits);
  return name + " " + tile.text() + " " + std::to_string(splits);
}

std::string ConvOrder::text() const {
  return std::string(kKernelNames[kernel]) + " " + std::to_string(splits);
}

bool ConvOrder::parse(const std::string& kernel_name, const std::string& split_count) {
  int k = 0;
  while (k < kKernels && kernel_name != kKernelNames[k]) ++k;
  if (k == kKernels || !parse_int(split_count, 1, 8, &splits)) return false;
  kernel = static_cast<ConvChoice::Kernel>(k);
  return kernel == ConvChoice::kMma || kernel == ConvChoice::kWgmma || splits == 1;
}

void TuningEntries::add(const TuningEntries& o, bool replace) {
  for (const auto& [s, c] : o.orders)
    if (replace) orders[s] = c;
    else orders.emplace(s, c);
  for (const auto& [s, t] : o.tiles)
    if (replace) tiles[s] = t;
    else tiles.emplace(s, t);
}

std::string tuning_cache_dir() {
  const char* own = std::getenv("CM4J_TUNING_CACHE");
  if (own && *own) return own;
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/cm4j/tuning";
  const char* home = std::getenv("HOME");
  if (home && *home) return std::string(home) + "/.cache/cm4j/tuning";
  return "";
}

std::string tuning_file_name(const TuningIdentity& id) {
  std::string gpu;
  for (char c : id.gpu) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (keep) gpu += c;
    else if (!gpu.empty() && gpu.back() != '-') gpu += '-';
  }
  while (!gpu.empty() && gpu.back() == '-') gpu.pop_back();
  std::string version;
  for (char c : id.version) version += (c == '/' || c == ' ' || c == '\n') ? '-' : c;
  return (gpu.empty() ? "gpu" : gpu) + "_" + std::to_string(id.sms) + "sm_driver" +
         std::to_string(id.driver) + "_cm4j-" + version + ".tune";
}

TuningLoad load_tuning_file(const std::string& path, const TuningIdentity& identity,
                            TuningEntries* entries, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return TuningLoad::kMissing;
  std::string text;
  {
    std::vector<char> buf(kMaxFileBytes + 1);
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    text.assign(buf.data(), static_cast<size_t>(in.gcount()));
  }
  const std::string where = "tuning cache " + path + ": ";
  if (text.size() > kMaxFileBytes) {
    *error = where + "larger than " + std::to_string(kMaxFileBytes) + " bytes";
    return TuningLoad::kInvalid;
  }
  std::vector<std::string> lines;
  for (size_t i = 0; i < text.size();) {
    const size_t j = text.find('\n', i);
    if (j == std::string::npos) {
      *error = where + "line " + std::to_string(lines.size() + 1) +
               ": no line end (a truncated file)";
      return TuningLoad::kInvalid;
    }
    lines.push_back(text.substr(i, j - i));
    i = j + 1;
  }
  auto bad = [&](size_t line, const std::string& why) {
    *error = where + "line " + std::to_string(line + 1) + ": " + why;
    return TuningLoad::kInvalid;
  };
  int format = 0;
  if (lines.empty() || lines[0].rfind("cm4j-tuning ", 0) != 0 ||
      !parse_int(lines[0].substr(12), 1, 1 << 20, &format))
    return bad(0, "not a cm4j tuning file (expected \"cm4j-tuning " + std::to_string(kFormat) + "\")");
  if (format != kFormat) {
    *error = where + "format " + std::to_string(format) + ", this cm4j reads " +
             std::to_string(kFormat) + "; ignored";
    return TuningLoad::kIgnored;
  }
  const char* keys[] = {"gpu ", "sms ", "driver ", "cm4j "};
  std::string values[4];
  for (size_t i = 0; i < 4; ++i) {
    if (lines.size() <= i + 1 || lines[i + 1].rfind(keys[i], 0) != 0)
      return bad(i + 1, std::string("expected \"") + keys[i] + "...\"");
    values[i] = lines[i + 1].substr(std::strlen(keys[i]));
  }
  int sms = 0, driver = 0;
  if (!parse_int(values[1], 1, 1 << 20, &sms)) return bad(2, "sms is not a positive integer");
  if (!parse_int(values[2], 0, 1 << 30, &driver)) return bad(3, "driver is not an integer");
  TuningEntries read;
  size_t i = 5;
  for (; i < lines.size() && lines[i].rfind("end ", 0) != 0; ++i) {
    std::string why;
    if (!parse_entry(lines[i], &read, &why)) return bad(i, why);
  }
  int count = -1;
  if (i >= lines.size()) return bad(i, "no \"end N\" line (a truncated file)");
  if (!parse_int(lines[i].substr(4), 0, 1 << 20, &count) || count != static_cast<int>(read.size()))
    return bad(i, "\"" + lines[i].substr(0, 32) + "\" does not count the " +
                      std::to_string(read.size()) + " entries above it");
  if (i + 1 != lines.size()) return bad(i + 1, "text after the end line");
  if (values[0] != identity.gpu || sms != identity.sms || driver != identity.driver ||
      values[3] != identity.version) {
    *error = where + "made for " + values[0] + " (" + values[1] + " SMs, driver " + values[2] +
             ", cm4j " + values[3] + "), not this " + identity.gpu + " (" +
             std::to_string(identity.sms) + " SMs, driver " + std::to_string(identity.driver) +
             ", cm4j " + identity.version + "); ignored";
    return TuningLoad::kIgnored;
  }
  *entries = std::move(read);
  return TuningLoad::kLoaded;
}

bool write_tuning_file(const std::string& path, const TuningIdentity& identity,
                       const TuningEntries& entries, std::string* error) {
  if ((identity.gpu + identity.version).find_first_of("\r\n") != std::string::npos) {
    *error = "tuning cache " + path + ": the device name or version holds a line break";
    return false;
  }
  std::ostringstream out;
  out << header_text(identity);
  for (const auto& [s, o] : entries.orders) out << "order " << shape_text(s) << ' ' << o.text() << '\n';
  for (const auto& [s, t] : entries.tiles)
    out << "tile " << shape_text(s.first) << ' ' << s.second << ' ' << t.text() << '\n';
  out << "end " << entries.size() << '\n';
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0 && !make_dirs(path.substr(0, slash), error)) {
    *error = "tuning cache " + path + ": " + *error;
    return false;
  }
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".tmp." + std::to_string(getpid()) + "." + std::to_string(counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = "tuning cache " + path + ": cannot create " + tmp + ": " + std::strerror(errno);
    return false;
  }
  const bool written = write_all(fd, out.str()) && fsync(fd) == 0;
  const int saved = errno;
  const bool closed = ::close(fd) == 0;
  if (!written || !closed || std::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = "tuning cache " + path + ": cannot write it: " + std::strerror(written ? errno : saved);
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

std::shared_ptr<TuningCache> TuningCache::open(const std::string& path,
                                               const TuningIdentity& identity) {
  // Weak references: a cache lives while a backend uses it, and the next backend after the
  // last one closed reads the file again.
  static std::mutex mu;
  static std::map<std::pair<std::string, std::string>, std::weak_ptr<TuningCache>> open_caches;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = open_caches[{path, identity_text(identity)}];
  std::shared_ptr<TuningCache> cache = slot.lock();
  if (!cache) {
    cache = std::make_shared<TuningCache>(path, identity);
    slot = cache;
  }
  return cache;
}

TuningCache::TuningCache(std::string path, TuningIdentity identity)
    : path_(std::move(path)), identity_(std::move(identity)) {
  if (path_.empty()) return;
  const TuningLoad r = load_tuning_file(path_, identity_, &entries_, &problem_);
  if (r != TuningLoad::kIgnored && r != TuningLoad::kInvalid) problem_.clear();
}

bool TuningCache::find_order(const ConvShape& shape, ConvOrder* out, bool* kept) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.orders.find(shape);
  if (it == entries_.orders.end()) return false;
  *out = it->second;
  if (kept) *kept = kept_.count(shape) > 0;
  return true;
}

bool TuningCache::find_tile(const ConvAtBatch& shape, ConvTile* tile) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.tiles.find(shape);
  if (it == entries_.tiles.end()) return false;
  *tile = it->second;
  return true;
}

void TuningCache::keep(const TuningEntries& add) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.add(add, true);
  for (const auto& entry : add.orders) kept_.insert(entry.first);
}

namespace {

// Between processes: an exclusive flock on the hidden sibling ".<file>.lock" while one of
// them reads, merges and renames the file, so two writers cannot drop each other's lines.
// Where it cannot be had (a read-only folder), the write goes ahead unlocked, and fails or
// races as it would have.
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    std::string ignored;
    if (slash != std::string::npos && slash > 0 && !make_dirs(path.substr(0, slash), &ignored))
      return;
    fd_ = ::open((dir + "." + path.substr(dir.size()) + ".lock").c_str(),
                 O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    while (fd_ >= 0 && flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace

bool TuningCache::record(const TuningEntries& add, std::string* error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.add(add, true);
    recorded_.add(add, true);
    for (const auto& entry : add.orders) kept_.erase(entry.first);
    if (path_.empty()) return true;
  }
  // One writer at a time, each with everything recorded before it took its turn, so the last
  // file written holds all of this process's entries.
  std::lock_guard<std::mutex> file_lock(file_mu_);
  const FileLock other_processes(path_);
  TuningEntries ours;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ours = recorded_;
  }
  TuningEntries merged;
  std::string ignored;
  if (load_tuning_file(path_, identity_, &merged, &ignored) != TuningLoad::kLoaded)
    merged = TuningEntries();
  merged.add(ours, true);
  const bool written = write_tuning_file(path_, identity_, merged, error);
  std::lock_guard<std::mutex> lock(mu_);
  entries_.add(merged, false);  // another process's entries, where we hold none
  return written;
}

}  // namespace cm4j

// The tuning cache's file (native/src/cuda/tuning_cache.h), on the CPU: CM4J_TUNING and the
// cache folder's environment; a written file reads back the same (orders per image shape,
// a fused norm and its SiLU as shapes of their own; tiles per batch); every strict prefix of
// a file (a truncated write), another identity or format version (format 1's per-batch
// choices and format 2's tiles among them), absurd values and random byte changes are refused or ignored with a
// message naming the file, never a crash; writes leave no temporary file behind; many
// threads and a second writer (another process) merge, lookups going on meanwhile.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cuda/tuning_cache.h"
#include "test_util.h"

using namespace cm4j;
using namespace cm4j_test;

namespace {

const TuningIdentity kId{"NVIDIA H100 80GB HBM3", 132, 12040, "0.1.0"};

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

ConvShape shape(const char* dtype, int c1, int c2, int co, int k, int up, int h, int norm = 0) {
  ConvShape s;
  s.dtype = dtype;
  s.c_in1 = c1;
  s.c_in2 = c2;
  s.c_out = co;
  s.kernel = k;
  s.pad = k / 2;
  s.upsample = up;
  s.h_in = s.w_in = h;
  s.norm = norm;
  return s;
}

TuningEntries sample_entries() {
  TuningEntries e;
  e.orders[shape("fp16", 192, 0, 192, 3, 0, 64)] = {ConvChoice::kMma, 1};
  e.orders[shape("fp16", 768, 768, 768, 3, 0, 8)] = {ConvChoice::kMma, 8};
  e.orders[shape("bf16", 768, 384, 384, 3, 1, 16)] = {ConvChoice::kWmma, 1};
  e.orders[shape("bf16", 192, 0, 384, 1, 0, 32)] = {ConvChoice::kMma, 3};
  e.orders[shape("fp16", 768, 768, 768, 1, 0, 8)] = {ConvChoice::kCublas, 1};
  e.orders[shape("bf16", 576, 0, 576, 3, 0, 16)] = {ConvChoice::kWgmma, 3};
  // The same conv with a fused norm, and with norm + SiLU: shapes of their own.
  e.orders[shape("fp16", 192, 0, 192, 3, 0, 64, 1)] = {ConvChoice::kMma, 2};
  e.orders[shape("fp16", 192, 0, 192, 3, 0, 64, 2)] = {ConvChoice::kMma, 4};
  e.tiles[{shape("fp16", 192, 0, 192, 3, 0, 64), 1}] = {64, 64};
  e.tiles[{shape("fp16", 192, 0, 192, 3, 0, 64), 256}] = {128, 128};
  e.tiles[{shape("bf16", 192, 0, 384, 1, 0, 32), 8}] = {128, 64};
  return e;
}

int count_files(const std::string& dir) {
  int n = 0;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

TuningLoad load(const std::string& path, TuningEntries* e, std::string* error) {
  *e = TuningEntries();
  error->clear();
  return load_tuning_file(path, kId, e, error);
}

void test_environment() {
  TuningMode m;
  CHECK(parse_tuning_mode(nullptr, &m) && m == TuningMode::kCached, "unset: cached");
  CHECK(parse_tuning_mode("off", &m) && m == TuningMode::kOff, "off");
  CHECK(parse_tuning_mode("full", &m) && m == TuningMode::kFull, "full");
  CHECK(parse_tuning_mode("cached", &m) && m == TuningMode::kCached, "cached");
  CHECK(!parse_tuning_mode("sometimes", &m) && !parse_tuning_mode("FULL", &m), "bad values refused");
  setenv("CM4J_TUNING_CACHE", "/x/own", 1);
  setenv("XDG_CACHE_HOME", "/x/xdg", 1);
  setenv("HOME", "/x/home", 1);
  CHECK(tuning_cache_dir() == "/x/own", "CM4J_TUNING_CACHE first: %s", tuning_cache_dir().c_str());
  unsetenv("CM4J_TUNING_CACHE");
  CHECK(tuning_cache_dir() == "/x/xdg/cm4j/tuning", "then XDG: %s", tuning_cache_dir().c_str());
  unsetenv("XDG_CACHE_HOME");
  CHECK(tuning_cache_dir() == "/x/home/.cache/cm4j/tuning", "then HOME: %s", tuning_cache_dir().c_str());
  unsetenv("HOME");
  CHECK(tuning_cache_dir().empty(), "none: no folder");
  CHECK(tuning_file_name(kId) == "NVIDIA-H100-80GB-HBM3_132sm_driver12040_cm4j-0.1.0.tune",
        "file name %s", tuning_file_name(kId).c_str());
  CHECK(tuning_file_name({"../../x y", 1, 0, "a/b"}) == "x-y_1sm_driver0_cm4j-a-b.tune",
        "no path separators in a file name: %s", tuning_file_name({"../../x y", 1, 0, "a/b"}).c_str());
}

void test_round_trip(const std::string& dir) {
  const std::string path = dir + "/new/folder/a.tune";
  std::string error;
  CHECK(write_tuning_file(path, kId, sample_entries(), &error), "write: %s", error.c_str());
  TuningEntries back;
  CHECK(load(path, &back, &error) == TuningLoad::kLoaded, "load: %s", error.c_str());
  CHECK(back == sample_entries(), "read back %zu entries, wrote %zu", back.size(), sample_entries().size());
  CHECK(back.orders.size() == 8 && back.tiles.size() == 3, "norm variants kept apart: %zu orders",
        back.orders.size());
  CHECK(count_files(dir + "/new/folder") == 1, "a temporary file was left: %d files", count_files(dir + "/new/folder"));
  CHECK(write_tuning_file(path, kId, {}, &error) && load(path, &back, &error) == TuningLoad::kLoaded &&
            back.size() == 0, "rewritten empty: %s", error.c_str());
  CHECK(load(dir + "/missing.tune", &back, &error) == TuningLoad::kMissing, "missing file");
  CHECK(!write_tuning_file("/dev/null/x.tune", kId, {}, &error) &&
            error.find("/dev/null/x.tune") != std::string::npos,
        "unwritable path: %s", error.c_str());
  CHECK(!write_tuning_file(dir + "/b.tune", {"gpu\nsms 1", 1, 0, "v"}, {}, &error),
        "a line break in the identity is refused");
}

// Each text, written as a file, must load as `want` with a message naming the file.
void expect(const std::string& dir, const std::string& what, const std::string& text, TuningLoad want) {
  const std::string path = dir + "/hostile.tune";
  write_text(path, text);
  TuningEntries e;
  std::string error;
  const TuningLoad got = load(path, &e, &error);
  CHECK(got == want, "%s: load gave %d, expected %d (%s)", what.c_str(), static_cast<int>(got),
        static_cast<int>(want), error.c_str());
  CHECK(error.find(path) != std::string::npos && e.size() == 0, "%s: message \"%s\" names no file",
        what.c_str(), error.c_str());
}

void test_hostile(const std::string& dir) {
  const std::string good_path = dir + "/good.tune";
  std::string error;
  CHECK(write_tuning_file(good_path, kId, sample_entries(), &error), "%s", error.c_str());
  std::ifstream in(good_path, std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t n = 0; n < good.size(); ++n)
    expect(dir, "prefix of " + std::to_string(n) + " bytes", good.substr(0, n), TuningLoad::kInvalid);

  const size_t body = good.find("order ");
  const std::string header = good.substr(0, body);
  const std::string entry = "order fp16 192 0 192 3 1 1 0 64 64 0 mma 2\n";
  auto with = [&](const std::string& line) { return header + line + "end 1\n"; };
  const std::string h = "cm4j-tuning 3\ngpu NVIDIA H100 80GB HBM3\nsms 132\ndriver 12040\ncm4j 0.1.0\n";
  expect(dir, "another GPU", "cm4j-tuning 3\ngpu NVIDIA A100\nsms 132\ndriver 12040\ncm4j 0.1.0\nend 0\n",
         TuningLoad::kIgnored);
  expect(dir, "another SM count", "cm4j-tuning 3\ngpu NVIDIA H100 80GB HBM3\nsms 114\ndriver 12040\ncm4j 0.1.0\nend 0\n",
         TuningLoad::kIgnored);
  expect(dir, "another driver", "cm4j-tuning 3\ngpu NVIDIA H100 80GB HBM3\nsms 132\ndriver 12020\ncm4j 0.1.0\nend 0\n",
         TuningLoad::kIgnored);
  expect(dir, "another cm4j", "cm4j-tuning 3\ngpu NVIDIA H100 80GB HBM3\nsms 132\ndriver 12040\ncm4j 0.2.0\nend 0\n",
         TuningLoad::kIgnored);
  // Format 1 chose order and tile together per batch: its files are ignored, not misread.
  expect(dir, "format 1", "cm4j-tuning 1\ngpu NVIDIA H100 80GB HBM3\nsms 132\ndriver 12040\ncm4j 0.1.0\n"
         "conv fp16 1 192 0 192 3 1 1 0 64 64 mma 128 1\nend 1\n", TuningLoad::kIgnored);
  // Format 2 named a tile by its pixels alone (128: 128x64).
  expect(dir, "format 2", "cm4j-tuning 2\ngpu NVIDIA H100 80GB HBM3\nsms 132\ndriver 12040\ncm4j 0.1.0\n"
         "tile fp16 192 0 192 3 1 1 0 64 64 0 8 128\nend 1\n", TuningLoad::kIgnored);
  expect(dir, "format 4", "cm4j-tuning 4\nanything at all\n", TuningLoad::kIgnored);
  expect(dir, "not ours", "{\"conv\": 1}\n", TuningLoad::kInvalid);
  expect(dir, "binary", std::string("\0\x01\xff\n\x7f", 5), TuningLoad::kInvalid);
  expect(dir, "header fields swapped", "cm4j-tuning 3\nsms 132\ngpu NVIDIA H100 80GB HBM3\ndriver 12040\ncm4j 0.1.0\nend 0\n",
         TuningLoad::kInvalid);
  expect(dir, "negative SMs", "cm4j-tuning 3\ngpu NVIDIA H100 80GB HBM3\nsms -1\ndriver 12040\ncm4j 0.1.0\nend 0\n",
         TuningLoad::kInvalid);
  CHECK(header == h, "the header written: %s", header.c_str());
  const char* bad_entries[] = {
      "order fp16 192 0 -192 3 1 1 0 64 64 0 mma 2\n",          // negative c_out
      "order fp16 0 0 192 3 1 1 0 64 64 0 mma 2\n",             // no input channels
      "order fp16 99999999999 0 192 3 1 1 0 64 64 0 mma 2\n",   // c_in1 overflows
      "order fp16 192 0 192 3 1 1 2 64 64 0 mma 2\n",           // upsample 2
      "order fp16 192 0 192 3 1 1 0 64 64 3 mma 2\n",           // norm 3
      "order fp16 192 0 192 3 1 1 0 64 64 0 mma 9\n",           // 9 splits
      "order fp16 192 0 192 3 1 1 0 64 64 0 mma 0\n",           // no split at all
      "order fp16 192 0 192 3 1 1 0 64 64 0 wgmma 9\n",         // 9 wgmma splits
      "order fp16 192 0 192 3 1 1 0 64 64 0 wgmma 0\n",         // none
      "order fp16 192 0 192 3 1 1 0 64 64 0 wmma 2\n",          // WMMA has no split
      "order fp16 192 0 192 1 1 0 0 64 64 0 cublas 2\n",        // nor cuBLAS
      "order fp32 192 0 192 3 1 1 0 64 64 0 mma 2\n",           // not a half type
      "order fp16 192 0 192 3 1 1 0 64 64 0 cudnn 1\n",         // unknown kernel
      "order fp16 192 0 192 3 1 1 0 64 64 0 mma 128 1\n",       // format 1's choice
      "conv fp16 1 192 0 192 3 1 1 0 64 64 mma 128 1\n",        // format 1's line
      "tile fp16 192 0 192 3 1 1 0 64 64 0 8 96x64\n",          // tile 96x64
      "tile fp16 192 0 192 3 1 1 0 64 64 0 8 64x128\n",         // tile 64x128
      "tile fp16 192 0 192 3 1 1 0 64 64 0 8 128\n",            // format 2's tile
      "tile fp16 192 0 192 3 1 1 0 64 64 0 8 128x64x1\n",       // a third side
      "tile fp16 192 0 192 3 1 1 0 64 64 0 0 128x64\n",         // batch 0
      "tile fp16 192 0 192 3 1 1 0 64 64 0 8\n",                // no tile
      "order fp16 192 0 192 3 1 1 0 64 64 0 mma\n",             // a field missing
      "order fp16 192 0 192 3 1 1 0 64 64 0 mma 2 1\n",         // a field too many
      "order fp16 192 0 192 3 1 1 0 64  64 0 mma 2\n",          // two spaces
      "order fp16 192 0 192 3 1 1 0 64 64 0 mma +2\n",          // a sign
      "order fp16 192 0 192 3 1 1 0 64 64 0 mma 2\r\n",         // CRLF
      "\n",                                                      // an empty line
  };
  for (const char* line : bad_entries) expect(dir, std::string("entry ") + line, with(line), TuningLoad::kInvalid);
  expect(dir, "a shape twice", header + entry + entry + "end 2\n", TuningLoad::kInvalid);
  expect(dir, "a shape twice, other orders",
         header + entry + "order fp16 192 0 192 3 1 1 0 64 64 0 wmma 1\nend 2\n", TuningLoad::kInvalid);
  const std::string tile = "tile fp16 192 0 192 3 1 1 0 64 64 0 8 128x128\n";
  {
    write_text(dir + "/tile.tune", header + tile + "end 1\n");
    TuningEntries e;
    const auto it = load(dir + "/tile.tune", &e, &error) == TuningLoad::kLoaded
                        ? e.tiles.find({shape("fp16", 192, 0, 192, 3, 0, 64), 8}) : e.tiles.end();
    CHECK(it != e.tiles.end() && it->second == (ConvTile{128, 128}), "a 128x128 tile line: %s",
          error.c_str());
  }
  expect(dir, "a tile twice", header + tile + tile + "end 2\n", TuningLoad::kInvalid);
  expect(dir, "a wrong count", header + entry + "end 2\n", TuningLoad::kInvalid);
  expect(dir, "text after the end", header + entry + "end 1\nconv\n", TuningLoad::kInvalid);
  expect(dir, "2 MiB", header + std::string(2 << 20, 'x'), TuningLoad::kInvalid);

  // Random byte changes: refused, ignored or (a change to a value in range) loaded; never a crash.
  std::mt19937 rng(13);
  int outcomes[4] = {0, 0, 0, 0};
  const std::string path = dir + "/fuzz.tune";
  for (int i = 0; i < 3000; ++i) {
    std::string t = good;
    for (int k = 0; k <= static_cast<int>(rng() % 3); ++k) t[rng() % t.size()] = static_cast<char>(rng() % 256);
    write_text(path, t);
    TuningEntries e;
    ++outcomes[static_cast<int>(load(path, &e, &error))];
  }
  std::printf("random changes of the file: %d loaded, %d ignored, %d refused\n", outcomes[0],
              outcomes[2], outcomes[3]);
  CHECK(outcomes[3] > 2000, "most random changes are refused");
}

TuningEntries order_entry(const ConvShape& s, ConvOrder o) {
  TuningEntries e;
  e.orders[s] = o;
  return e;
}

void test_shared_cache(const std::string& dir) {
  const std::string path = dir + "/shared.tune";
  auto a = TuningCache::open(path, kId);
  CHECK(a == TuningCache::open(path, kId), "one cache per file in a process");
  CHECK(a != TuningCache::open(path, {"other", 1, 0, "0.1.0"}), "one per identity");
  // Eight threads record (each record rewrites the file) while two look up all the time.
  std::atomic<bool> done{false};
  std::atomic<long> lookups{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r)
    readers.emplace_back([&] {
      ConvOrder o;
      for (; !done; ++lookups) a->find_order(shape("fp16", 8, 0, 64, 3, 0, 4), &o);
    });
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::string error;
        CHECK(a->record(order_entry(shape("fp16", 8 * (t + 1), 0, 64, 3, 0, 4 + i), {ConvChoice::kMma, 1 + t % 8}),
                        &error),
              "record: %s", error.c_str());
      }
    });
  for (auto& t : threads) t.join();
  done = true;
  for (auto& t : readers) t.join();
  CHECK(lookups > 0, "lookups went on");
  // Another process: its own cache of the same file, recording meanwhile.
  TuningCache other(path, kId);
  ConvOrder o;
  CHECK(other.find_order(shape("fp16", 64, 0, 64, 3, 0, 23), &o) && o == (ConvOrder{ConvChoice::kMma, 8}),
        "the other process reads what was written");
  std::string error;
  TuningEntries tile;
  tile.tiles[{shape("bf16", 8, 0, 8, 1, 0, 4), 16}] = {128, 128};
  CHECK(other.record(tile, &error), "%s", error.c_str());
  ConvTile found;
  CHECK(other.find_tile({shape("bf16", 8, 0, 8, 1, 0, 4), 16}, &found) && found == (ConvTile{128, 128}) &&
            !other.find_tile({shape("bf16", 8, 0, 8, 1, 0, 4), 8}, &found),
        "a tile belongs to its batch");
  TuningEntries e;
  CHECK(load(path, &e, &error) == TuningLoad::kLoaded && e.size() == 161, "merged: %zu entries (%s)", e.size(),
        error.c_str());
  CHECK(count_files(dir) == 1, "temporary files left: %d files", count_files(dir));
  // The first process's next record keeps the other's entry on disk and learns it.
  CHECK(a->record(order_entry(shape("fp16", 8, 0, 8, 1, 0, 2), {ConvChoice::kWmma, 1}), &error) &&
            load(path, &e, &error) == TuningLoad::kLoaded && e.size() == 162 &&
            a->find_tile({shape("bf16", 8, 0, 8, 1, 0, 4), 16}, &found),
        "merged back: %zu entries (%s)", e.size(), error.c_str());

  // Two processes (two caches of the file) recording at the same time: each rewrite holds
  // the file's lock, so neither drops the other's lines.
  const std::string both = dir + "/both.tune";
  {
    TuningCache p1(both, kId), p2(both, kId);
    std::thread t1([&] {
      for (int i = 0; i < 40; ++i)
        p1.record(order_entry(shape("fp16", 16, 0, 16, 3, 0, 1 + i), {ConvChoice::kMma, 1}), &error);
    });
    std::string error2;
    for (int i = 0; i < 40; ++i)
      p2.record(order_entry(shape("bf16", 16, 0, 16, 3, 0, 1 + i), {ConvChoice::kMma, 2}), &error2);
    t1.join();
  }
  CHECK(load(both, &e, &error) == TuningLoad::kLoaded && e.size() == 80,
        "two writers at once: %zu of 80 entries on disk (%s)", e.size(), error.c_str());
  CHECK(count_files(dir) == 2, "temporary files left: %d files", count_files(dir));

  write_text(path, "garbage\n");
  TuningCache broken(path, kId);
  CHECK(!broken.problem().empty() && broken.problem().find(path) != std::string::npos &&
            !broken.find_order(shape("fp16", 64, 0, 64, 3, 0, 23), &o),
        "a garbage file is reported and used as empty: \"%s\"", broken.problem().c_str());
  CHECK(broken.record(order_entry(shape("fp16", 8, 0, 8, 1, 0, 4), {ConvChoice::kMma, 1}), &error) &&
            load(path, &e, &error) == TuningLoad::kLoaded && e.size() == 1,
        "measuring again replaces it: %s", error.c_str());
}

}  // namespace

int main() {
  char tmpl[] = "/tmp/cm4j-tuning-XXXXXX";
  const std::string dir = mkdtemp(tmpl) ? tmpl : "";
  CHECK(!dir.empty(), "mkdtemp");
  if (dir.empty()) return 1;
  test_environment();
  test_round_trip(dir);
  mkdir((dir + "/hostile").c_str(), 0755);
  test_hostile(dir + "/hostile");
  mkdir((dir + "/shared").c_str(), 0755);
  test_shared_cache(dir + "/shared");
  std::system(("rm -rf '" + dir + "'").c_str());
  std::printf("test_tuning_cache: %s\n", failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}

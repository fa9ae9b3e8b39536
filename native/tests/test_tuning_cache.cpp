// The tuning cache's file (native/src/cuda/tuning_cache.h), on the CPU: CM4J_TUNING and the
// cache folder's environment; a written file reads back the same; every strict prefix of a
// file (a truncated write), another identity or format version, absurd values and random
// byte changes are refused or ignored with a message naming the file, never a crash; writes
// leave no temporary file behind; many threads and a second writer (another process) merge.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

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

ConvShape shape(const char* dtype, int batch, int c1, int c2, int co, int k, int up, int h) {
  ConvShape s;
  s.dtype = dtype;
  s.batch = batch;
  s.c_in1 = c1;
  s.c_in2 = c2;
  s.c_out = co;
  s.kernel = k;
  s.pad = k / 2;
  s.upsample = up;
  s.h_in = s.w_in = h;
  return s;
}

TuningEntries sample_entries() {
  TuningEntries e;
  e[shape("fp16", 1, 192, 0, 192, 3, 0, 64)] = {ConvChoice::kMma, 128, 1};
  e[shape("fp16", 1, 768, 768, 768, 3, 0, 8)] = {ConvChoice::kMma, 64, 8};
  e[shape("bf16", 4, 768, 384, 384, 3, 1, 16)] = {ConvChoice::kWmma, 64, 1};
  e[shape("bf16", 256, 192, 0, 384, 1, 0, 32)] = {ConvChoice::kMma, 64, 3};
  e[shape("fp16", 64, 768, 768, 768, 1, 0, 8)] = {ConvChoice::kCublas, 0, 1};
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
  e->clear();
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
  CHECK(count_files(dir + "/new/folder") == 1, "a temporary file was left: %d files", count_files(dir + "/new/folder"));
  CHECK(write_tuning_file(path, kId, {}, &error) && load(path, &back, &error) == TuningLoad::kLoaded &&
            back.empty(), "rewritten empty: %s", error.c_str());
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
  CHECK(error.find(path) != std::string::npos && e.empty(), "%s: message \"%s\" names no file",
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

  const size_t body = good.find("conv ");
  const std::string header = good.substr(0, body);
  const std::string entry = "conv fp16 1 192 0 192 3 1 1 0 64 64 mma 128 1\n";
  auto with = [&](const std::string& line) { return header + line + "end 1\n"; };
  expect(dir, "another GPU", "cm4j-tuning 1\ngpu NVIDIA A100\nsms 132\ndriver 12040\ncm4j 0.1.0\nend 0\n",
         TuningLoad::kIgnored);
  expect(dir, "another SM count", "cm4j-tuning 1\ngpu NVIDIA H100 80GB HBM3\nsms 114\ndriver 12040\ncm4j 0.1.0\nend 0\n",
         TuningLoad::kIgnored);
  expect(dir, "another driver", "cm4j-tuning 1\ngpu NVIDIA H100 80GB HBM3\nsms 132\ndriver 12020\ncm4j 0.1.0\nend 0\n",
         TuningLoad::kIgnored);
  expect(dir, "another cm4j", "cm4j-tuning 1\ngpu NVIDIA H100 80GB HBM3\nsms 132\ndriver 12040\ncm4j 0.2.0\nend 0\n",
         TuningLoad::kIgnored);
  expect(dir, "format 2", "cm4j-tuning 2\nanything at all\n", TuningLoad::kIgnored);
  expect(dir, "not ours", "{\"conv\": 1}\n", TuningLoad::kInvalid);
  expect(dir, "binary", std::string("\0\x01\xff\n\x7f", 5), TuningLoad::kInvalid);
  expect(dir, "header fields swapped", "cm4j-tuning 1\nsms 132\ngpu NVIDIA H100 80GB HBM3\ndriver 12040\ncm4j 0.1.0\nend 0\n",
         TuningLoad::kInvalid);
  expect(dir, "negative SMs", "cm4j-tuning 1\ngpu NVIDIA H100 80GB HBM3\nsms -1\ndriver 12040\ncm4j 0.1.0\nend 0\n",
         TuningLoad::kInvalid);
  const char* bad_entries[] = {
      "conv fp16 0 192 0 192 3 1 1 0 64 64 mma 128 1\n",            // batch 0
      "conv fp16 99999999999 192 0 192 3 1 1 0 64 64 mma 128 1\n",  // batch overflows
      "conv fp16 1 192 0 -192 3 1 1 0 64 64 mma 128 1\n",           // negative c_out
      "conv fp16 1 192 0 192 3 1 1 2 64 64 mma 128 1\n",            // upsample 2
      "conv fp16 1 192 0 192 3 1 1 0 64 64 mma 128 9\n",            // 9 splits
      "conv fp16 1 192 0 192 3 1 1 0 64 64 mma 96 1\n",             // tile 96
      "conv fp16 1 192 0 192 3 1 1 0 64 64 wmma 128 1\n",           // WMMA has one tile
      "conv fp16 1 192 0 192 3 1 1 0 64 64 wmma 64 2\n",            // and no split
      "conv fp32 1 192 0 192 3 1 1 0 64 64 mma 128 1\n",            // not a half type
      "conv fp16 1 192 0 192 3 1 1 0 64 64 cudnn 128 1\n",          // unknown kernel
      "conv fp16 1 192 0 192 1 1 0 0 64 64 cublas 64 1\n",          // cuBLAS has no tile
      "conv fp16 1 192 0 192 1 1 0 0 64 64 cublas 0 2\n",           // nor a split
      "conv fp16 1 192 0 192 3 1 1 0 64 64 mma 128\n",              // a field missing
      "conv fp16 1 192 0 192 3 1 1 0 64 64 mma 128 1 1\n",          // a field too many
      "conv fp16 1 192 0 192 3 1 1 0 64  64 mma 128 1\n",           // two spaces
      "conv fp16 1 192 0 192 3 1 1 0 64 64 mma 128 +1\n",           // a sign
      "conv fp16 1 192 0 192 3 1 1 0 64 64 mma 128 1\r\n",          // CRLF
      "\n",                                                          // an empty line
  };
  for (const char* line : bad_entries) expect(dir, std::string("entry ") + line, with(line), TuningLoad::kInvalid);
  expect(dir, "a shape twice", header + entry + entry + "end 2\n", TuningLoad::kInvalid);
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

void test_shared_cache(const std::string& dir) {
  const std::string path = dir + "/shared.tune";
  auto a = TuningCache::open(path, kId);
  CHECK(a == TuningCache::open(path, kId), "one cache per file in a process");
  CHECK(a != TuningCache::open(path, {"other", 1, 0, "0.1.0"}), "one per identity");
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::string error;
        CHECK(a->record(shape("fp16", 1 + i, 8 * (t + 1), 0, 64, 3, 0, 16), {ConvChoice::kMma, 64, 1 + t % 8}, &error),
              "record: %s", error.c_str());
      }
    });
  for (auto& t : threads) t.join();
  // Another process: its own cache of the same file, recording meanwhile.
  TuningCache other(path, kId);
  ConvChoice c;
  const ConvChoice last{ConvChoice::kMma, 64, 8};
  CHECK(other.find(shape("fp16", 20, 64, 0, 64, 3, 0, 16), &c) && c == last,
        "the other process reads what was written");
  std::string error;
  CHECK(other.record(shape("bf16", 1, 8, 0, 8, 1, 0, 4), {ConvChoice::kWmma, 64, 1}, &error), "%s", error.c_str());
  TuningEntries e;
  CHECK(load(path, &e, &error) == TuningLoad::kLoaded && e.size() == 161, "merged: %zu entries (%s)", e.size(),
        error.c_str());
  CHECK(count_files(dir) == 1, "temporary files left: %d files", count_files(dir));

  write_text(path, "garbage\n");
  TuningCache broken(path, kId);
  CHECK(!broken.problem().empty() && broken.problem().find(path) != std::string::npos &&
            !broken.find(shape("fp16", 20, 64, 0, 64, 3, 0, 16), &c),
        "a garbage file is reported and used as empty: \"%s\"", broken.problem().c_str());
  CHECK(broken.record(shape("fp16", 1, 8, 0, 8, 1, 0, 4), {ConvChoice::kMma, 128, 1}, &error) &&
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

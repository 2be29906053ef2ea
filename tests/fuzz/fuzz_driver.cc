// A stand-in for libFuzzer's main, linked with a *_fuzz.cc harness when the build has no
// libFuzzer (GCC, the normal test presets). It runs every seed of a corpus folder, then
// random mutations of them (bit flips, byte sets, inserts, deletes, repeated chunks,
// truncations, splices between seeds) until a time budget is spent. No coverage feedback:
// it is a bounded smoke test that runs in ctest, under ASan/UBSan in that preset; real
// fuzzing is the same harness built with -DIRIS_BUILD_FUZZ=ON (tests/data/fuzz/README.md).
//
//   driver [--seconds S] [--seed N] [--max-len BYTES] [--timeout S] CORPUS_DIR
//   driver FILE...                        (runs just these inputs, e.g. a saved crash)
//
// When an input crashes (a failed check, a signal, a sanitizer report) or runs longer than
// --timeout, its bytes are written to ./fuzz-crash-<pid>.bin and the seed and input number
// are printed, so the run can be repeated.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define IRIS_FUZZ_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define IRIS_FUZZ_SANITIZED 1
#endif
#endif
#ifdef IRIS_FUZZ_SANITIZED
#include <sanitizer/common_interface_defs.h>
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The input being run, for the crash handlers (read only when the main thread is stuck in
// it or dying).
std::atomic<const uint8_t*> g_data{nullptr};
std::atomic<size_t> g_size{0};
std::atomic<uint64_t> g_index{0};  // inputs started so far
uint64_t g_seed = 0;
char g_crash_path[64] = "fuzz-crash.bin";

void WriteAll(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w <= 0) return;
    c += w;
    n -= static_cast<size_t>(w);
  }
}

void WriteString(int fd, const char* s) { WriteAll(fd, s, strlen(s)); }

void WriteNumber(int fd, uint64_t v) {
  char buf[24];
  int i = sizeof(buf);
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  WriteAll(fd, buf + i, sizeof(buf) - static_cast<size_t>(i));
}

// Async-signal-safe: saves the current input and says how to run it again.
void DumpCurrentInput() {
  static std::atomic<bool> dumped{false};
  if (dumped.exchange(true)) return;
  const uint8_t* data = g_data.load();
  const size_t size = g_size.load();
  WriteString(2, "\n== fuzz driver: input #");
  WriteNumber(2, g_index.load());
  WriteString(2, " (seed ");
  WriteNumber(2, g_seed);
  WriteString(2, ", ");
  WriteNumber(2, size);
  WriteString(2, " bytes) failed");
  if (data == nullptr) {
    WriteString(2, "\n");
    return;
  }
  int fd = open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    WriteAll(fd, data, size);
    close(fd);
    WriteString(2, "; saved to ");
    WriteString(2, g_crash_path);
  }
  WriteString(2, "\n");
}

void OnFatalSignal(int sig) {
  DumpCurrentInput();
  signal(sig, SIG_DFL);
  raise(sig);
}

void InstallCrashHandlers() {
  snprintf(g_crash_path, sizeof(g_crash_path), "fuzz-crash-%d.bin", static_cast<int>(getpid()));
  // Sanitizers handle SEGV & co. themselves and call the death callback before exiting;
  // abort() (a harness check) is left to us in both builds.
#ifdef IRIS_FUZZ_SANITIZED
  __sanitizer_set_death_callback(DumpCurrentInput);
  const int signals[] = {SIGABRT};
#else
  const int signals[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
#endif
  for (int sig : signals) {
    struct sigaction sa {};
    sa.sa_handler = OnFatalSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, nullptr);
  }
}

// Aborts (saving the input) when one input runs longer than `seconds`.
void StartWatchdog(double seconds) {
  std::thread([seconds] {
    uint64_t last_index = g_index.load();
    Clock::time_point since = Clock::now();
    while (true) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      const uint64_t index = g_index.load();
      if (index != last_index) {
        last_index = index;
        since = Clock::now();
      } else if (std::chrono::duration<double>(Clock::now() - since).count() > seconds) {
        fprintf(stderr, "\n== fuzz driver: input #%llu ran longer than %.0f s (a hang?)\n",
                static_cast<unsigned long long>(index), seconds);
        std::abort();
      }
    }
  }).detach();
}

void RunOne(const std::string& input) {
  // A copy of exactly `size` bytes on the heap, so ASan sees reads past the end.
  const size_t size = input.size();
  auto* copy = static_cast<uint8_t*>(std::malloc(size == 0 ? 1 : size));
  if (size != 0) memcpy(copy, input.data(), size);
  g_data.store(copy);
  g_size.store(size);
  g_index.fetch_add(1);
  LLVMFuzzerTestOneInput(copy, size);
  g_data.store(nullptr);
  std::free(copy);
}

bool ReadFile(const fs::path& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

class Mutator {
 public:
  Mutator(uint64_t seed, const std::vector<std::string>& seeds, size_t max_len)
      : rng_(seed), seeds_(seeds), max_len_(max_len) {}

  // A seed (or a recent mutant) with 1 to 8 mutations stacked on it.
  std::string Next() {
    std::string s;
    if (!pool_.empty() && Below(4) == 0) {
      s = pool_[Below(pool_.size())];
    } else if (!seeds_.empty()) {
      s = seeds_[Below(seeds_.size())];
    }
    // Mostly one or two mutations: most inputs are text formats that one edit already breaks.
    const size_t rounds = Below(2) == 0 ? 1 : 1 + Below(Below(2) == 0 ? 2 : 8);
    for (size_t i = 0; i < rounds; ++i) Mutate(s);
    if (s.size() > max_len_) s.resize(max_len_);
    if (pool_.size() < 256) {
      pool_.push_back(s);
    } else {
      pool_[Below(pool_.size())] = s;
    }
    return s;
  }

 private:
  size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng_() % n); }

  char InterestingByte() {
    static constexpr char kBytes[] = {'\0', '\x01', '\x7f', '\x80', '\xff', '\xc3', '\xef', '"',
                                      '\\', '{',    '}',    '[',    ']',    ':',    ',',    '\n',
                                      '\r', ' ',    '\t',   '%',    '/',    '@',    '#',    '?',
                                      '-',  '0',    '9',    '.',    '\'',   '<',    '|',    'e'};
    return kBytes[Below(sizeof(kBytes))];
  }

  std::string_view Token() {
    static constexpr std::string_view kTokens[] = {"0",
                                                   "-1",
                                                   "1e308",
                                                   "-0.0",
                                                   "4294967296",
                                                   "9223372036854775808",
                                                   "null",
                                                   "true",
                                                   "false",
                                                   "NaN",
                                                   "\"\"",
                                                   "{}",
                                                   "[]",
                                                   "\\u0000",
                                                   "\\ud800",
                                                   "\xef\xbb\xbf",
                                                   "\xf0\x9f\x98\x80",
                                                   "\xc0\x80",
                                                   "\r\n",
                                                   "\n\n",
                                                   "%00",
                                                   "%2F",
                                                   "{{",
                                                   "}}",
                                                   "{%",
                                                   "%}",
                                                   "{#",
                                                   "~",
                                                   "&",
                                                   "*"};
    return kTokens[Below(std::size(kTokens))];
  }

  // A chunk of some seed (or of `s` itself): the material of splices and repeats.
  std::string Chunk(const std::string& s) {
    const std::string& from = (seeds_.empty() || Below(2) == 0) ? s : seeds_[Below(seeds_.size())];
    if (from.empty()) return std::string(1, InterestingByte());
    const size_t begin = Below(from.size());
    const size_t len = 1 + Below(std::min<size_t>(from.size() - begin, 64));
    return from.substr(begin, len);
  }

  void Mutate(std::string& s) {
    switch (Below(11)) {
      case 0:  // flip a bit
        if (!s.empty()) s[Below(s.size())] ^= static_cast<char>(1u << Below(8));
        break;
      case 1:  // set a byte to something interesting or random
        if (!s.empty()) {
          s[Below(s.size())] = Below(2) ? InterestingByte() : static_cast<char>(Below(256));
        }
        break;
      case 2: {  // insert a few bytes
        std::string bytes;
        for (size_t n = 1 + Below(4); n > 0; --n) {
          bytes.push_back(Below(2) ? InterestingByte() : static_cast<char>(Below(256)));
        }
        s.insert(Below(s.size() + 1), bytes);
        break;
      }
      case 3:  // insert a token (numbers, JSON/Jinja syntax, odd UTF-8)
        s.insert(Below(s.size() + 1), Token());
        break;
      case 4:  // delete a range
        if (!s.empty()) {
          const size_t at = Below(s.size());
          s.erase(at, 1 + Below(std::min<size_t>(s.size() - at, 32)));
        }
        break;
      case 5:  // truncate
        if (!s.empty()) s.resize(Below(s.size()));
        break;
      case 6: {  // repeat a chunk of the input many times (long lines, deep nesting)
        std::string chunk = Chunk(s);
        const size_t times = 2 + Below(Below(2) ? 8 : 512);
        std::string repeated;
        for (size_t i = 0; i < times && repeated.size() < max_len_; ++i) repeated += chunk;
        s.insert(Below(s.size() + 1), repeated);
        break;
      }
      case 7:  // splice: insert a chunk of another seed
        s.insert(Below(s.size() + 1), Chunk(s));
        break;
      case 8: {  // splice: overwrite with a chunk of another seed
        std::string chunk = Chunk(s);
        const size_t at = Below(s.size() + 1);
        s.replace(at, std::min(chunk.size(), s.size() - at), chunk);
        break;
      }
      case 9: {  // crossover: the head of this input, the tail of another seed
        if (seeds_.empty()) break;
        const std::string& other = seeds_[Below(seeds_.size())];
        s = s.substr(0, Below(s.size() + 1)) + other.substr(Below(other.size() + 1));
        break;
      }
      default: {  // change a decimal digit run into another number
        std::vector<size_t> digits;
        for (size_t i = 0; i < s.size(); ++i) {
          if (s[i] >= '0' && s[i] <= '9') digits.push_back(i);
        }
        if (digits.empty()) break;
        size_t begin = digits[Below(digits.size())], end = begin;
        while (end < s.size() && s[end] >= '0' && s[end] <= '9') ++end;
        static constexpr std::string_view kNumbers[] = {
            "0",   "1",     "7",     "8",          "255",
            "256", "65535", "65536", "2147483648", "99999999999999999999"};
        s.replace(begin, end - begin, kNumbers[Below(std::size(kNumbers))]);
        break;
      }
    }
  }

  std::mt19937_64 rng_;
  const std::vector<std::string>& seeds_;
  std::vector<std::string> pool_;
  size_t max_len_;
};

int Usage(const char* argv0) {
  fprintf(stderr,
          "usage: %s [--seconds S] [--seed N] [--max-len BYTES] [--timeout S] CORPUS_DIR\n"
          "       %s FILE...\n",
          argv0, argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 10;
  double timeout = 60;
  size_t max_len = 64 * 1024;
  bool seed_given = false;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        fprintf(stderr, "%s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--seconds") {
      seconds = std::strtod(value(), nullptr);
    } else if (arg == "--seed") {
      g_seed = std::strtoull(value(), nullptr, 10);
      seed_given = true;
    } else if (arg == "--max-len") {
      max_len = std::strtoull(value(), nullptr, 10);
    } else if (arg == "--timeout") {
      timeout = std::strtod(value(), nullptr);
    } else if (arg.starts_with("--") || arg == "-h") {
      return Usage(argv[0]);
    } else {
      paths.emplace_back(arg);
    }
  }
  if (paths.empty()) return Usage(argv[0]);
  if (!seed_given) {
    g_seed =
        std::random_device{}() ^ static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  }
  InstallCrashHandlers();
  StartWatchdog(timeout);

  // Explicit files: run them once (reproducing a crash), no mutation.
  if (paths.size() > 1 || !fs::is_directory(paths[0])) {
    for (const std::string& p : paths) {
      std::string input;
      if (!ReadFile(p, &input)) {
        fprintf(stderr, "cannot read %s\n", p.c_str());
        return 2;
      }
      fprintf(stderr, "running %s (%zu bytes)\n", p.c_str(), input.size());
      RunOne(input);
    }
    fprintf(stderr, "%zu inputs ran, no failure\n", paths.size());
    return 0;
  }

  std::vector<fs::path> files;
  for (const fs::directory_entry& e : fs::directory_iterator(paths[0])) {
    if (e.is_regular_file() && e.path().filename() != "README.md") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> seeds;
  for (const fs::path& p : files) {
    std::string input;
    if (!ReadFile(p, &input)) {
      fprintf(stderr, "cannot read %s\n", p.c_str());
      return 2;
    }
    seeds.push_back(std::move(input));
  }
  if (seeds.empty()) {
    fprintf(stderr, "no seeds in %s\n", paths[0].c_str());
    return 2;
  }
  fprintf(stderr, "fuzz driver: %zu seeds from %s, seed %llu, %.1f s\n", seeds.size(),
          paths[0].c_str(), static_cast<unsigned long long>(g_seed), seconds);

  const Clock::time_point start = Clock::now();
  for (const std::string& s : seeds) RunOne(s);
  RunOne(std::string());

  Mutator mutator(g_seed, seeds, max_len);
  const Clock::time_point deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  uint64_t mutants = 0;
  while (Clock::now() < deadline) {
    RunOne(mutator.Next());
    ++mutants;
  }
  const double took = std::chrono::duration<double>(Clock::now() - start).count();
  fprintf(stderr, "fuzz driver: %zu seeds + %llu mutants ran in %.1f s (%.0f/s), no failure\n",
          seeds.size(), static_cast<unsigned long long>(mutants), took,
          static_cast<double>(seeds.size() + 1 + mutants) / took);
  return 0;
}

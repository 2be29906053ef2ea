#include "base/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace iris {
namespace {
inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}
constexpr int kSpinIterations = 20000;
}  // namespace

int ThreadPool::HardwareThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = HardwareThreads();
  bounds_.resize(ChunksFor(num_threads) + 1);
  workers_.reserve(num_threads - 1);
  for (int t = 1; t < num_threads; ++t) workers_.emplace_back([this, t] { WorkerLoop(t); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  Publish(static_cast<uint64_t>(++generation_) << 32);
  for (auto& w : workers_) w.join();
}

void ThreadPool::Publish(uint64_t word) {
  {
    // Taking the mutex orders the new loop against a worker that is about to sleep.
    std::lock_guard<std::mutex> lock(mu_);
    claims_.store(word, std::memory_order_release);
  }
  cv_.notify_all();
}

void ThreadPool::Work(uint32_t generation, int thread) {
  uint64_t word = claims_.load(std::memory_order_acquire);
  for (;;) {
    // The loop, its number of claims and the claim are read from one word: a worker late
    // for loop `generation` sees another loop's word and claims nothing.
    const uint64_t count = (word >> 16) & kMaxClaims;
    const uint64_t next = word & kMaxClaims;
    if (GenerationOf(word) != generation || next >= count) return;
    if (!claims_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
      continue;  // `word` now holds the current value
    }
    const size_t begin = static_cast<size_t>(next) * per_claim_;
    const size_t end = std::min(num_tasks_, begin + per_claim_);
    for (size_t task = begin; task < end; ++task) (*fn_)(task, thread);
    done_.fetch_add(1, std::memory_order_release);
    word = claims_.load(std::memory_order_acquire);
  }
}

void ThreadPool::WorkerLoop(int thread) {
  uint32_t seen = 0;  // the generation at construction; read here it could miss a Run
  for (;;) {
    int spins = 0;
    uint32_t g;
    while ((g = GenerationOf(claims_.load(std::memory_order_acquire))) == seen) {
      if (++spins < kSpinIterations) {
        CpuRelax();
      } else {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock,
                 [&] { return GenerationOf(claims_.load(std::memory_order_acquire)) != seen; });
      }
    }
    seen = g;
    if (stop_.load()) return;
    Work(g, thread);
  }
}

void ThreadPool::Run(size_t num_tasks, const std::function<void(size_t, int)>& fn) {
  if (num_tasks == 0) return;
  if (workers_.empty() || num_tasks == 1) {
    for (size_t i = 0; i < num_tasks; ++i) fn(i, 0);
    return;
  }
  per_claim_ = (num_tasks + kMaxClaims - 1) / kMaxClaims;
  const uint64_t count = (num_tasks + per_claim_ - 1) / per_claim_;
  fn_ = &fn;
  num_tasks_ = num_tasks;
  done_.store(0, std::memory_order_relaxed);
  const uint32_t generation = ++generation_;
  Publish((static_cast<uint64_t>(generation) << 32) | (count << 16));
  Work(generation, 0);
  // Every claim is taken; wait for those still running on workers. A worker that has not
  // woken yet holds none, and is not waited for.
  while (done_.load(std::memory_order_acquire) != count) CpuRelax();
  fn_ = nullptr;
}

void ThreadPool::ParallelFor(size_t n, size_t grain,
                             const std::function<void(size_t, size_t, int)>& fn, size_t align) {
  if (n == 0) return;
  if (workers_.empty()) {
    fn(0, n, 0);
    return;
  }
  grain = std::max<size_t>(grain, 1);
  align = std::max<size_t>(align, 1);
  // Chunks shrink as the range is used up (each a share of what is left), so the last ones
  // are small: a thread that finishes early waits for at most a small chunk on another. No
  // chunk is smaller than an equal share of what is left among the chunks still allowed, so
  // the cap never leaves a large remainder for the last one.
  const size_t threads = static_cast<size_t>(num_threads());
  const size_t cap = bounds_.size() - 1;
  size_t chunks = 0;
  bounds_[0] = 0;
  for (size_t begin = 0; begin < n;) {
    const size_t left = n - begin;
    size_t size =
        std::max({grain, left / (2 * threads), (left + cap - chunks - 1) / (cap - chunks)});
    size = (size + align - 1) / align * align;
    if (size >= left) size = left;
    begin += size;
    bounds_[++chunks] = begin;
  }
  if (chunks == 1) {
    fn(0, n, 0);
    return;
  }
  Run(chunks, [&](size_t c, int t) { fn(bounds_[c], bounds_[c + 1], t); });
}

}  // namespace iris

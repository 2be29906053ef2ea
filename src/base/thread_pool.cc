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
  workers_.reserve(num_threads - 1);
  for (int t = 1; t < num_threads; ++t) workers_.emplace_back([this, t] { WorkerLoop(t); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  Wake();
  for (auto& w : workers_) w.join();
}

void ThreadPool::Wake() {
  {
    // Taking the mutex orders the bump against a worker that is about to sleep.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
}

void ThreadPool::Work(int thread) {
  for (;;) {
    size_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= num_tasks_) break;
    (*fn_)(task, thread);
  }
}

void ThreadPool::WorkerLoop(int thread) {
  uint32_t seen = 0;  // the generation at construction; read here it could miss a Run
  for (;;) {
    int spins = 0;
    uint32_t g;
    while ((g = generation_.load(std::memory_order_acquire)) == seen) {
      if (++spins < kSpinIterations) {
        CpuRelax();
      } else {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      }
    }
    seen = g;
    if (stop_.load()) return;
    Work(thread);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::Run(size_t num_tasks, const std::function<void(size_t, int)>& fn) {
  if (num_tasks == 0) return;
  if (workers_.empty() || num_tasks == 1) {
    for (size_t i = 0; i < num_tasks; ++i) fn(i, 0);
    return;
  }
  fn_ = &fn;
  num_tasks_ = num_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  Wake();
  Work(0);
  while (pending_.load(std::memory_order_acquire) != 0) CpuRelax();
  fn_ = nullptr;
}

void ThreadPool::ParallelFor(size_t n, size_t grain,
                             const std::function<void(size_t, size_t, int)>& fn, size_t align) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  align = std::max<size_t>(align, 1);
  size_t max_chunks = (n + grain - 1) / grain;
  size_t chunks = std::min<size_t>(max_chunks, static_cast<size_t>(num_threads()) * 4);
  size_t per = (n + std::max<size_t>(chunks, 1) - 1) / std::max<size_t>(chunks, 1);
  per = (per + align - 1) / align * align;
  chunks = (n + per - 1) / per;
  if (chunks <= 1) {
    fn(0, n, 0);
    return;
  }
  Run(chunks, [&](size_t c, int t) {
    size_t b = c * per;
    size_t e = std::min(n, b + per);
    if (b < e) fn(b, e, t);
  });
}

}  // namespace iris

// A fixed pool of worker threads for data-parallel loops in the engine. The calling thread
// takes part in every loop, so a pool of N threads has N-1 workers. Workers spin briefly
// between loops (a decode step runs hundreds of short loops) and then sleep.
//
// A loop ends when its tasks are done, not when every worker has seen it: on a machine with
// more busy threads than cores, a worker the scheduler has not run yet would otherwise hold
// up the caller (which has already done all the tasks) for as long as it stays switched out.
// Tasks are claimed from one word that also names the loop and its number of tasks, so a
// worker that wakes late for a finished loop claims nothing from it, or from the next one.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace iris {

class ThreadPool {
 public:
  // num_threads <= 0 means one per hardware thread.
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(task, thread) for every task in [0, num_tasks), tasks claimed dynamically;
  // thread is in [0, num_threads()). Returns when all tasks are done. Not reentrant: one
  // loop at a time per pool (call it from one thread).
  void Run(size_t num_tasks, const std::function<void(size_t task, int thread)>& fn);

  // Splits [0, n) into chunks of at least `grain` and calls fn(begin, end, thread). Every
  // chunk but the last starts and ends at a multiple of `align`. Chunks shrink from a quarter
  // of the range (on two threads) towards `grain`, at most ChunksFor(num_threads()) of them.
  void ParallelFor(size_t n, size_t grain,
                   const std::function<void(size_t begin, size_t end, int thread)>& fn,
                   size_t align = 1);

  static int HardwareThreads();

  // The most chunks ParallelFor cuts on a pool of `threads`.
  static size_t ChunksFor(int threads) { return std::max<size_t>(64, 8 * threads); }

 private:
  // claims_ packs the loop's generation (32 bits), its number of claims (16) and the next
  // claim (16). A claim is `per_claim_` consecutive tasks, so any number of tasks fits.
  static constexpr uint64_t kMaxClaims = 0xffff;
  static uint32_t GenerationOf(uint64_t word) { return static_cast<uint32_t>(word >> 32); }

  void WorkerLoop(int thread);
  // Claims and runs the tasks of loop `generation` until none is left, or until that loop is
  // over (or another has begun).
  void Work(uint32_t generation, int thread);
  void Publish(uint64_t word);

  std::vector<std::thread> workers_;
  std::vector<size_t> bounds_;  // ParallelFor's chunk bounds (one loop at a time)
  // Written by the caller before it publishes a loop; read by a worker only after it has
  // claimed a task of that loop, which the caller waits for.
  const std::function<void(size_t, int)>* fn_ = nullptr;
  size_t num_tasks_ = 0;
  size_t per_claim_ = 1;
  uint32_t generation_ = 0;  // the caller's count of loops
  std::atomic<uint64_t> claims_{0};
  std::atomic<uint64_t> done_{0};  // claims of the current loop that have finished
  std::atomic<bool> stop_{false};
  std::mutex mu_;  // guards sleeping on cv_ only
  std::condition_variable cv_;
};

// pool->ParallelFor(n, grain, fn, align) when there is a pool; fn(0, n, 0) inline without one.
inline void ParallelFor(ThreadPool* pool, size_t n, size_t grain,
                        const std::function<void(size_t begin, size_t end, int thread)>& fn,
                        size_t align = 1) {
  if (pool != nullptr) {
    pool->ParallelFor(n, grain, fn, align);
  } else {
    fn(0, n, 0);
  }
}

}  // namespace iris

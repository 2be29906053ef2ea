// A fixed pool of worker threads for data-parallel loops in the engine. The calling thread
// takes part in every loop, so a pool of N threads has N-1 workers. Workers spin briefly
// between loops (a decode step runs hundreds of short loops) and then sleep.
#pragma once

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
  // chunk but the last starts and ends at a multiple of `align`.
  void ParallelFor(size_t n, size_t grain,
                   const std::function<void(size_t begin, size_t end, int thread)>& fn,
                   size_t align = 1);

  static int HardwareThreads();

 private:
  void WorkerLoop(int thread);
  void Work(int thread);
  void Wake();

  std::vector<std::thread> workers_;
  const std::function<void(size_t, int)>* fn_ = nullptr;
  size_t num_tasks_ = 0;
  std::atomic<size_t> next_task_{0};
  std::atomic<uint32_t> generation_{0};
  std::atomic<int> pending_{0};
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

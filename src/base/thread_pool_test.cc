#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <vector>

namespace iris {
namespace {

TEST(ThreadPoolTest, RunsEveryTaskExactlyOnce) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (size_t n : {0u, 1u, 3u, 1000u}) {
      std::vector<std::atomic<int>> hits(n);
      pool.Run(n, [&](size_t task, int thread) {
        EXPECT_GE(thread, 0);
        EXPECT_LT(thread, threads);
        hits[task].fetch_add(1);
      });
      for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    }
  }
}

TEST(ThreadPoolTest, ParallelForCoversRangeOnce) {
  ThreadPool pool(3);
  for (int rep = 0; rep < 50; ++rep) {
    std::vector<std::atomic<int>> hits(997);
    pool.ParallelFor(hits.size(), 7, [&](size_t b, size_t e, int) {
      for (size_t i = b; i < e; ++i) hits[i].fetch_add(1);
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  }
}

// Chunks cut at a multiple of `align` (a matrix product's 48-feature panels): 576 features
// with a grain of 32 were cut into chunks of 72, each ending in half a panel.
TEST(ThreadPoolTest, ParallelForCutsAtTheAlignment) {
  ThreadPool pool(2);
  for (const size_t n : {size_t{576}, size_t{1536}, size_t{49280}, size_t{50}, size_t{1}}) {
    std::vector<std::atomic<int>> hits(n);
    std::mutex mu;
    std::vector<std::pair<size_t, size_t>> chunks;
    pool.ParallelFor(
        n, 32,
        [&](size_t b, size_t e, int) {
          for (size_t i = b; i < e; ++i) hits[i].fetch_add(1);
          std::lock_guard<std::mutex> lock(mu);
          chunks.emplace_back(b, e);
        },
        48);
    for (auto& h : hits) ASSERT_EQ(h.load(), 1) << n;
    for (const auto& [b, e] : chunks) {
      EXPECT_EQ(b % 48, 0u) << n;
      if (e != n) {
        EXPECT_EQ(e % 48, 0u) << n;
      }
    }
    if (n == 576) {
      EXPECT_EQ(chunks.size(), 6u);  // 96 features each, not 8 of 72
    }
  }
}

}  // namespace
}  // namespace iris

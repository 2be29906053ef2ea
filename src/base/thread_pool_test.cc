#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
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

// More tasks than one word can count claims of (65,535): a claim then runs several tasks.
TEST(ThreadPoolTest, RunsMoreTasksThanClaimsExactlyOnce) {
  ThreadPool pool(3);
  for (size_t n : {size_t{65535}, size_t{65536}, size_t{200003}}) {
    std::vector<std::atomic<int>> hits(n);
    pool.Run(n, [&](size_t task, int) { hits[task].fetch_add(1, std::memory_order_relaxed); });
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << n << " " << i;
  }
}

// Loops back to back, of sizes that change every time, on more threads than this machine may
// have cores: a worker that wakes late for a loop must claim nothing of it once it is over,
// and nothing of the next one under the last one's size or function.
TEST(ThreadPoolTest, LoopsBackToBackEachRunEveryTaskOnce) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(64);
  for (int loop = 0; loop < 20000; ++loop) {
    const size_t n = 2 + static_cast<size_t>(loop * 7919) % 63;
    pool.Run(n, [&, loop](size_t task, int) {
      ASSERT_LT(task, n);
      hits[task].fetch_add(loop + 1, std::memory_order_relaxed);
    });
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(hits[i].exchange(0, std::memory_order_relaxed), loop + 1) << loop << " " << i;
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
      // A quarter of what is left each time, in whole panels, down to one panel: 144, 144,
      // 96, then 48s. The last chunks are one panel, so no thread waits long for another.
      std::sort(chunks.begin(), chunks.end());
      std::vector<size_t> sizes;
      for (const auto& [b, e] : chunks) sizes.push_back(e - b);
      EXPECT_EQ(sizes, (std::vector<size_t>{144, 144, 96, 48, 48, 48, 48}));
    }
  }
}

// Any range, grain and alignment, on 2 and on 16 threads: covered once, in at most
// ChunksFor(threads) chunks of at least the grain (the last may be shorter), that never grow
// along the range, so that no large chunk is left for last.
TEST(ThreadPoolTest, ParallelForChunksShrinkAndStayWithinTheirBound) {
  for (const int threads : {2, 16}) {
    ThreadPool pool(threads);
    for (const size_t n : {size_t{1}, size_t{7}, size_t{100}, size_t{4096}, size_t{14336},
                           size_t{49152}, size_t{1000003}}) {
      for (const size_t grain : {size_t{1}, size_t{3}, size_t{16}, size_t{112}}) {
        for (const size_t align : {size_t{1}, size_t{16}}) {
          std::mutex mu;
          std::vector<std::pair<size_t, size_t>> chunks;
          pool.ParallelFor(
              n, grain,
              [&](size_t b, size_t e, int) {
                std::lock_guard<std::mutex> lock(mu);
                chunks.emplace_back(b, e);
              },
              align);
          SCOPED_TRACE(std::to_string(threads) + " threads, n " + std::to_string(n) + ", grain " +
                       std::to_string(grain) + ", align " + std::to_string(align));
          std::sort(chunks.begin(), chunks.end());
          ASSERT_LE(chunks.size(), ThreadPool::ChunksFor(threads));
          size_t next = 0;
          for (size_t i = 0; i < chunks.size(); ++i) {
            const auto [b, e] = chunks[i];
            ASSERT_EQ(b, next);
            ASSERT_LT(b, e);
            if (e != n) {
              EXPECT_GE(e - b, grain);
              EXPECT_EQ(e % align, 0u);
            }
            if (i + 1 < chunks.size()) {
              EXPECT_GE(e - b, chunks[i + 1].second - chunks[i + 1].first) << i;
            }
            next = e;
          }
          ASSERT_EQ(next, n);
        }
      }
    }
  }
}

}  // namespace
}  // namespace iris

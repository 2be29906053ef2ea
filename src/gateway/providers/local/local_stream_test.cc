#include "gateway/providers/local/local_stream.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <thread>

namespace iris::gateway::providers {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

StreamEvent Text(std::string text) {
  StreamEvent e;
  e.type = StreamEvent::Type::kTextDelta;
  e.text = std::move(text);
  return e;
}

// Runs `body` as a coroutine on a fresh io_context until it finishes.
template <typename F>
void RunCoroutine(F body) {
  asio::io_context io;
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await body(io);
        done = true;
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
  EXPECT_TRUE(done);
}

// The engine thread produces while the reader waits: every event arrives, in order, and the
// reader wakes on the doorbell, well before its limit.
TEST(LocalStream, DeliversEveryEventInOrderFromAnotherThread) {
  RunCoroutine([](asio::io_context& io) -> asio::awaitable<void> {
    LocalStream stream(io.get_executor());
    LocalSink sink = stream.Sink();
    std::thread engine([sink] {
      for (int i = 0; i < 1000; ++i) {
        EXPECT_TRUE(sink.on_event(Text(std::to_string(i))));
        if (i % 100 == 0) std::this_thread::sleep_for(1ms);
      }
      sink.on_done(OkStatus());
    });
    std::vector<std::string> got;
    bool end = false;
    const auto t0 = std::chrono::steady_clock::now();
    while (!end) {
      auto events = co_await stream.Next(10s, end);
      EXPECT_TRUE(events.ok()) << events.status().ToString();
      if (!events.ok()) break;
      for (const StreamEvent& e : *events) got.push_back(e.text);
    }
    engine.join();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    EXPECT_EQ(got.size(), 1000u);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], std::to_string(i));
  });
}

// Held rings: events written under a HeldRings wake a waiting reader only when it ends, all
// together, and every stream written meanwhile is rung (each once).
TEST(LocalStream, HeldRingsWakeReadersWhenTheScopeEnds) {
  RunCoroutine([](asio::io_context& io) -> asio::awaitable<void> {
    LocalStream a(io.get_executor()), b(io.get_executor());
    LocalSink sa = a.Sink(), sb = b.Sink();
    std::atomic<bool> woke{false}, released{false};
    std::thread engine([&] {
      std::this_thread::sleep_for(100ms);  // the reader waits on its doorbell by then
      LocalStream::HeldRings held;
      {
        LocalStream::HeldRings inner;  // a no-op: the outer one still holds
        EXPECT_TRUE(sa.on_event(Text("a1")));
      }
      EXPECT_TRUE(sb.on_event(Text("b1")));
      std::this_thread::sleep_for(150ms);  // a reader rung at once would have woken by now
      EXPECT_FALSE(woke.load());
      EXPECT_TRUE(sa.on_event(Text("a2")));
      sb.on_done(OkStatus());
      released = true;
    });
    bool end = false;
    auto first = co_await a.Next(10s, end);
    woke = true;
    EXPECT_TRUE(released.load());
    EXPECT_TRUE(first.ok());
    if (first.ok()) {
      EXPECT_EQ(first->size(), 2u);  // both, in one wake
      if (first->size() == 2) {
        EXPECT_EQ((*first)[0].text, "a1");
        EXPECT_EQ((*first)[1].text, "a2");
      }
    }
    auto second = co_await b.Next(10s, end);
    EXPECT_TRUE(second.ok());
    if (second.ok()) {
      EXPECT_EQ(second->size(), 1u);
      if (!second->empty()) EXPECT_EQ((*second)[0].text, "b1");
    }
    EXPECT_TRUE(end);
    engine.join();
    // Without one held, a write rings at once.
    std::thread later([&] { EXPECT_TRUE(sa.on_event(Text("a3"))); });
    const auto t0 = std::chrono::steady_clock::now();
    auto third = co_await a.Next(10s, end);
    later.join();
    EXPECT_TRUE(third.ok());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  });
}

TEST(LocalStream, EventsBeforeAFailureComeFirstThenTheFailure) {
  RunCoroutine([](asio::io_context& io) -> asio::awaitable<void> {
    LocalStream stream(io.get_executor());
    LocalSink sink = stream.Sink();
    sink.on_event(Text("a"));
    sink.on_done(Status(ErrorCode::kInternal, "engine failed"));
    bool end = false;
    auto first = co_await stream.Next(1s, end);
    EXPECT_TRUE(first.ok());
    EXPECT_FALSE(end);
    if (first.ok()) {
      EXPECT_EQ(first->size(), 1u);
    }
    auto second = co_await stream.Next(1s, end);
    EXPECT_TRUE(end);
    EXPECT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), ErrorCode::kInternal);
  });
}

TEST(LocalStream, NothingWithinTheLimitIsADeadline) {
  RunCoroutine([](asio::io_context& io) -> asio::awaitable<void> {
    LocalStream stream(io.get_executor());
    bool end = false;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = co_await stream.Next(50ms, end);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 45ms);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kDeadlineExceeded);
    EXPECT_FALSE(end);
  });
}

// A closed stream (the caller left) tells the engine to stop, and a sink that outlives its
// stream is still safe to call.
TEST(LocalStream, AClosedOrDestroyedStreamStopsTheEngine) {
  asio::io_context io;
  LocalSink sink;
  {
    LocalStream stream(io.get_executor());
    sink = stream.Sink();
    EXPECT_TRUE(sink.on_event(Text("x")));
    stream.Close();
    EXPECT_FALSE(sink.on_event(Text("y")));
  }
  EXPECT_FALSE(sink.on_event(Text("z")));
  sink.on_done(OkStatus());  // no reader: must not crash
}

}  // namespace
}  // namespace iris::gateway::providers

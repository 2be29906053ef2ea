#include "gateway/providers/local/local_stream.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
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
// together, and every stream written meanwhile is rung (each once); once it ends, a write on
// the same thread rings at once. One thread, run step by step (poll).
TEST(LocalStream, HeldRingsWakeReadersWhenTheScopeEnds) {
  asio::io_context io;
  LocalStream a(io.get_executor()), b(io.get_executor());
  LocalSink sa = a.Sink(), sb = b.Sink();
  std::vector<std::vector<std::string>> got;  // what each wake of a's reader brought
  bool b_woke = false;
  auto texts = [](const Result<std::vector<StreamEvent>>& r) {
    std::vector<std::string> out;
    if (r.ok()) {
      for (const StreamEvent& e : *r) out.push_back(e.text);
    }
    return out;
  };
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        bool end = false;
        for (int i = 0; i < 2; ++i) got.push_back(texts(co_await a.Next(10s, end)));
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        bool end = false;
        auto r = co_await b.Next(10s, end);
        b_woke = true;
        EXPECT_EQ(texts(r), std::vector<std::string>{"b1"});
        EXPECT_TRUE(end);
      },
      asio::detached);
  io.poll();  // both readers wait on their doorbells
  ASSERT_TRUE(got.empty());
  {
    LocalStream::HeldRings held;
    {
      LocalStream::HeldRings inner;  // a no-op: the outer one still holds
      EXPECT_TRUE(sa.on_event(Text("a1")));
    }
    EXPECT_TRUE(sb.on_event(Text("b1")));
    io.poll();
    EXPECT_TRUE(got.empty());  // nothing rang
    EXPECT_FALSE(b_woke);
    EXPECT_TRUE(sa.on_event(Text("a2")));
    sb.on_done(OkStatus());
    io.poll();
    EXPECT_TRUE(got.empty());
  }
  io.poll();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], (std::vector<std::string>{"a1", "a2"}));  // both, in one wake
  EXPECT_TRUE(b_woke);
  // The hold is over on this thread: a write rings at once.
  EXPECT_TRUE(sa.on_event(Text("a3")));
  io.poll();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1], std::vector<std::string>{"a3"});
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

#include "gateway/providers/local/local_stream.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <mutex>
#include <optional>

namespace iris::gateway::providers {

namespace asio = boost::asio;

struct LocalStream::State {
  explicit State(const asio::any_io_executor& executor) : doorbell(executor, 1) {}

  std::mutex mu;
  std::vector<StreamEvent> pending;  // produced, not yet taken
  std::optional<Status> done;        // the generation's end
  bool closed = false;               // the reader is gone
  // One pending ring is enough: the reader takes everything each time it wakes.
  asio::experimental::concurrent_channel<void(boost::system::error_code)> doorbell;

  void Ring() { doorbell.try_send(boost::system::error_code{}); }
};

namespace {
thread_local LocalStream::HeldRings* held_rings = nullptr;  // this thread's, if any
}  // namespace

void LocalStream::HeldRings::RingOrHold(const std::shared_ptr<State>& s) {
  if (held_rings == nullptr) {
    s->Ring();
    return;
  }
  // (A linear search: a step writes to its batch's streams and to the waiting ones it ends.)
  for (const auto& owed : held_rings->owed_) {
    if (owed == s) return;
  }
  held_rings->owed_.push_back(s);
}

LocalStream::HeldRings::HeldRings() {
  if (held_rings == nullptr) held_rings = this;
}

LocalStream::HeldRings::~HeldRings() {
  if (held_rings != this) return;  // an inner one: nothing was held here
  held_rings = nullptr;
  for (const auto& s : owed_) s->Ring();
}

LocalStream::LocalStream(const asio::any_io_executor& executor)
    : state_(std::make_shared<State>(executor)) {}

LocalStream::~LocalStream() { Close(); }

void LocalStream::Close() {
  std::lock_guard lock(state_->mu);
  state_->closed = true;
}

LocalSink LocalStream::Sink() {
  LocalSink sink;
  sink.on_event = [state = state_](const StreamEvent& e) {
    {
      std::lock_guard lock(state->mu);
      if (state->closed) return false;
      state->pending.push_back(e);
    }
    HeldRings::RingOrHold(state);
    return true;
  };
  sink.gone = [state = state_] {
    std::lock_guard lock(state->mu);
    return state->closed;
  };
  sink.on_done = [state = state_](const Status& s) {
    {
      std::lock_guard lock(state->mu);
      state->done = s;
    }
    HeldRings::RingOrHold(state);
  };
  return sink;
}

asio::awaitable<Result<std::vector<StreamEvent>>> LocalStream::Next(std::chrono::milliseconds limit,
                                                                    bool& end) {
  using namespace asio::experimental::awaitable_operators;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  for (;;) {
    std::vector<StreamEvent> events;
    std::optional<Status> done;
    {
      std::lock_guard lock(state_->mu);
      events.swap(state_->pending);
      done = state_->done;
    }
    if (!events.empty()) {
      // Events before a failure are delivered first; the failure comes on the next call.
      if (done && done->ok()) end = true;
      co_return events;
    }
    if (done) {
      end = true;
      if (!done->ok()) co_return *done;
      co_return events;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      co_return Status(ErrorCode::kDeadlineExceeded, "the local model produced nothing for " +
                                                         std::to_string(limit.count()) + " ms");
    }
    // A ring that came after the check above is still in the doorbell: no wake is lost.
    auto r = co_await (state_->doorbell.async_receive(asio::as_tuple(asio::use_awaitable)) ||
                       timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    (void)r;  // either way, look again
  }
}

}  // namespace iris::gateway::providers

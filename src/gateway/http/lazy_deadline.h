// A per-connection deadline that costs nothing to move later: the inbound server and the
// upstream client arm and disarm one around every read and write.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <utility>

#include "base/time.h"

namespace iris::gateway::http {

// One timer wait stays pending and is re-armed only when a deadline moves earlier than it,
// so Arm/Disarm around each operation cost no system call and no handler; an expiry that
// finds the deadline moved later waits again. `on_expire` runs on the executor when an armed
// deadline passes. The pending wait holds only a weak reference, so destroying the
// LazyDeadline (with its owner) is always safe. Not thread-safe: one executor thread.
class LazyDeadline {
 public:
  LazyDeadline(const boost::asio::any_io_executor& executor, std::function<void()> on_expire)
      : timer_(executor), state_(std::make_shared<State>()) {
    state_->on_expire = std::move(on_expire);
  }
  LazyDeadline(const LazyDeadline&) = delete;
  LazyDeadline& operator=(const LazyDeadline&) = delete;

  void Arm(SteadyClock::time_point when) {
    state_->armed = true;
    state_->deadline = when;
    if (!state_->waiting || when < timer_.expiry()) Wait(when);
  }
  // The current operation finished: an expiry that comes now does nothing.
  void Disarm() { state_->armed = false; }
  // Disarms and drops the pending wait too (an idle or closing connection keeps none, so an
  // io_context with nothing else to do can run out of work).
  void Stop() {
    state_->armed = false;
    state_->waiting = false;
    ++state_->generation;
    timer_.cancel();
  }

 private:
  struct State {
    std::function<void()> on_expire;
    SteadyClock::time_point deadline;
    bool armed = false;    // a deadline applies to the current operation
    bool waiting = false;  // a timer wait is pending
    uint64_t generation = 0;
  };

  void Wait(SteadyClock::time_point when) {
    state_->waiting = true;
    ++state_->generation;
    timer_.expires_at(when);
    timer_.async_wait([this, weak = std::weak_ptr<State>(state_),
                       generation = state_->generation](const boost::system::error_code& ec) {
      auto state = weak.lock();
      if (ec || !state || generation != state->generation) return;
      state->waiting = false;
      if (!state->armed) return;
      if (SteadyClock::now() < state->deadline) {
        Wait(state->deadline);  // `this` is alive: `state` is, and it dies with this object
        return;
      }
      state->on_expire();
    });
  }

  boost::asio::steady_timer timer_;
  std::shared_ptr<State> state_;
};

}  // namespace iris::gateway::http

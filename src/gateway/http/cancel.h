// CancelToken: how a request tells the work it started (an upstream call, a local generation)
// that nobody is waiting for the answer any more, e.g. because the client disconnected.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace iris::gateway::http {

// A one-shot cancellation flag with callbacks. Not thread-safe: the token, its Cancel() and
// every registration belong to one io_context thread (the connection's worker), and callbacks
// run synchronously on the thread that calls Cancel(). Copying is disabled; moving is cheap.
// Registrations hold only a weak reference, so a Registration may outlive its token.
class CancelToken {
  struct State {
    bool cancelled = false;
    uint64_t next_id = 1;
    std::vector<std::pair<uint64_t, std::function<void()>>> callbacks;
  };

 public:
  // Unregisters its callback when destroyed (unless it already ran). Move-only.
  class Registration {
   public:
    Registration() = default;
    Registration(Registration&&) noexcept = default;
    Registration& operator=(Registration&& other) noexcept {
      if (this != &other) {
        Reset();
        state_ = std::move(other.state_);
        id_ = std::exchange(other.id_, 0);
      }
      return *this;
    }
    ~Registration() { Reset(); }
    // Drops the callback now; it will not run.
    void Reset() {
      if (auto s = state_.lock()) {
        std::erase_if(s->callbacks, [this](const auto& cb) { return cb.first == id_; });
      }
      state_.reset();
      id_ = 0;
    }

   private:
    friend class CancelToken;
    Registration(std::weak_ptr<State> state, uint64_t id) : state_(std::move(state)), id_(id) {}
    std::weak_ptr<State> state_;
    uint64_t id_ = 0;
  };

  CancelToken() : state_(std::make_shared<State>()) {}
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;
  CancelToken(CancelToken&&) noexcept = default;
  CancelToken& operator=(CancelToken&&) noexcept = default;

  // Marks the token cancelled and runs every registered callback once, in registration
  // order. Later calls do nothing. A callback may register or reset registrations.
  void Cancel() {
    if (state_->cancelled) return;
    state_->cancelled = true;
    auto callbacks = std::move(state_->callbacks);
    state_->callbacks.clear();
    for (auto& cb : callbacks) cb.second();
  }

  bool cancelled() const { return state_->cancelled; }

  // Registers `fn` to run on cancellation. If the token is already cancelled, `fn` runs now
  // and the returned registration is empty. Keep the Registration alive as long as the
  // callback may run; destroying it unregisters.
  [[nodiscard]] Registration OnCancel(std::function<void()> fn) {
    if (state_->cancelled) {
      fn();
      return {};
    }
    uint64_t id = state_->next_id++;
    state_->callbacks.emplace_back(id, std::move(fn));
    return Registration(state_, id);
  }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace iris::gateway::http

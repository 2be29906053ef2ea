// Published<T>: one shared_ptr<T> that many threads read and a writer replaces whole.
#pragma once

#include <memory>
#include <mutex>
#include <utility>

namespace iris {

// A shared_ptr that every request reads and a reload or refresh swaps now and then. A mutex rather
// than std::atomic<std::shared_ptr>: GCC 12's implementation locks a pointer bit that
// ThreadSanitizer cannot see, so every swap would be reported as a race.
template <typename T>
class Published {
 public:
  explicit Published(std::shared_ptr<T> p) : p_(std::move(p)) {}
  std::shared_ptr<T> load() const {
    std::lock_guard lock(mu_);
    return p_;
  }
  void store(std::shared_ptr<T> p) {
    std::lock_guard lock(mu_);
    p_.swap(p);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<T> p_;
};

}  // namespace iris

// For the SharedState tests: runs a coroutine of a state to its end on a one-thread io_context,
// as a server worker would. Test-only and header-only.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>
#include <utility>
#include <vector>

#include "gateway/access/state.h"

namespace iris::gateway::access::testing {

template <typename T>
T RunOn(boost::asio::io_context& io, boost::asio::awaitable<T> a) {
  std::optional<T> out;
  boost::asio::co_spawn(
      io,
      [&io, &out, a = std::move(a)]() mutable -> boost::asio::awaitable<void> {
        out.emplace(co_await std::move(a));
        io.stop();  // (a pipe's idle connection would keep run() going)
      },
      boost::asio::detached);
  io.restart();
  io.run();
  return std::move(*out);
}

// AdmitAsync, run to its end.
inline Result<AdmitResult> AdmitOn(boost::asio::io_context& io, SharedState& s,
                                   std::vector<BucketSpec> buckets, std::vector<int64_t> want,
                                   std::optional<AdmitBudget> budget, int64_t now_ms) {
  return RunOn(io, s.AdmitAsync(std::move(buckets), std::move(want), std::move(budget), now_ms));
}

}  // namespace iris::gateway::access::testing

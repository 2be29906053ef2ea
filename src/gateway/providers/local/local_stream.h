// One local generation as an awaitable stream, between the engine thread (which produces) and
// the request's coroutine (which consumes). The engine thread never blocks or sleeps: it
// appends to a buffer and rings a doorbell (at the end of the step: HeldRings); the coroutine
// wakes on the doorbell and takes everything produced since it last looked. The buffer holds at
// most one generation's events, bounded by its max_tokens.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <vector>

#include "base/status.h"
#include "gateway/api/chat.h"
#include "gateway/providers/local/local_provider.h"

namespace iris::gateway::providers {

class LocalStream {
 public:
  // Reads on `executor` (the request coroutine's).
  explicit LocalStream(const boost::asio::any_io_executor& executor);
  // Closes the stream: the engine stops the generation at its next event.
  ~LocalStream();
  LocalStream(const LocalStream&) = delete;
  LocalStream& operator=(const LocalStream&) = delete;

  // The reader is gone (the caller left): the engine stops at its next event, then reports
  // its end. Thread-safe.
  void Close();

  // The sink to hand to LocalProvider::Submit. It keeps the shared state alive on its own, so
  // it may outlive this stream.
  LocalSink Sink();

  // Waits at most `limit` for events; returns what the engine produced since the last call (at
  // least one event, unless the generation ended). After the last event `end` is set. Errors:
  // the generation's own (as the engine reported it), kDeadlineExceeded when nothing came
  // within `limit`.
  boost::asio::awaitable<Result<std::vector<StreamEvent>>> Next(std::chrono::milliseconds limit,
                                                                bool& end);

 private:
  struct State;

 public:
  // While one lives on a thread, the streams that thread writes to ring their readers when it
  // ends, once each, not at every event. The engine thread holds one over a step: the step's
  // tokens for every caller go out together after it, rather than one wakeup of the HTTP
  // threads per caller while the step still samples the others. (So an end the step decides
  // before its forward pass, a cancelled or refused request's, also waits for the pass.) An
  // inner one is a no-op. Never keep one across a co_await: it belongs to its thread.
  class HeldRings {
   public:
    HeldRings();
    ~HeldRings();
    HeldRings(const HeldRings&) = delete;
    HeldRings& operator=(const HeldRings&) = delete;

   private:
    friend class LocalStream;
    // s's ring: held when this thread holds rings, else now.
    static void RingOrHold(const std::shared_ptr<State>& s);

    std::vector<std::shared_ptr<State>> owed_;
  };

 private:
  std::shared_ptr<State> state_;
};

}  // namespace iris::gateway::providers

// Redis from the request coroutines of one io_context without blocking it: one connection per
// io_context, commands written as they come (those issued while a write is in flight leave
// together: a pipeline), replies handed back in the order sent. hiredis formats the commands
// and parses the replies; this file is the transport, the deadlines and the reconnects.
//
// A pipe belongs to one io_context run by one thread (the server's workers are); RedisPipeFor
// finds or makes it. It closes with its io_context.
#pragma once

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

struct redisReply;
struct redisReader;

namespace iris::gateway::access {

struct RedisReplyDeleter {
  void operator()(redisReply* r) const;
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyDeleter>;

// Where Redis is (from `state: redis://[user:password@]HOST:PORT/DB`).
struct RedisEndpoint {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string user{};
  std::string password{};
  std::string where{};  // HOST:PORT/DB, for messages: never the password
};

// Connecting may take this long; a command waits this long for its reply (a dead Redis costs a
// caller at most that).
inline constexpr std::chrono::milliseconds kRedisConnectTimeout{300};
inline constexpr std::chrono::milliseconds kRedisCommandTimeout{1000};

// The commands every new connection sends first: AUTH when the URL has a password, SELECT when
// it names a database other than 0.
std::vector<std::vector<std::string>> RedisPreamble(const RedisEndpoint& endpoint);

// A Redis error reply as a Status (kInternal, Redis's message), or OK.
Status RedisReplyError(const redisReply& r, const std::string& where);

// A Lua script and its SHA-1 (EVALSHA; EVAL with the text when Redis does not know it).
struct RedisScript {
  explicit RedisScript(std::string lua);
  std::string text;
  std::string sha;
};

// One script call: its keys and arguments.
struct RedisCall {
  std::vector<std::string> keys{};
  std::vector<std::string> args{};
};

// The command that runs a batch script once for many calls. A batch script takes KEYS = every
// call's keys in order, and ARGV = the number of calls, then for each its key count, argument
// count and arguments; it returns an array, one value a call.
std::vector<std::string> RedisBatchCommand(const RedisScript& script, bool by_sha,
                                           const std::vector<const RedisCall*>& calls);

class RedisPipe : public std::enable_shared_from_this<RedisPipe> {
 public:
  RedisPipe(boost::asio::any_io_executor ex, RedisEndpoint endpoint);
  ~RedisPipe();

  // One command's reply: a Redis error reply is kInternal with Redis's message; kUnavailable
  // when Redis cannot be reached or has not answered in time (every command waiting on the
  // connection then fails with it, and the next one connects again).
  boost::asio::awaitable<Result<RedisReply>> Call(std::vector<std::string> args);

  // What a batched call gets: its element of the batch's reply (valid during the call), or
  // the batch's failure. Runs on this pipe's io_context.
  struct ElementDone {
    virtual ~ElementDone() = default;
    virtual void Invoke(Result<const redisReply*> r) = 0;
  };
  template <typename F>
  struct ElementDoneOf final : ElementDone {
    explicit ElementDoneOf(F&& f) : fn(std::move(f)) {}
    void Invoke(Result<const redisReply*> r) override { fn(std::move(r)); }
    F fn;
  };
  // Calls of one batch script (RedisBatchCommand) made in the same turn of the io_context go
  // to Redis as one EVALSHA (at most kMaxBatch calls each): Redis runs the script once, and
  // the script reads and writes each key once for all of them. Must be called on the pipe's
  // io_context.
  void EvalBatched(const RedisScript* script, RedisCall call, std::unique_ptr<ElementDone> done);
  static constexpr size_t kMaxBatch = 256;

  // Closes the connection; commands waiting are dropped (their io_context is going away).
  void Close();

 public:  // (for the initiation in redis_pipe.cc)
  // A waiting coroutine's completion handler, type-erased.
  struct HandlerBase {
    virtual ~HandlerBase() = default;
    virtual void Invoke(Result<RedisReply> r) = 0;
  };
  template <typename H>
  struct HandlerOf final : HandlerBase {
    explicit HandlerOf(H&& h) : handler(std::move(h)) {}
    void Invoke(Result<RedisReply> r) override { std::move(handler)(std::move(r)); }
    H handler;
  };
  using Handler = std::unique_ptr<HandlerBase>;
  void Enqueue(std::vector<std::string> args, Handler done);

 private:
  struct Waiter {
    Handler done;
    std::chrono::steady_clock::time_point sent;
    std::string command;  // as sent (RESP)
    bool resent = false;
  };
  // One connection's state; handlers of a connection that failed find it replaced and stop.
  struct Conn;

  void Connect();
  // Closes the connection (its handlers find it gone and stop); what was not written is dropped.
  void DropConnection();
  void Write(const std::shared_ptr<Conn>& c);
  void Read(const std::shared_ptr<Conn>& c);
  void Fail(const std::string& why);
  void ArmTimer();
  void OnTimer();
  void Complete(Handler h, Result<RedisReply> r);

  struct Batch {
    const RedisScript* script = nullptr;
    std::vector<RedisCall> calls;
    std::vector<std::unique_ptr<ElementDone>> done;
  };
  void Flush();
  void SendBatch(std::shared_ptr<Batch> batch, bool by_sha);

  boost::asio::any_io_executor ex_;
  std::vector<Batch> batches_;  // made this turn, not sent yet
  bool flush_posted_ = false;
  RedisEndpoint endpoint_;
  std::shared_ptr<Conn> conn_;  // null: not connected
  std::string out_;             // formatted commands not yet written
  std::deque<Waiter> waiting_;  // in the order sent
  boost::asio::steady_timer timer_;
  bool timer_armed_ = false;
  std::chrono::steady_clock::time_point connect_started_{};
};

// The pipe to `endpoint` on the io_context of `ex`, one per `owner` (an id of the caller's
// choosing, one per RedisState).
std::shared_ptr<RedisPipe> RedisPipeFor(const boost::asio::any_io_executor& ex, uint64_t owner,
                                        const RedisEndpoint& endpoint);

}  // namespace iris::gateway::access

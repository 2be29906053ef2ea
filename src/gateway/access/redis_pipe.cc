#include "gateway/access/redis_pipe.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <mutex>
#include <unordered_map>

#include "base/hex.h"

namespace iris::gateway::access {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

void RedisReplyDeleter::operator()(redisReply* r) const { freeReplyObject(r); }

std::vector<std::vector<std::string>> RedisPreamble(const RedisEndpoint& endpoint) {
  std::vector<std::vector<std::string>> out;
  if (!endpoint.password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!endpoint.user.empty()) auth.push_back(endpoint.user);
    auth.push_back(endpoint.password);
    out.push_back(std::move(auth));
  }
  if (endpoint.db != 0) out.push_back({"SELECT", std::to_string(endpoint.db)});
  return out;
}

Status RedisReplyError(const redisReply& r, const std::string& where) {
  if (r.type != REDIS_REPLY_ERROR) return OkStatus();
  return Status(ErrorCode::kInternal, "Redis " + where + ": " + std::string(r.str, r.len));
}

struct RedisPipe::Conn {
  explicit Conn(const asio::any_io_executor& ex) : socket(ex), resolver(ex) {}
  ~Conn() { redisReaderFree(reader); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  tcp::socket socket;
  tcp::resolver resolver;
  redisReader* reader = redisReaderCreate();
  bool open = false;     // connected (else still connecting)
  bool writing = false;  // write_buf is on its way
  bool reading = false;  // a read is pending (only while replies are due: an idle connection
                         // holds no operation, so that its io_context can run out of work)
  bool waking = false;   // used again after being idle, and no reply since: if it turns out
                         // to be dead (Redis restarted meanwhile), its commands go again on a
                         // new connection
  int preamble = 0;      // replies to AUTH / SELECT still to come
  std::string write_buf;
  std::array<char, 16384> read_buf{};
};

namespace {

// Appends the RESP form of a command to `out`.
bool Format(const std::vector<std::string>& args, std::string& out) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  const int len =
      redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), argv.data(), lens.data());
  if (len < 0 || cmd == nullptr) return false;
  out.append(cmd, static_cast<size_t>(len));
  redisFreeCommand(cmd);
  return true;
}

std::string Millis(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

}  // namespace

RedisPipe::RedisPipe(asio::any_io_executor ex, RedisEndpoint endpoint)
    : ex_(std::move(ex)), endpoint_(std::move(endpoint)), timer_(ex_) {}

RedisPipe::~RedisPipe() = default;

namespace {

// Hands a waiting coroutine's handler to its pipe.
struct Initiate {
  std::shared_ptr<RedisPipe> pipe;
  template <typename H>
  void operator()(H handler, std::vector<std::string> command) const {
    pipe->Enqueue(std::move(command),
                  std::make_unique<RedisPipe::HandlerOf<H>>(std::move(handler)));
  }
};

}  // namespace

// Not a coroutine itself: the awaitable async_initiate makes holds the initiation (GCC 12
// mishandles temporaries inside co_await expressions).
asio::awaitable<Result<RedisReply>> RedisPipe::Call(std::vector<std::string> args) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<RedisReply>)>(
      Initiate{shared_from_this()}, asio::use_awaitable, std::move(args));
}

void RedisPipe::Enqueue(std::vector<std::string> args, Handler done) {
  std::string command;
  if (!Format(args, command)) {
    Complete(std::move(done), Status(ErrorCode::kInternal, "a Redis command could not be formed"));
    return;
  }
  if (conn_ && conn_->open && waiting_.empty()) conn_->waking = true;
  out_ += command;
  waiting_.push_back(Waiter{std::move(done), Clock::now(), std::move(command)});
  if (!conn_) {
    Connect();
  } else if (conn_->open) {
    Write(conn_);
    if (!conn_->reading) Read(conn_);
  }
  ArmTimer();
}

void RedisPipe::Connect() {
  auto c = std::make_shared<Conn>(ex_);
  conn_ = c;
  connect_started_ = Clock::now();
  // AUTH and SELECT go first; their replies are checked here, not handed to a caller.
  std::string preamble;
  for (const std::vector<std::string>& cmd : RedisPreamble(endpoint_)) {
    if (Format(cmd, preamble)) ++c->preamble;
  }
  out_.insert(0, preamble);
  std::shared_ptr<RedisPipe> self = shared_from_this();
  c->resolver.async_resolve(
      endpoint_.host, std::to_string(endpoint_.port),
      [self, c](const boost::system::error_code& ec, const tcp::resolver::results_type& results) {
        if (c != self->conn_) return;
        if (ec) return self->Fail("cannot connect: " + ec.message());
        asio::async_connect(
            c->socket, results,
            [self, c](const boost::system::error_code& error, const tcp::endpoint&) {
              if (c != self->conn_) return;
              if (error) return self->Fail("cannot connect: " + error.message());
              boost::system::error_code ignored;
              c->socket.set_option(tcp::no_delay(true), ignored);
              c->open = true;
              self->Write(c);
              self->Read(c);
            });
      });
}

void RedisPipe::Write(const std::shared_ptr<Conn>& c) {
  if (c->writing || out_.empty()) return;
  c->writing = true;
  c->write_buf.swap(out_);
  out_.clear();
  std::shared_ptr<RedisPipe> self = shared_from_this();
  asio::async_write(c->socket, asio::buffer(c->write_buf),
                    [self, c](const boost::system::error_code& ec, size_t) {
                      if (c != self->conn_) return;
                      c->writing = false;
                      if (ec) return self->Fail("connection lost: " + ec.message());
                      c->write_buf.clear();
                      self->Write(c);
                    });
}

void RedisPipe::Read(const std::shared_ptr<Conn>& c) {
  std::shared_ptr<RedisPipe> self = shared_from_this();
  c->reading = true;
  c->socket.async_read_some(
      asio::buffer(c->read_buf), [self, c](const boost::system::error_code& ec, size_t n) {
        if (c != self->conn_) return;
        c->reading = false;
        if (ec == asio::error::eof) return self->Fail("Redis closed the connection");
        if (ec) return self->Fail("connection lost: " + ec.message());
        if (redisReaderFeed(c->reader, c->read_buf.data(), n) != REDIS_OK) {
          return self->Fail("unreadable reply");
        }
        for (;;) {
          void* raw = nullptr;
          if (redisReaderGetReply(c->reader, &raw) != REDIS_OK) {
            return self->Fail("unreadable reply");
          }
          if (raw == nullptr) break;
          RedisReply reply(static_cast<redisReply*>(raw));
          if (c->preamble > 0) {
            --c->preamble;
            if (Status st = RedisReplyError(*reply, self->endpoint_.where); !st.ok()) {
              return self->Fail("the connection was refused: " +
                                std::string(reply->str, reply->len));
            }
            continue;
          }
          if (self->waiting_.empty()) return self->Fail("a reply nobody asked for");
          c->waking = false;
          Handler done = std::move(self->waiting_.front().done);
          self->waiting_.pop_front();
          Status st = RedisReplyError(*reply, self->endpoint_.where);
          self->Complete(std::move(done),
                         st.ok() ? Result<RedisReply>(std::move(reply)) : Result<RedisReply>(st));
        }
        if (c->preamble > 0 || !self->waiting_.empty()) {
          self->Read(c);
        } else {
          // Idle: nothing pending on this io_context for it (the deadline either).
          self->timer_.cancel();
          self->timer_armed_ = false;
        }
      });
}

void RedisPipe::Complete(Handler h, Result<RedisReply> r) {
  // Posted, never run here: the caller's coroutine may send again, which must not happen in
  // the middle of reading replies. (Its io_context is this pipe's: RedisPipeFor.)
  asio::post(ex_, [h = std::move(h), r = std::move(r)]() mutable { h->Invoke(std::move(r)); });
}

void RedisPipe::DropConnection() {
  if (conn_) {
    boost::system::error_code ignored;
    conn_->resolver.cancel();
    conn_->socket.close(ignored);
    conn_.reset();
  }
  out_.clear();
}

void RedisPipe::Fail(const std::string& why) {
  const bool stale = conn_ && conn_->waking;
  DropConnection();
  if (stale && !waiting_.empty() && !waiting_.front().resent) {
    // The connection died while idle: none of these reached Redis. Once more, on a new one,
    // each with its full time again.
    const Clock::time_point now = Clock::now();
    for (Waiter& w : waiting_) {
      out_ += w.command;
      w.resent = true;
      w.sent = now;
    }
    Connect();
    ArmTimer();
    return;
  }
  std::deque<Waiter> failed;
  failed.swap(waiting_);
  const Status st(ErrorCode::kUnavailable, "Redis " + endpoint_.where + ": " + why);
  for (Waiter& w : failed) Complete(std::move(w.done), st);
}

void RedisPipe::ArmTimer() {
  if (timer_armed_ || waiting_.empty()) return;
  timer_armed_ = true;
  const Clock::time_point deadline = conn_ && !conn_->open
                                         ? connect_started_ + kRedisConnectTimeout
                                         : waiting_.front().sent + kRedisCommandTimeout;
  timer_.expires_at(deadline);
  std::shared_ptr<RedisPipe> self = shared_from_this();
  timer_.async_wait([self](const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted) return;
    self->timer_armed_ = false;
    self->OnTimer();
  });
}

void RedisPipe::OnTimer() {
  if (waiting_.empty()) return;
  const Clock::time_point now = Clock::now();
  if (conn_ && !conn_->open && now >= connect_started_ + kRedisConnectTimeout) {
    return Fail("cannot connect: no answer within " + Millis(kRedisConnectTimeout));
  }
  if (conn_ && conn_->open && now >= waiting_.front().sent + kRedisCommandTimeout) {
    return Fail("no reply within " + Millis(kRedisCommandTimeout));
  }
  ArmTimer();
}

RedisScript::RedisScript(std::string lua) : text(std::move(lua)) {
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), md);
  sha = HexEncode(md, sizeof(md));
}

std::vector<std::string> RedisBatchCommand(const RedisScript& script, bool by_sha,
                                           const std::vector<const RedisCall*>& calls) {
  std::vector<std::string> cmd{by_sha ? "EVALSHA" : "EVAL", by_sha ? script.sha : script.text, ""};
  size_t num_keys = 0;
  for (const RedisCall* c : calls) {
    cmd.insert(cmd.end(), c->keys.begin(), c->keys.end());
    num_keys += c->keys.size();
  }
  cmd[2] = std::to_string(num_keys);
  cmd.push_back(std::to_string(calls.size()));
  for (const RedisCall* c : calls) {
    cmd.push_back(std::to_string(c->keys.size()));
    cmd.push_back(std::to_string(c->args.size()));
    cmd.insert(cmd.end(), c->args.begin(), c->args.end());
  }
  return cmd;
}

void RedisPipe::EvalBatched(const RedisScript* script, RedisCall call,
                            std::unique_ptr<ElementDone> done) {
  Batch* batch = nullptr;
  for (Batch& b : batches_) {
    if (b.script == script && b.calls.size() < kMaxBatch) batch = &b;
  }
  if (batch == nullptr) {
    batches_.emplace_back();
    batch = &batches_.back();
    batch->script = script;
  }
  batch->calls.push_back(std::move(call));
  batch->done.push_back(std::move(done));
  if (!flush_posted_) {
    // After every coroutine ready in this turn has had its say.
    flush_posted_ = true;
    asio::post(ex_, [self = shared_from_this()] { self->Flush(); });
  }
}

void RedisPipe::Flush() {
  flush_posted_ = false;
  std::vector<Batch> batches;
  batches.swap(batches_);
  for (Batch& b : batches) SendBatch(std::make_shared<Batch>(std::move(b)), true);
}

void RedisPipe::SendBatch(std::shared_ptr<Batch> batch, bool by_sha) {
  std::vector<const RedisCall*> calls;
  calls.reserve(batch->calls.size());
  for (const RedisCall& c : batch->calls) calls.push_back(&c);
  std::vector<std::string> cmd = RedisBatchCommand(*batch->script, by_sha, calls);
  std::shared_ptr<RedisPipe> self = shared_from_this();
  auto on_reply = [self, batch, by_sha](Result<RedisReply> r) {
    if (by_sha && !r.ok() && r.status().message().find("NOSCRIPT") != std::string::npos) {
      self->SendBatch(batch, false);  // a restarted Redis: the script's text this time
      return;
    }
    if (r.ok() && ((*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != batch->calls.size())) {
      r = Status(ErrorCode::kUnavailable,
                 "Redis " + self->endpoint_.where + ": unexpected reply to a batch");
    }
    for (size_t i = 0; i < batch->calls.size(); ++i) {
      if (r.ok()) {
        batch->done[i]->Invoke(static_cast<const redisReply*>((*r)->element[i]));
      } else {
        batch->done[i]->Invoke(r.status());
      }
    }
  };
  Enqueue(std::move(cmd), std::make_unique<HandlerOf<decltype(on_reply)>>(std::move(on_reply)));
}

void RedisPipe::Close() {
  DropConnection();
  waiting_.clear();
  batches_.clear();
  timer_.cancel();
}

namespace {

// The pipes of one io_context, made on first use and closed when it shuts down.
class PipeService final : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;
  explicit PipeService(asio::execution_context& ctx) : service(ctx) {}

  std::shared_ptr<RedisPipe> Get(const asio::any_io_executor& ex, uint64_t owner,
                                 const RedisEndpoint& endpoint) {
    std::lock_guard lock(mu_);
    std::shared_ptr<RedisPipe>& p = pipes_[owner];
    if (!p) p = std::make_shared<RedisPipe>(ex, endpoint);
    return p;
  }

 private:
  void shutdown() override {
    std::lock_guard lock(mu_);
    for (auto& [owner, p] : pipes_) p->Close();
    pipes_.clear();
  }

  std::mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<RedisPipe>> pipes_;
};

}  // namespace

std::shared_ptr<RedisPipe> RedisPipeFor(const asio::any_io_executor& ex, uint64_t owner,
                                        const RedisEndpoint& endpoint) {
  asio::execution_context& ctx = asio::query(ex, asio::execution::context);
  if (!asio::has_service<PipeService>(ctx)) {
    // Services shut down in the reverse order they were made: the socket and timer services
    // must exist before this one, so that the pipes close while they still run.
    tcp::socket socket(ex);
    asio::steady_timer timer(ex);
  }
  return asio::use_service<PipeService>(ctx).Get(ex, owner, endpoint);
}

}  // namespace iris::gateway::access

// Test helpers of the proxy's tests: fake upstreams (real HTTP servers speaking OpenAI's wire
// format) and a gateway assembled from YAML on a loopback port, called over a raw socket.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/http/test_util.h"
#include "gateway/proxy/assemble.h"

namespace iris::gateway::proxy::testing_util {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

using FakeHandler = std::function<asio::awaitable<void>(http::Request&, http::ResponseWriter&)>;

// A fake upstream: a real HTTP server whose behaviour the test sets; counts the requests.
class FakeUpstream {
 public:
  explicit FakeUpstream(FakeHandler handler) : handler_(std::move(handler)) {
    http::ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.threads = 1;
    server_ = std::make_unique<http::Server>(
        o, [this](http::Request& req, http::ResponseWriter& w) -> asio::awaitable<void> {
          requests_.fetch_add(1);
          co_await handler_(req, w);
        });
    EXPECT_TRUE(server_->Start().ok());
  }
  ~FakeUpstream() {
    server_->Shutdown(0ms);
    server_->Wait();
  }
  std::string base_url() const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + "/v1";
  }
  int requests() const { return requests_.load(); }

 private:
  FakeHandler handler_;
  std::atomic<int> requests_{0};
  std::unique_ptr<http::Server> server_;
};

// The master key of the access tests' gateways (IRIS_MASTER_KEY).
constexpr const char* kMaster = "master-key-0123456789abcdef";

inline http::Headers Json() { return http::Headers{{"content-type", "application/json"}}; }
inline http::Headers Sse() { return http::Headers{{"content-type", "text/event-stream"}}; }

inline std::string Completion(std::string_view text) {
  json::object msg{{"role", "assistant"}, {"content", text}};
  json::object choice{{"index", 0}, {"message", msg}, {"finish_reason", "stop"}};
  json::object usage{{"prompt_tokens", 5}, {"completion_tokens", 2}, {"total_tokens", 7}};
  json::object body{{"id", "chatcmpl-1"}, {"object", "chat.completion"},    {"created", 1700000000},
                    {"model", "m"},       {"choices", json::array{choice}}, {"usage", usage}};
  return json::serialize(body);
}

inline std::string Chunk(std::string_view text) {
  json::object delta{{"content", text}};
  json::object choice{{"index", 0}, {"delta", delta}, {"finish_reason", nullptr}};
  json::object c{{"id", "chatcmpl-1"},
                 {"object", "chat.completion.chunk"},
                 {"created", 1700000000},
                 {"model", "m"},
                 {"choices", json::array{choice}}};
  return "data: " + json::serialize(c) + "\n\n";
}

inline std::string FinalChunks() {
  json::object choice{{"index", 0}, {"delta", json::object{}}, {"finish_reason", "stop"}};
  json::object c{{"id", "chatcmpl-1"},
                 {"object", "chat.completion.chunk"},
                 {"created", 1700000000},
                 {"model", "m"},
                 {"choices", json::array{choice}}};
  return "data: " + json::serialize(c) + "\n\ndata: [DONE]\n\n";
}

inline FakeHandler Answers(std::string text) {
  return [text](http::Request& req, http::ResponseWriter& w) -> asio::awaitable<void> {
    if (req.body.find("\"stream\":true") != std::string::npos) {
      co_await w.StartStream(200, Sse());
      co_await w.Write(Chunk(text));
      co_await w.Write(FinalChunks());
      co_await w.Finish();
    } else {
      co_await w.Send(200, Json(), Completion(text));
    }
  };
}

inline FakeHandler Fails(int status, std::string body = R"({"error":{"message":"no"}})") {
  return [status, body](http::Request&, http::ResponseWriter& w) -> asio::awaitable<void> {
    co_await w.Send(status, Json(), body);
  };
}

// The gateway under test, from a YAML configuration naming the fakes.
class TestGateway {
 public:
  // `env`: the variables the configuration reads (IRIS_MASTER_KEY, ...); `db`: the store
  // ("none": no request log and no key table).
  explicit TestGateway(const std::string& yaml, std::map<std::string, std::string> env = {},
                       const std::string& db = "none") {
    auto config = config::LoadConfigString(yaml, [env](std::string_view name) {
      auto it = env.find(std::string(name));
      return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
    });
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    AssembleFlags flags;
    flags.listen = "127.0.0.1:0";
    flags.db = db;
    flags.threads = 2;
    auto assembled = AssembleGateway(*config, flags);
    EXPECT_TRUE(assembled.ok()) << assembled.status().ToString();
    assembly_ = std::move(assembled).value();
    EXPECT_TRUE(assembly_->server->Start().ok());
  }
  ~TestGateway() {
    assembly_->server->Shutdown(0ms);
    assembly_->server->Wait();
  }
  http::testing::RawResponse Post(const std::string& body) {
    return Call("POST", "/v1/chat/completions", body, {});
  }
  // Any request; `headers` are "Name: value" lines without CRLF.
  http::testing::RawResponse Call(const std::string& method, const std::string& path,
                                  const std::string& body,
                                  const std::vector<std::string>& headers) {
    http::testing::RawClient c;
    EXPECT_TRUE(c.Connect(assembly_->server->port(), 10000));
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!body.empty()) req += "Content-Type: application/json\r\n";
    for (const std::string& h : headers) req += h + "\r\n";
    req += "Content-Length: " + std::to_string(body.size());
    req += "\r\nConnection: close\r\n\r\n";
    req += body;
    EXPECT_TRUE(c.Send(req));
    return c.ReadResponse();
  }
  Assembly& assembly() { return *assembly_; }

 private:
  std::unique_ptr<Assembly> assembly_;
};

inline json::value Body(const http::testing::RawResponse& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  EXPECT_FALSE(ec) << r.body;
  return v;
}

}  // namespace iris::gateway::proxy::testing_util

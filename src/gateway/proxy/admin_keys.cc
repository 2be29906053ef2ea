// The admin API (master key only): /admin/keys to manage keys, as `iris keys` does, and
// /admin/login for the dashboard's session cookie. Store work runs on the query thread.
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include "base/json.h"
#include "gateway/access/key_admin.h"
#include "gateway/api/errors.h"
#include "gateway/proxy/admin_reply.h"
#include "gateway/proxy/call.h"

namespace iris::gateway::proxy {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::awaitable;
using asio::use_awaitable;

namespace {

// One /admin/keys request against the store (blocking).
AdminReply KeysQuery(const std::string& store_spec, const std::string& method,
                     const std::string& id, const std::string& body) {
  auto store = observe::OpenStore(store_spec);
  if (!store.ok()) return ErrorReply(store.status());
  observe::Store& s = **store;
  const int64_t now = NowUnixMs();
  if (id.empty() && method == "GET") {
    auto keys = s.FetchKeys();
    if (!keys.ok()) return ErrorReply(keys.status());
    json::array data;
    for (const auto& k : *keys) data.push_back(access::KeyJson(k, now));
    return {200, SerializeJson(json::object{{"object", "list"}, {"data", std::move(data)}})};
  }
  if (id.empty() && method == "POST") {
    auto v = ParseAdminBody(body);
    if (!v.ok()) return ErrorReply(v.status());
    auto changes = access::KeyChangesFromJson(*v);
    if (!changes.ok()) return ErrorReply(changes.status());
    auto created = access::CreateKey(s, *changes, now);
    if (!created.ok()) return ErrorReply(created.status());
    json::object o = access::KeyJson(created->record, now);
    o["key"] = created->plaintext;  // the only time it is shown
    return {201, SerializeJson(o)};
  }
  if (!id.empty() && method == "GET") {
    auto k = access::FindKey(s, id);
    if (!k.ok()) return ErrorReply(k.status());
    return {200, SerializeJson(access::KeyJson(*k, now))};
  }
  if (!id.empty() && (method == "PATCH" || method == "POST")) {
    auto v = ParseAdminBody(body);
    if (!v.ok()) return ErrorReply(v.status());
    auto changes = access::KeyChangesFromJson(*v);
    if (!changes.ok()) return ErrorReply(changes.status());
    auto k = access::UpdateKey(s, id, *changes, now);
    if (!k.ok()) return ErrorReply(k.status());
    return {200, SerializeJson(access::KeyJson(*k, now))};
  }
  if (!id.empty() && method == "DELETE") {
    auto k = access::RevokeKey(s, id, now);
    if (!k.ok()) return ErrorReply(k.status());
    return {200, SerializeJson(access::KeyJson(*k, now))};
  }
  GatewayError e = Err(ErrorClass::kNotFound,
                       "no route for " + method + " /admin/keys" + (id.empty() ? "" : "/" + id) +
                           " (GET, POST; GET, PATCH, DELETE /admin/keys/ID)");
  return {404, api::OpenAIErrorBody(e)};
}

}  // namespace

awaitable<void> Gateway::AdminKeys(const http::Request& req, http::ResponseWriter& w) {
  // /admin/keys or /admin/keys/ID (an id or a name: letters, digits, . _ -)
  std::string id;
  if (req.path.size() > std::string_view("/admin/keys/").size()) {
    id = req.path.substr(std::string_view("/admin/keys/").size());
    if (Status st = access::ValidateKeyName(id); !st.ok()) {
      co_await w.Send(400, JsonHeaders(), ErrorReply(st).body);
      co_return;
    }
  }
  const std::string method = req.method;
  const std::string body = req.body;
  const std::string store = options_.store;
  auto worker = co_await asio::this_coro::executor;
  co_await asio::post(query_pool_, use_awaitable);
  AdminReply reply = KeysQuery(store, method, id, body);
  // This instance sees its own change at once; the others within auth.key_refresh_ms.
  if (reply.status < 300 && method != "GET" && options_.access != nullptr) {
    (void)options_.access->RefreshNow();
  }
  co_await asio::post(worker, use_awaitable);
  co_await w.Send(reply.status, JsonHeaders(), std::move(reply.body));
}

awaitable<void> Gateway::AdminLogin(const http::Request& req, http::ResponseWriter& w) {
  // POST {"master_key": "..."} -> a session cookie for the dashboard; POST /admin/logout
  // clears it.
  if (req.path == "/admin/logout") {
    http::Headers h = JsonHeaders();
    h.Add("set-cookie", "iris_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    co_await w.Send(200, std::move(h), R"({"ok":true})");
    co_return;
  }
  http::Headers probe;
  auto v = ParseAdminBody(req.body);
  if (v.ok() && v->is_object()) {
    if (const json::value* k = v->as_object().if_contains("master_key"); k && k->is_string()) {
      probe.Add("x-api-key", std::string(k->as_string()));
    }
  }
  double retry_after_s = 0;
  const access::Access::AdminVerdict verdict =
      options_.access == nullptr ? access::Access::AdminVerdict::kNoKey
                                 : options_.access->CheckAdmin(probe, req.remote, retry_after_s);
  if (verdict == access::Access::AdminVerdict::kThrottled) {
    GatewayError e = TooManyWrongKeys(retry_after_s);
    http::Headers h = JsonHeaders();
    h.Add("retry-after", std::to_string(static_cast<int64_t>(e.retry_after_s.value_or(1))));
    co_await w.Send(429, std::move(h), api::OpenAIErrorBody(e));
    co_return;
  }
  if (verdict != access::Access::AdminVerdict::kAdmin) {
    GatewayError e = Err(ErrorClass::kAuthentication, "that is not this gateway's master key");
    co_await w.Send(401, JsonHeaders(), api::OpenAIErrorBody(e));
    co_return;
  }
  http::Headers h = JsonHeaders();
  std::string cookie = options_.access->SessionCookie(NowUnixMs());
  // Behind a TLS-terminating proxy the browser must never send the session over plain HTTP.
  // (A caller who claims https on plain HTTP only loses its own session.)
  if (req.headers.Get("x-forwarded-proto") == "https") cookie += "; Secure";
  h.Add("set-cookie", std::move(cookie));
  co_await w.Send(200, std::move(h), R"({"ok":true})");
}

}  // namespace iris::gateway::proxy

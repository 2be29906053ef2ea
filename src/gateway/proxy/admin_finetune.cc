// /admin/finetune: fine-tuning jobs of the local model run by the server (master key only;
// tuning/jobs.h runs them). POST starts one, GET lists them or follows one (its loss curve),
// DELETE stops one at its next step boundary. GET /api/finetune is the dashboard's view: every
// job, the newest with its curve.
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "base/json.h"
#include "gateway/api/errors.h"
#include "gateway/proxy/admin_reply.h"
#include "gateway/proxy/call.h"

namespace iris::gateway::proxy {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::awaitable;
using asio::use_awaitable;

namespace {

std::string ListBody(const std::vector<tuning::JobView>& jobs, bool newest_points) {
  json::array data;
  for (size_t i = 0; i < jobs.size(); ++i) {
    data.push_back(tuning::JobJson(jobs[i], newest_points && i == 0));
  }
  return SerializeJson(json::object{{"object", "list"}, {"data", std::move(data)}});
}

AdminReply FinetuneQuery(tuning::Jobs& jobs, const std::string& method, const std::string& path,
                         const std::string& body) {
  if (path == "/api/finetune") return {200, ListBody(jobs.List(true), true)};
  constexpr std::string_view kBase = "/admin/finetune";
  std::string id = path.size() > kBase.size() + 1 ? path.substr(kBase.size() + 1) : "";
  if (id.size() > 64) id.resize(64);
  if (id.empty() && method == "GET") return {200, ListBody(jobs.List(false), false)};
  if (id.empty() && method == "POST") {
    auto v = ParseAdminBody(body);
    if (!v.ok()) return ErrorReply(v.status());
    auto request = tuning::ParseJobRequest(*v);
    if (!request.ok()) return ErrorReply(request.status());
    auto started = jobs.Start(std::move(request).value());
    // (A job already running, or an adapter already there: a conflict.)
    if (!started.ok()) return ErrorReply(started.status(), 409);
    return {202, SerializeJson(tuning::JobJson(*started, false))};
  }
  if (!id.empty() && method == "GET") {
    auto job = jobs.Get(id);
    if (!job.ok()) return ErrorReply(job.status());
    return {200, SerializeJson(tuning::JobJson(*job, true))};
  }
  if (!id.empty() && method == "DELETE") {
    auto job = jobs.Cancel(id);
    if (!job.ok()) return ErrorReply(job.status());
    return {200, SerializeJson(tuning::JobJson(*job, false))};
  }
  GatewayError e = Err(ErrorClass::kNotFound,
                       "no route for " + method + " " + path.substr(0, 100) +
                           " (GET, POST /admin/finetune; GET, DELETE /admin/finetune/ID)");
  return {404, api::OpenAIErrorBody(e)};
}

}  // namespace

awaitable<void> Gateway::AdminFinetune(const http::Request& req, http::ResponseWriter& w) {
  if (options_.finetune == nullptr) {
    if (req.path == "/api/finetune") {
      co_await w.Send(200, JsonHeaders(), R"({"object":"list","data":[]})");
      co_return;
    }
    GatewayError e = Err(ErrorClass::kNotFound,
                         "this server has no local model to fine-tune (providers.local, or "
                         "iris serve --model)");
    co_await w.Send(404, JsonHeaders(), api::OpenAIErrorBody(e));
    co_return;
  }
  const std::string method = req.method;
  const std::string path = req.path;
  const std::string body = req.body;
  // (Starting a job touches the file system: off the worker, like every store query.)
  auto worker = co_await asio::this_coro::executor;
  co_await asio::post(query_pool_, use_awaitable);
  AdminReply reply = FinetuneQuery(*options_.finetune, method, path, body);
  co_await asio::post(worker, use_awaitable);
  co_await w.Send(reply.status, JsonHeaders(), std::move(reply.body));
}

}  // namespace iris::gateway::proxy

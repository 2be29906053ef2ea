// What the admin endpoints (admin_keys.cc, admin_finetune.cc) answer: a status and a JSON body,
// built on the query thread and sent from the worker. Internal to proxy/.
#pragma once

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <string>

#include "base/status.h"
#include "gateway/api/errors.h"

namespace iris::gateway::proxy {

struct AdminReply {
  int status = 200;
  std::string body;
};

// The error body of `st`, with the status of its class; a kFailedPrecondition answers
// `precondition_status` (409 where it means a conflict with what exists).
inline AdminReply ErrorReply(const Status& st, int precondition_status = 400) {
  GatewayError e = api::FromStatus(st);
  const int status = st.code() == ErrorCode::kFailedPrecondition ? precondition_status
                                                                 : api::HttpStatus(e.error_class);
  return {status, api::OpenAIErrorBody(e)};
}

// A request body as JSON ("" reads as {}).
inline Result<boost::json::value> ParseAdminBody(const std::string& body) {
  boost::system::error_code ec;
  boost::json::value v =
      boost::json::parse(body.empty() ? std::string_view("{}") : std::string_view(body), ec);
  if (ec) return InvalidArgument("the body is not JSON: " + ec.message());
  return v;
}

}  // namespace iris::gateway::proxy

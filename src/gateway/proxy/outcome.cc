#include "gateway/proxy/outcome.h"

#include "base/utf8.h"
#include "gateway/api/errors.h"

namespace iris::gateway::proxy {

namespace {
Outcome FromFailure(GatewayError e, const routing::Failure& f) {
  Outcome o;
  o.kind = f.committed ? Outcome::Kind::kFailedAfterCommit : Outcome::Kind::kFailed;
  o.retryable = routing::IsRetryable(f);
  o.fallback = routing::ShouldFallback(f);
  o.breaker = routing::CountsAgainstBreaker(f);
  // Every failure's message reaches the caller and the request log from here, whatever an
  // upstream put in it (a stream's error event, an answer iris cannot read): no key, and a
  // bounded length. Redacted before the cut, so that no cut leaves part of a key.
  e.message = CutUtf8(api::RedactSecrets(std::move(e.message)), api::kMaxErrorMessageBytes);
  o.error = std::move(e);
  return o;
}
}  // namespace

Outcome ClassifyFailure(GatewayError e, routing::Failure::Kind kind, bool committed) {
  routing::Failure f;
  f.kind = kind;
  f.http_status = e.upstream_status;
  f.committed = committed;
  if (kind == routing::Failure::Kind::kHttpStatus && f.http_status == 0) f.http_status = 500;
  return FromFailure(std::move(e), f);
}

Outcome ClassifyPseudoStatus(GatewayError e, int pseudo_status, bool committed) {
  routing::Failure f;
  f.kind = routing::Failure::Kind::kHttpStatus;
  f.http_status = pseudo_status;
  f.committed = committed;
  Outcome o = FromFailure(std::move(e), f);
  o.breaker = o.breaker && pseudo_status >= 500;
  return o;
}

Outcome CallerFault(const Status& s, bool committed) {
  GatewayError e = api::FromStatus(s);
  if (s.code() == ErrorCode::kOutOfRange) e.error_class = ErrorClass::kPayloadTooLarge;
  Outcome o = ClassifyPseudoStatus(std::move(e), 400, committed);
  o.fallback = false;
  o.breaker = false;
  return o;
}

Outcome ImageFetchFailure(const Status& s, const std::string& provider, bool committed) {
  if (s.code() != ErrorCode::kUnimplemented) return CallerFault(s, committed);
  GatewayError e = api::FromStatus(s);
  e.provider = provider;
  return ClassifyFailure(std::move(e), routing::Failure::Kind::kUnsupported, committed);
}

routing::Failure::Kind KindOf(const Status& s) {
  switch (s.code()) {
    case ErrorCode::kDeadlineExceeded:
      return routing::Failure::Kind::kTimeout;
    case ErrorCode::kDataLoss:
      return routing::Failure::Kind::kMalformed;
    default:
      return routing::Failure::Kind::kConnect;
  }
}

int PseudoStatus(const Status& s) {
  switch (s.code()) {
    case ErrorCode::kUnimplemented:
      return 501;
    case ErrorCode::kResourceExhausted:
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kDeadlineExceeded:
      return 504;
    case ErrorCode::kInternal:
      return 500;
    default:
      return 400;
  }
}

}  // namespace iris::gateway::proxy

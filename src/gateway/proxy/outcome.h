// How one attempt at one target ended, and what the pipeline does next: retry the same target,
// fall over to the next, or answer the caller. Pure functions over routing's table (retry.h);
// the pipeline's attempt files call them and never decide on their own.
#pragma once

#include "base/status.h"
#include "gateway/api/chat.h"
#include "gateway/routing/retry.h"

namespace iris::gateway::proxy {

struct Outcome {
  enum class Kind { kDelivered, kFailed, kFailedAfterCommit } kind = Kind::kFailed;
  GatewayError error;
  bool retryable = false;  // worth another try of the same target
  bool fallback = true;    // worth trying the next target
  bool breaker = false;    // counts against the target's circuit breaker

  static Outcome Delivered() {
    Outcome o;
    o.kind = Kind::kDelivered;
    return o;
  }
};

// An attempt's failure, classified by routing's table. `committed`: bytes of this answer
// already reached the caller (nothing is retried or failed over then).
Outcome ClassifyFailure(GatewayError e, routing::Failure::Kind kind, bool committed);

// Failures that are not an upstream's HTTP answer (the local engine, a request a translator
// cannot express) are classified as the HTTP status that means the same: 400 the caller's
// fault, 501 "this target cannot do it" (fall over, no retry), 503 busy (retry, fall over).
// Only a pseudo status of 500 or more counts against the breaker.
Outcome ClassifyPseudoStatus(GatewayError e, int pseudo_status, bool committed);

// The caller's request cannot be served by any target (a bad or oversized image): 400 or 413,
// no retry, no fallback, no breaker.
Outcome CallerFault(const Status& s, bool committed);

// Image URLs a target needs fetched: when iris does not fetch them (image_fetch off, or too
// many: kUnimplemented), another target that takes URLs itself may (kUnsupported); a URL that
// could not be fetched as an image is the caller's fault.
Outcome ImageFetchFailure(const Status& s, const std::string& provider, bool committed);

// The routing failure kind of a transport or decode error.
routing::Failure::Kind KindOf(const Status& s);

// A local engine failure as the HTTP status that means the same (see ClassifyPseudoStatus).
int PseudoStatus(const Status& s);

}  // namespace iris::gateway::proxy

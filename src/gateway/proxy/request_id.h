// Request ids.
#pragma once

#include <cstdint>
#include <string>

namespace iris::gateway::proxy {

// "req_" + a ULID: 48 bits of Unix milliseconds and 80 random bits in Crockford base32. Ids
// sort by time and never repeat, however long the process runs (the request log's primary
// key relies on it).
std::string NewRequestId();

// "resp_" + 32 hex digits from the system's random source: a Responses API id, which also
// names the caller's kept conversation, so it must not be guessable.
std::string NewResponseId();

}  // namespace iris::gateway::proxy

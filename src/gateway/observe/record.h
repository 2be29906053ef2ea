// What the gateway records about each request and each attempt inside it: the one record
// type the request log, the metrics and the dashboard all read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gateway/api/chat.h"

namespace iris::gateway::observe {

// One try of one target, as the caller's `iris.attempts` and the request log see it.
struct AttemptRecord {
  std::string provider;
  std::string model;
  std::string outcome;  // "ok", "error", "skipped"
  int status = 0;       // upstream HTTP status (0: none, e.g. a connect error or local)
  std::string error;    // empty when ok
  std::string error_class;
  double latency_ms = 0;
  double ttft_ms = -1;  // -1: no token arrived
};

// What a finished request reports, in its final body/chunk and to observers.
struct RequestSummary {
  std::string request_id;
  Dialect dialect = Dialect::kOpenAI;
  int64_t start_unix_ms = 0;  // wall-clock time the request arrived
  std::string caller_key;     // the gateway key's id (empty until keys exist)
  std::string requested_model;
  std::string alias;
  std::string provider;  // the target that answered (empty when none did)
  std::string model;
  bool stream = false;
  int http_status = 200;
  std::string error_class;  // empty on success
  std::string error;
  std::vector<AttemptRecord> attempts;
  double latency_ms = 0;
  double ttft_ms = -1;
  double overhead_ms = 0;  // latency minus time spent waiting on upstreams or the engine
  Usage usage;
  std::optional<double> cost_usd;
  int64_t bytes_in = 0;
  int64_t bytes_out = 0;
  // What the caller should know that did not fail the request (a conversation not kept, ...):
  // sentences, in the `iris` report's `warnings`.
  std::vector<std::string> warnings;
  // On a store_bodies route, an answered request's prompt and answer, each as JSON in OpenAI's
  // chat shape whatever API the caller used (request: {"model", "messages", ...}; answer: a
  // chat.completion). Both empty when not stored.
  std::string request_body;
  std::string response_body;
  // A store_bodies request whose bodies were not kept (larger than limits.max_stored_body_bytes,
  // or holding what OpenAI's shape cannot): counted by the request log.
  bool bodies_not_kept = false;
};

// One gateway API key as the store keeps it: the SHA-256 of the key, never the key itself.
// The rules (generation, hashing, periods, what a caller may do) live in gateway/access.
struct KeyRecord {
  std::string id;        // "key_" + 16 base62 characters: public, in logs and metrics
  std::string name;      // the operator's label
  std::string key_hash;  // lower-case hex SHA-256 of the whole key
  std::string hint;      // "sk-iris-Ab...wxyz": enough to recognise it, useless to use
  int64_t created_unix_ms = 0;
  int64_t updated_unix_ms = 0;
  int64_t expires_unix_ms = 0;          // 0: never
  int64_t revoked_unix_ms = 0;          // 0: not revoked
  std::optional<double> budget_usd;     // none: no budget
  std::string budget_period = "total";  // "day" | "month" (UTC) | "total"
  int64_t rpm = 0;                      // requests per minute; 0: no limit
  int64_t tpm = 0;                      // tokens per minute; 0: no limit
  std::vector<std::string> models;      // the model names it may call; empty: any
};

}  // namespace iris::gateway::observe

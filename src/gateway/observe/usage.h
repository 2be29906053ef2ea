// Spend, counts and latency from the request log, for `iris usage` and the dashboard's JSON
// endpoints. Aggregation happens here, in C++, in one streamed pass over the rows of either
// backend (no row is kept), so SQLite and PostgreSQL give the same numbers. (Doing it in SQL
// with GROUP BY and window functions for the exact percentiles measured 10x slower on
// SQLite: every grouping is another scan and every percentile another sort.)
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "gateway/observe/record.h"
#include "gateway/observe/store.h"

namespace iris::gateway::observe {

// Upper bounds (inclusive, ms) of the latency and TTFT histogram buckets; one more bucket
// counts everything above the last bound (+Inf).
inline constexpr std::array<double, 12> kHistogramBoundsMs = {5,   10,   25,   50,   100,   250,
                                                              500, 1000, 2500, 5000, 10000, 30000};

struct UsageQuery {
  int64_t since_unix_ms = 0;  // inclusive
  int64_t until_unix_ms = 0;  // exclusive; 0: now
  bool by_day = false;        // UTC days, key "YYYY-MM-DD"
  bool by_model = false;      // key "provider/model"; the requested model when no provider answered
  bool by_provider = false;   // key provider; "(none)" when no provider answered
  bool by_key = false;        // key: the API key's id; "(none)" for calls without one
  std::string caller_key{};   // only the requests of this API key (its id); empty: all
};

struct Percentiles {
  // Nearest-rank percentiles; nullopt when there are no samples.
  std::optional<double> p50, p90, p99;
};

struct UsageStats {
  std::string key;    // empty for the totals
  std::string label;  // a readable name for the key (an API key's name), when there is one
  int64_t requests = 0;
  int64_t errors = 0;             // http_status >= 400
  double cost_usd = 0;            // the sum of the known costs
  int64_t unpriced_requests = 0;  // requests whose cost is unknown (not counted in cost_usd)
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t reasoning_tokens = 0;
  int64_t web_searches = 0;  // billed by the search (in cost_usd where priced)
  Percentiles latency_ms;
  Percentiles ttft_ms;  // over the requests that produced a token
};

struct LatencyHistogram {
  // counts[i] = samples in (bounds[i-1], bounds[i]]; counts.back() = samples above the last.
  std::array<int64_t, kHistogramBoundsMs.size() + 1> counts{};
};

struct RatePoint {
  int64_t t_unix_ms = 0;  // the bucket's start
  int64_t requests = 0;
  int64_t errors = 0;
};

struct ErrorClassCount {
  std::string key;  // the error class; "unknown" when none was recorded
  int64_t count = 0;
};

struct UsageReport {
  int64_t since_unix_ms = 0;
  int64_t until_unix_ms = 0;
  UsageStats totals;
  std::vector<UsageStats> by_day;                // ascending by day
  std::vector<UsageStats> by_model;              // descending by requests, then key
  std::vector<UsageStats> by_provider;           // descending by requests, then key
  std::vector<UsageStats> by_key;                // descending by requests, then key
  std::vector<ErrorClassCount> errors_by_class;  // descending by count, then key
  LatencyHistogram latency_histogram;
  LatencyHistogram ttft_histogram;
  // Requests per bucket, zero-filled, from the window's (or the first request's) start to
  // its end; the bucket (1 min .. 1 day) is the smallest that keeps it to <= 120 points.
  int64_t rate_bucket_ms = 60000;
  std::vector<RatePoint> rate;
};

// Aggregates the requests that started in [since, until). Blocks on the store.
Result<UsageReport> QueryUsage(Store& store, const UsageQuery& query);
// The aggregation itself, over rows already fetched (oldest first). `until_unix_ms` must be
// set.
UsageReport AggregateUsage(const std::vector<UsageRow>& rows, const UsageQuery& query);

inline constexpr int kMaxRequestsPage = 500;

struct RequestsQuery {
  int limit = 50;              // clamped to [1, kMaxRequestsPage]
  int64_t before_unix_ms = 0;  // paging: only requests that started before; 0: the newest
  std::string provider;        // optional filters
  std::string model;           // upstream model or the model the caller asked for
  int http_status = 0;         // exact status; -1: every error (>= 400); 0: any
  std::string caller_key;      // the API key's id
};

struct RequestsPage {
  std::vector<RequestSummary> requests;  // newest first, with attempts
  // Pass as before_unix_ms for the next page; nullopt when this is the last. A page never
  // splits the requests of one millisecond unless one millisecond holds more than `limit`.
  std::optional<int64_t> next_before;
};

Result<RequestsPage> QueryRequests(Store& store, const RequestsQuery& query);

// GET /api/usage:
// {"since":ms,"until":ms,
//  "totals":{"requests":n,"errors":n,"cost_usd":x,"unpriced_requests":n,"input_tokens":n,
//            "output_tokens":n,"cached_tokens":n,"reasoning_tokens":n,"web_searches":n,
//            "latency_ms":{"p50":x|null,"p90":x|null,"p99":x|null},
//            "ttft_ms":{"p50":x|null,"p90":x|null,"p99":x|null}},
//  "by_day":[{"key":"2026-11-25", ...the totals' fields}],   (UTC days, ascending)
//  "by_model":[{"key":"openai/gpt-4o-mini", ...}],            (most requests first)
//  "by_provider":[{"key":"openai", ...}],
//  "by_key":[{"key":"key_...","label":"name", ...}],            (the API key's id and name)
//  "errors_by_class":[{"key":"upstream","count":3}],
//  "latency_histogram":{"bounds_ms":[5,...,30000],"counts":[13 numbers; the last is > 30000]},
//  "ttft_histogram":{"bounds_ms":[...],"counts":[...]},
//  "rate_bucket_ms":60000,
//  "rate":[{"t":ms,"requests":n,"errors":n}]}
// A group list not asked for in the query is an empty array.
std::string UsageJson(const UsageReport& report);

// GET /api/requests:
// {"requests":[{"request_id","start_unix_ms","caller_key","dialect":"openai"|"anthropic",
//   "requested_model","route","provider","model","stream","http_status","error_class","error",
//   "latency_ms","ttft_ms":x|null,"overhead_ms",
//   "usage":{"input_tokens","output_tokens","cached_tokens","cache_write_tokens",
//            "reasoning_tokens","web_searches"},
//   "cost_usd":x|null,"bytes_in","bytes_out",
//   "attempts":[{"n":1,"provider","model","outcome","status","error_class","error",
//                "latency_ms","ttft_ms":x|null}]}],
//  "next_before":ms|null}
std::string RequestsJson(const RequestsPage& page);

// "2026-11-25" for a unix time in ms (UTC).
std::string UtcDay(int64_t unix_ms);

// A window's start: "30m", "24h", "7d", "all" or a UTC date "YYYY-MM-DD" → unix ms (relative
// ones back from now_ms). Errors name `field` ("--since", "from_log.since").
Result<int64_t> ParseSince(std::string_view text, int64_t now_ms, std::string_view field);

}  // namespace iris::gateway::observe

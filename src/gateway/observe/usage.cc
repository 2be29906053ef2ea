// Aggregation of the request log into the usage report, and the JSON the dashboard reads.
#include "gateway/observe/usage.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cmath>
#include <ctime>
#include <map>
#include <optional>

#include "base/json.h"
#include "base/time.h"

namespace iris::gateway::observe {
namespace {

// Accumulates one group; percentiles come from the kept samples at the end.
struct Acc {
  UsageStats stats;
  std::vector<double> latencies;
  std::vector<double> ttfts;

  void Add(const UsageRow& r) {
    ++stats.requests;
    if (r.http_status >= 400) ++stats.errors;
    if (r.cost_usd) {
      stats.cost_usd += *r.cost_usd;
    } else {
      ++stats.unpriced_requests;
    }
    stats.input_tokens += r.input_tokens;
    stats.output_tokens += r.output_tokens;
    stats.cached_tokens += r.cached_tokens;
    stats.reasoning_tokens += r.reasoning_tokens;
    stats.web_searches += r.web_searches;
    latencies.push_back(r.latency_ms);
    if (r.ttft_ms) ttfts.push_back(*r.ttft_ms);
  }

  static Percentiles Of(std::vector<double>& v) {
    Percentiles p;
    if (v.empty()) return p;
    std::sort(v.begin(), v.end());
    auto rank = [&v](double q) {
      // Nearest rank: the smallest value with at least q of the samples at or below it.
      size_t k = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
      return v[std::clamp<size_t>(k, 1, v.size()) - 1];
    };
    p.p50 = rank(0.50);
    p.p90 = rank(0.90);
    p.p99 = rank(0.99);
    return p;
  }

  UsageStats Finish(std::string key) {
    stats.key = std::move(key);
    stats.latency_ms = Of(latencies);
    stats.ttft_ms = Of(ttfts);
    return stats;
  }
};

void AddToHistogram(LatencyHistogram& h, double v) {
  size_t i = 0;
  while (i < kHistogramBoundsMs.size() && v > kHistogramBoundsMs[i]) ++i;
  ++h.counts[i];
}

std::vector<UsageStats> FinishGroups(std::map<std::string, Acc>& groups, bool by_requests) {
  std::vector<UsageStats> out;
  for (auto& [key, acc] : groups) out.push_back(acc.Finish(key));
  if (by_requests) {
    std::stable_sort(out.begin(), out.end(), [](const UsageStats& a, const UsageStats& b) {
      return a.requests > b.requests;
    });
  }
  return out;
}

boost::json::value OptNumber(const std::optional<double>& v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

boost::json::object PercentilesJson(const Percentiles& p) {
  return {{"p50", OptNumber(p.p50)}, {"p90", OptNumber(p.p90)}, {"p99", OptNumber(p.p99)}};
}

boost::json::object StatsJson(const UsageStats& s, bool with_key) {
  boost::json::object o;
  if (with_key) o["key"] = s.key;
  if (with_key && !s.label.empty()) o["label"] = s.label;
  o["requests"] = s.requests;
  o["errors"] = s.errors;
  o["cost_usd"] = s.cost_usd;
  o["unpriced_requests"] = s.unpriced_requests;
  o["input_tokens"] = s.input_tokens;
  o["output_tokens"] = s.output_tokens;
  o["cached_tokens"] = s.cached_tokens;
  o["reasoning_tokens"] = s.reasoning_tokens;
  o["web_searches"] = s.web_searches;
  o["latency_ms"] = PercentilesJson(s.latency_ms);
  o["ttft_ms"] = PercentilesJson(s.ttft_ms);
  return o;
}

boost::json::array GroupsJson(const std::vector<UsageStats>& groups) {
  boost::json::array a;
  for (const UsageStats& s : groups) a.push_back(StatsJson(s, true));
  return a;
}

boost::json::object HistogramJson(const LatencyHistogram& h) {
  boost::json::array bounds;
  for (double b : kHistogramBoundsMs) bounds.push_back(b);
  boost::json::array counts;
  for (int64_t c : h.counts) counts.push_back(c);
  return {{"bounds_ms", std::move(bounds)}, {"counts", std::move(counts)}};
}

boost::json::value TtftJson(double ttft_ms) {
  return ttft_ms >= 0 ? boost::json::value(ttft_ms) : boost::json::value(nullptr);
}

}  // namespace

Result<int64_t> ParseSince(std::string_view s, int64_t now_ms, std::string_view field) {
  const std::string name(field);
  if (s == "all") return int64_t{0};
  if (s.size() == 10 && s[4] == '-' && s[7] == '-') {
    Result<int64_t> date = ParseUtcDate(s);
    if (!date.ok()) return InvalidArgument(name + " " + date.status().message());
    return *date;
  }
  if (s.size() >= 2 && s.size() <= 10 && std::isdigit(static_cast<unsigned char>(s[0]))) {
    const char unit = s.back();
    const std::string_view digits = s.substr(0, s.size() - 1);
    bool all_digits = true;
    for (char c : digits) all_digits = all_digits && std::isdigit(static_cast<unsigned char>(c));
    const int64_t per = unit == 'm' ? 60000 : unit == 'h' ? 3600000 : unit == 'd' ? 86400000 : 0;
    if (all_digits && per > 0 && digits.size() < 9) {
      return now_ms - std::stoll(std::string(digits)) * per;
    }
  }
  return InvalidArgument(name + " " + std::string(s.substr(0, 64)) +
                         ": expected a duration (30m, 24h, 7d), a UTC date (YYYY-MM-DD) or all");
}

std::string UtcDay(int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
  return buf;
}

namespace {

// One pass over the rows, oldest first, keeping per group only the counters and the latency
// samples its percentiles need (16 bytes a request a grouping): no row is kept.
class UsageAggregator {
 public:
  explicit UsageAggregator(const UsageQuery& query) : query_(query) {
    report_.since_unix_ms = query.since_unix_ms;
    report_.until_unix_ms = query.until_unix_ms;
  }

  void Add(const UsageRow& r) {
    if (!query_.caller_key.empty() && r.caller_key != query_.caller_key) return;
    if (!rate_shaped_) ShapeRate(r.start_unix_ms);
    totals_.Add(r);
    if (query_.by_day) days_[UtcDay(r.start_unix_ms)].Add(r);
    if (query_.by_model) {
      key_.clear();
      if (r.provider.empty()) {
        key_ = r.requested_model.empty() ? "(none)" : r.requested_model;
      } else {
        key_.append(r.provider).append("/").append(r.model);
      }
      models_[key_].Add(r);
    }
    if (query_.by_provider) providers_[r.provider.empty() ? "(none)" : r.provider].Add(r);
    if (query_.by_key) keys_[r.caller_key.empty() ? "(none)" : r.caller_key].Add(r);
    if (r.http_status >= 400) ++error_classes_[r.error_class.empty() ? "unknown" : r.error_class];
    AddToHistogram(report_.latency_histogram, r.latency_ms);
    if (r.ttft_ms) AddToHistogram(report_.ttft_histogram, *r.ttft_ms);
    if (!report_.rate.empty()) {
      const int64_t i = (r.start_unix_ms - report_.rate.front().t_unix_ms) / report_.rate_bucket_ms;
      if (i >= 0 && i < static_cast<int64_t>(report_.rate.size())) {
        ++report_.rate[static_cast<size_t>(i)].requests;
        if (r.http_status >= 400) ++report_.rate[static_cast<size_t>(i)].errors;
      }
    }
  }

  UsageReport Finish() && {
    if (!rate_shaped_) ShapeRate(std::nullopt);
    report_.totals = totals_.Finish("");
    report_.by_day = FinishGroups(days_, false);
    report_.by_model = FinishGroups(models_, true);
    report_.by_provider = FinishGroups(providers_, true);
    report_.by_key = FinishGroups(keys_, true);
    for (const auto& [key, count] : error_classes_) report_.errors_by_class.push_back({key, count});
    std::stable_sort(
        report_.errors_by_class.begin(), report_.errors_by_class.end(),
        [](const ErrorClassCount& a, const ErrorClassCount& b) { return a.count > b.count; });
    return std::move(report_);
  }

 private:
  // The rate series: from the window's start (or the first request when the window is
  // unbounded below) to its end, in the smallest bucket that keeps it to 120 points.
  void ShapeRate(std::optional<int64_t> first_row) {
    rate_shaped_ = true;
    int64_t start = query_.since_unix_ms;
    if (first_row && *first_row > start && query_.until_unix_ms - start > int64_t{120} * 86400000) {
      start = *first_row;
    }
    const int64_t end = query_.until_unix_ms;
    if (end <= start) return;
    static constexpr int64_t kBuckets[] = {60000,    300000,   900000,  3600000,
                                           10800000, 21600000, 86400000};
    int64_t bucket = kBuckets[std::size(kBuckets) - 1];
    for (int64_t b : kBuckets) {
      if ((end - start + b - 1) / b <= 120) {
        bucket = b;
        break;
      }
    }
    report_.rate_bucket_ms = bucket;
    const int64_t first = start - ((start % bucket) + bucket) % bucket;
    const int64_t n = (end - first + bucket - 1) / bucket;
    if (n > 1000) return;
    report_.rate.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      report_.rate[static_cast<size_t>(i)].t_unix_ms = first + i * bucket;
    }
  }

  const UsageQuery query_;
  UsageReport report_;
  bool rate_shaped_ = false;
  Acc totals_;
  std::map<std::string, Acc> days_, models_, providers_, keys_;
  std::map<std::string, int64_t> error_classes_;
  std::string key_;  // reused for the model key
};

}  // namespace

UsageReport AggregateUsage(const std::vector<UsageRow>& rows, const UsageQuery& query) {
  UsageAggregator agg(query);
  for (const UsageRow& r : rows) agg.Add(r);
  return std::move(agg).Finish();
}

Result<UsageReport> QueryUsage(Store& store, const UsageQuery& query) {
  // Times are Unix milliseconds between 1970 and 9999: nothing a caller sends can overflow
  // the bucket arithmetic below.
  constexpr int64_t kMaxUnixMs = int64_t{253402300799999};  // 9999-12-31T23:59:59.999Z
  if (query.since_unix_ms < 0 || query.since_unix_ms > kMaxUnixMs) {
    return InvalidArgument("since: expected Unix milliseconds between 0 and " +
                           std::to_string(kMaxUnixMs) + ", got " +
                           std::to_string(query.since_unix_ms));
  }
  if (query.until_unix_ms < 0 || query.until_unix_ms > kMaxUnixMs) {
    return InvalidArgument("until: expected Unix milliseconds between 0 and " +
                           std::to_string(kMaxUnixMs) + " (0: now), got " +
                           std::to_string(query.until_unix_ms));
  }
  UsageQuery q = query;
  if (q.until_unix_ms == 0) q.until_unix_ms = NowUnixMs() + 1;
  if (q.since_unix_ms > q.until_unix_ms) {
    return InvalidArgument("usage query: since is after until");
  }
  // Streamed: memory grows with the groups and their latency samples, never with the rows.
  UsageAggregator agg(q);
  IRIS_RETURN_IF_ERROR(store.ForEachUsageRow(q.since_unix_ms, q.until_unix_ms,
                                             [&agg](const UsageRow& r) { agg.Add(r); }));
  return std::move(agg).Finish();
}

Result<RequestsPage> QueryRequests(Store& store, const RequestsQuery& query) {
  if (query.before_unix_ms < 0) {
    return InvalidArgument("before: expected Unix milliseconds, got " +
                           std::to_string(query.before_unix_ms));
  }
  RequestFilter f;
  f.before_unix_ms = query.before_unix_ms;
  f.provider = query.provider;
  f.model = query.model;
  f.http_status = query.http_status;
  f.caller_key = query.caller_key;
  const int limit = std::clamp(query.limit, 1, kMaxRequestsPage);
  f.limit = limit + 1;  // one more tells whether another page exists
  IRIS_ASSIGN_OR_RETURN(std::vector<RequestSummary> rows, store.FetchRequests(f));
  RequestsPage page;
  if (static_cast<int>(rows.size()) <= limit) {
    page.requests = std::move(rows);
    return page;
  }
  // Drop the tail that shares its millisecond with the first request left out, so that
  // the next page (start < next_before) picks those requests up together.
  const int64_t cut_ms = rows[limit].start_unix_ms;
  rows.resize(static_cast<size_t>(limit));
  size_t keep = rows.size();
  while (keep > 0 && rows[keep - 1].start_unix_ms == cut_ms) --keep;
  if (keep > 0) {
    rows.resize(keep);
    page.next_before = rows.back().start_unix_ms;
  } else {
    // More than `limit` requests in one millisecond: the rest of it is skipped.
    page.next_before = cut_ms;
  }
  page.requests = std::move(rows);
  return page;
}

std::string UsageJson(const UsageReport& report) {
  boost::json::object o;
  o["since"] = report.since_unix_ms;
  o["until"] = report.until_unix_ms;
  o["totals"] = StatsJson(report.totals, false);
  o["by_day"] = GroupsJson(report.by_day);
  o["by_model"] = GroupsJson(report.by_model);
  o["by_provider"] = GroupsJson(report.by_provider);
  o["by_key"] = GroupsJson(report.by_key);
  boost::json::array errors;
  for (const ErrorClassCount& e : report.errors_by_class) {
    errors.push_back(boost::json::object{{"key", e.key}, {"count", e.count}});
  }
  o["errors_by_class"] = std::move(errors);
  o["latency_histogram"] = HistogramJson(report.latency_histogram);
  o["ttft_histogram"] = HistogramJson(report.ttft_histogram);
  o["rate_bucket_ms"] = report.rate_bucket_ms;
  boost::json::array rate;
  for (const RatePoint& p : report.rate) {
    rate.push_back(
        boost::json::object{{"t", p.t_unix_ms}, {"requests", p.requests}, {"errors", p.errors}});
  }
  o["rate"] = std::move(rate);
  return SerializeJson(o);
}

std::string RequestsJson(const RequestsPage& page) {
  boost::json::array requests;
  for (const RequestSummary& r : page.requests) {
    boost::json::array attempts;
    for (size_t n = 0; n < r.attempts.size(); ++n) {
      const AttemptRecord& a = r.attempts[n];
      attempts.push_back(boost::json::object{{"n", static_cast<int64_t>(n + 1)},
                                             {"provider", a.provider},
                                             {"model", a.model},
                                             {"outcome", a.outcome},
                                             {"status", a.status},
                                             {"error_class", a.error_class},
                                             {"error", a.error},
                                             {"latency_ms", a.latency_ms},
                                             {"ttft_ms", TtftJson(a.ttft_ms)}});
    }
    boost::json::object o;
    o["request_id"] = r.request_id;
    o["start_unix_ms"] = r.start_unix_ms;
    o["caller_key"] = r.caller_key;
    o["dialect"] = internal::DialectName(r.dialect);
    o["requested_model"] = r.requested_model;
    o["route"] = r.alias;
    o["provider"] = r.provider;
    o["model"] = r.model;
    o["stream"] = r.stream;
    o["http_status"] = r.http_status;
    o["error_class"] = r.error_class;
    o["error"] = r.error;
    o["latency_ms"] = r.latency_ms;
    o["ttft_ms"] = TtftJson(r.ttft_ms);
    o["overhead_ms"] = r.overhead_ms;
    o["usage"] = boost::json::object{{"input_tokens", r.usage.input_tokens},
                                     {"output_tokens", r.usage.output_tokens},
                                     {"cached_tokens", r.usage.cached_input_tokens},
                                     {"cache_write_tokens", r.usage.cache_write_tokens},
                                     {"reasoning_tokens", r.usage.reasoning_tokens},
                                     {"web_searches", r.usage.web_searches}};
    o["cost_usd"] = OptNumber(r.cost_usd);
    o["bytes_in"] = r.bytes_in;
    o["bytes_out"] = r.bytes_out;
    o["attempts"] = std::move(attempts);
    requests.push_back(std::move(o));
  }
  boost::json::object out;
  out["requests"] = std::move(requests);
  out["next_before"] =
      page.next_before ? boost::json::value(*page.next_before) : boost::json::value(nullptr);
  return SerializeJson(out);
}

}  // namespace iris::gateway::observe

// The gateway's /metrics: a small thread-safe registry of counters, histograms and scrape-time
// gauges rendered in the Prometheus text format 0.0.4, and GatewayMetrics, which turns each
// finished request's RequestSummary into those series.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "gateway/observe/record.h"

namespace iris::gateway::observe {

enum class MetricType { kCounter, kGauge, kHistogram };

// Label name → value pairs, in the order they are rendered.
using Labels = std::vector<std::pair<std::string, std::string>>;
using GaugeSample = std::pair<Labels, double>;
// Called at scrape time, on the scraping thread; must be thread-safe and must not block long.
using GaugeCallback = std::function<std::vector<GaugeSample>()>;

// One counter series. Lock-free; Inc and Add may be called from any thread.
class Counter {
 public:
  void Inc(uint64_t n = 1) { count_.fetch_add(n, std::memory_order_relaxed); }
  // For fractional amounts (dollars). Negative amounts are a bug.
  void Add(double v) { fraction_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const {
    return static_cast<double>(count_.load(std::memory_order_relaxed)) +
           fraction_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<uint64_t> count_{0};
  std::atomic<double> fraction_{0};
};

// One histogram series over fixed upper bounds (ascending, +Inf implied). Lock-free: one
// bucket increment and one sum update per Observe. A concurrent Read sees every bucket at
// most one observation out of date.
class Histogram {
 public:
  explicit Histogram(const std::vector<double>& bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // [bounds.size() + 1]; the last is +Inf == count
    double sum = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double>& bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bucket, not cumulative
  std::atomic<double> sum_{0};
};

namespace internal {

// Label values → series, sharded by hash so concurrent lookups rarely share a lock. The lock is
// held for one hash lookup; series are created once and never move or die before the map.
template <typename T>
class SeriesMap {
 public:
  struct Entry {
    std::vector<std::string> label_values;
    std::unique_ptr<T> series;
  };

  template <typename Make>
  T& GetOrCreate(std::initializer_list<std::string_view> values, Make make);
  // Every entry, sorted by label values (for deterministic output).
  std::vector<const Entry*> Sorted() const;

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  static constexpr size_t kShards = 16;
  struct alignas(64) Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry, StringHash, std::equal_to<>> map;
  };
  std::array<Shard, kShards> shards_;
};

// Length-prefixed so that no two lists of values share a key.
void AppendKeyPart(std::string& key, std::string_view value);

template <typename T>
template <typename Make>
T& SeriesMap<T>::GetOrCreate(std::initializer_list<std::string_view> values, Make make) {
  thread_local std::string key;  // reused: no allocation once it has grown
  key.clear();
  for (std::string_view v : values) AppendKeyPart(key, v);
  const size_t hash = StringHash{}(key);
  Shard& shard = shards_[hash % kShards];
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.map.find(std::string_view(key));
  if (it != shard.map.end()) return *it->second.series;
  Entry e;
  e.label_values.assign(values.begin(), values.end());
  e.series = make();
  T& series = *e.series;
  shard.map.emplace(key, std::move(e));
  return series;
}

template <typename T>
std::vector<const typename SeriesMap<T>::Entry*> SeriesMap<T>::Sorted() const {
  std::vector<const Entry*> out;
  for (const Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (const auto& [key, entry] : shard.map) out.push_back(&entry);
  }
  std::sort(out.begin(), out.end(),
            [](const Entry* a, const Entry* b) { return a->label_values < b->label_values; });
  return out;
}

}  // namespace internal

// A counter name with fixed label names; With() finds or creates the series for some values.
class CounterFamily {
 public:
  // values.size() must equal the number of label names. The reference stays valid for the
  // family's lifetime, so a caller may keep it. Cost: one hash lookup under a sharded lock.
  Counter& With(std::initializer_list<std::string_view> values);

 private:
  friend class MetricsRegistry;
  size_t num_labels_ = 0;
  internal::SeriesMap<Counter> series_;
};

class HistogramFamily {
 public:
  explicit HistogramFamily(std::vector<double> bounds) : bounds_(std::move(bounds)) {}
  // As CounterFamily::With.
  Histogram& With(std::initializer_list<std::string_view> values);
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  friend class MetricsRegistry;
  size_t num_labels_ = 0;
  const std::vector<double> bounds_;
  internal::SeriesMap<Histogram> series_;
};

// Families in registration order. Registration and Exposition are thread-safe; the families it
// returns live as long as the registry. Names and label names are checked (IRIS_CHECK): they
// are constants of the program, never input.
class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // A counter's name should end in "_total".
  CounterFamily& AddCounter(std::string name, std::string help,
                            std::vector<std::string> label_names);
  // bounds: ascending finite upper bounds; the +Inf bucket is implied.
  HistogramFamily& AddHistogram(std::string name, std::string help,
                                std::vector<std::string> label_names, std::vector<double> bounds);
  // Samples produced at scrape time by `fn` (type kGauge, or kCounter for totals kept elsewhere).
  // A callback returning no samples renders nothing, not even HELP/TYPE.
  void AddGauge(std::string name, std::string help, MetricType type, GaugeCallback fn);
  // A histogram kept elsewhere, read at scrape time: `fn` returns its cumulative buckets over
  // `bounds` (plus +Inf) and sum, or nothing to leave it out.
  void AddHistogramGauge(std::string name, std::string help, std::vector<double> bounds,
                         std::function<std::optional<Histogram::Snapshot>()> fn);

  // The whole registry in the Prometheus text format 0.0.4 (content type
  // "text/plain; version=0.0.4; charset=utf-8"). Families without series are left out.
  std::string Exposition() const;

 private:
  struct Family {
    std::string name;
    std::string help;
    MetricType type = MetricType::kCounter;
    std::vector<std::string> label_names;
    std::unique_ptr<CounterFamily> counter;
    std::unique_ptr<HistogramFamily> histogram;
    GaugeCallback gauge;
    std::function<std::optional<Histogram::Snapshot>()> histogram_gauge;
    std::vector<double> histogram_gauge_bounds;
  };
  Family& Register(std::string name, std::string help, MetricType type,
                   std::vector<std::string> label_names);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;
};

// Text-format helpers, exposed for tests.
std::string EscapeLabelValue(std::string_view v);  // \ → \\, " → \", newline → \n
std::string FormatValue(double v);                 // shortest round trip; +Inf, -Inf, NaN

// Values read at scrape time from the rest of the gateway. Each callback is optional; a missing
// one leaves its series out. Callbacks run on the scraping thread and must be thread-safe.
struct HttpGauges {
  int64_t connections_open = 0;
  int64_t requests_in_flight = 0;
};
struct RequestLogGauges {
  int64_t queue_depth = 0;
  int64_t dropped = 0;         // ever
  int64_t written = 0;         // ever
  int64_t bodies_dropped = 0;  // ever: records written without their stored bodies
  int64_t summed = 0;          // ever: dropped records whose cost went into a summed row
};
struct LocalEngineGauges {
  int64_t queue_depth = 0;
  int64_t running = 0;
  int64_t output_tokens = 0;  // ever
  double decode_tokens_per_second = 0;
  int64_t kv_blocks_in_use = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_block_bytes = 0;
  int64_t prefix_hit_tokens = 0;   // ever
  int64_t image_cache_hits = 0;    // ever
  int64_t image_cache_misses = 0;  // ever
  // Sequences per batched step, over LocalBatchBounds().
  Histogram::Snapshot batch_sequences;
  // Wall time of each batched step in seconds (the gap a running answer's readers wait between
  // tokens), over LocalStepSecondsBounds().
  Histogram::Snapshot step_seconds;
};
// Upper bounds of the local engine's batch-size histogram.
inline const std::vector<double>& LocalBatchBounds() {
  static const std::vector<double> bounds = {1, 2, 4, 8, 16, 32, 64, 128, 256};
  return bounds;
}
// Upper bounds of the local engine's step-time histogram, in seconds (whole milliseconds, so
// that steps counted by milliseconds rounded up fall in the right bucket).
inline const std::vector<double>& LocalStepSecondsBounds() {
  static const std::vector<double> bounds = {0.005, 0.01,  0.015, 0.02, 0.025, 0.03, 0.04,
                                             0.05,  0.075, 0.1,   0.15, 0.25,  0.5,  1};
  return bounds;
}
// Observations counted by value (counts[i]: how many were i / divisor) as a histogram over
// `bounds`; the sum is that of the counted values.
Histogram::Snapshot SnapshotOfCounts(const std::vector<double>& bounds,
                                     std::span<const std::atomic<uint64_t>> counts, double divisor);
// One API key's spend in its current budget period (the whole key's life for "total").
struct KeySpendGauge {
  std::string key_id;
  std::string key_name;
  std::string period;  // "day", "month", "total"
  double spent_usd = 0;
  std::optional<double> budget_usd;
};
struct ScrapeSources {
  // target ("provider/model") → 0 closed, 1 half-open, 2 open.
  std::function<std::vector<std::pair<std::string, int>>()> breaker_states;
  std::function<HttpGauges()> http;
  std::function<RequestLogGauges()> request_log;
  std::function<LocalEngineGauges()> local_engine;
  std::function<std::vector<KeySpendGauge>()> key_spend;
  // The shared state of budgets and limits: whether it answered last (1/0), and the settled
  // costs waiting for it.
  std::function<std::pair<bool, int64_t>()> shared_state;
};

// The gateway's series. Record is called once per finished request from any worker thread
// (GatewayOptions::on_request); it never blocks for longer than a sharded hash lookup and costs
// well under a microsecond once a (route, provider, model) combination has been seen.
class GatewayMetrics {
 public:
  GatewayMetrics();

  void Record(const RequestSummary& summary);
  // At most `n` distinct model label values (first come); later ones are counted under
  // "other", so callers inventing model names cannot grow the scrape without bound.
  void SetMaxModelLabels(int n) { max_model_labels_ = static_cast<size_t>(std::max(n, 1)); }
  // Registers the scrape-time gauges; call once, before serving.
  void SetSources(ScrapeSources sources);

  MetricsRegistry& registry() { return registry_; }
  std::string Exposition() const { return registry_.Exposition(); }

  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  // Every series one request of a given (route, provider, model, outcome) touches.
  struct Combo {
    Counter* requests = nullptr;
    Histogram* duration = nullptr;
    Histogram* ttft = nullptr;         // null when there is no provider
    std::array<Counter*, 5> tokens{};  // input, output, cached, cache_write, reasoning
    Counter* web_searches = nullptr;   // null when there is no provider
    Counter* cost = nullptr;           // null when there is no provider
  };
  Combo& ComboFor(std::string_view route, std::string_view provider, std::string_view model,
                  std::string_view outcome);

  MetricsRegistry registry_;
  CounterFamily& requests_;
  CounterFamily& attempts_;
  HistogramFamily& duration_;
  HistogramFamily& ttft_;
  HistogramFamily& overhead_family_;
  Histogram& overhead_;
  CounterFamily& tokens_;
  CounterFamily& web_searches_;
  CounterFamily& cost_;
  CounterFamily& errors_;
  internal::SeriesMap<Combo> combos_;
  // The model label for `model`: itself while under the cap, else "other". Thread-safe.
  std::string_view ModelLabel(std::string_view model);
  size_t max_model_labels_ = 256;
  // Transparent hashing: looking a model up allocates nothing.
  struct LabelHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::shared_mutex models_mu_;  // shared for lookups (every request), exclusive to admit
  std::unordered_set<std::string, LabelHash, std::equal_to<>> model_labels_;  // admitted
};

}  // namespace iris::gateway::observe

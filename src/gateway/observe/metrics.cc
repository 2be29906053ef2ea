// The metrics registry and its Prometheus text rendering, and the gateway's series.
#include "gateway/observe/metrics.h"

#include <charconv>
#include <cmath>

#include "base/check.h"

namespace iris::gateway::observe {

namespace internal {

void AppendKeyPart(std::string& key, std::string_view value) {
  const uint32_t n = static_cast<uint32_t>(value.size());
  key.append(reinterpret_cast<const char*>(&n), sizeof(n));
  key.append(value);
}

}  // namespace internal

namespace {

bool ValidName(std::string_view name, bool metric) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (metric && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit))) return false;
  }
  return metric || name.substr(0, 2) != "__";
}

std::string EscapeHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// `{a="x",b="y"` + extra + `}`, or nothing when there are no labels at all.
void AppendLabels(std::string& out, const std::vector<std::string>& names,
                  const std::vector<std::string>& values, std::string_view extra_name = {},
                  std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return;
  out += '{';
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += ',';
    out += names[i];
    out += "=\"";
    out += EscapeLabelValue(values[i]);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out += ',';
    out += extra_name;
    out += "=\"";
    out += EscapeLabelValue(extra_value);
    out += '"';
  }
  out += '}';
}

void AppendHeader(std::string& out, std::string_view name, std::string_view help, MetricType type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += EscapeHelp(help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += TypeName(type);
  out += '\n';
}

void AppendSample(std::string& out, std::string_view name, std::string_view suffix,
                  const std::vector<std::string>& names, const std::vector<std::string>& values,
                  double value, std::string_view extra_name = {},
                  std::string_view extra_value = {}) {
  out += name;
  out += suffix;
  AppendLabels(out, names, values, extra_name, extra_value);
  out += ' ';
  out += FormatValue(value);
  out += '\n';
}

}  // namespace

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[400];
  // Plain decimals in the range people read ("0.0005", not "5e-04"), like Prometheus's own
  // clients; both are the shortest text that reads back as the same double.
  const double mag = std::fabs(v);
  const bool fixed = mag == 0 || (mag >= 1e-6 && mag < 1e15);
  auto [end, ec] = fixed ? std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed)
                         : std::to_chars(buf, buf + sizeof(buf), v);
  IRIS_CHECK(ec == std::errc());
  return std::string(buf, end);
}

// ---------------------------------------------------------------------------------------

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds.size() + 1]) {
  for (size_t i = 0; i <= bounds.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  // The first bucket whose upper bound is >= v ("le"); past the last bound: +Inf.
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

Histogram::Snapshot SnapshotOfCounts(const std::vector<double>& bounds,
                                     std::span<const std::atomic<uint64_t>> counts,
                                     double divisor) {
  Histogram::Snapshot s;
  std::vector<uint64_t> per_bucket(bounds.size() + 1, 0);
  for (size_t i = 0; i < counts.size(); ++i) {
    const uint64_t n = counts[i].load(std::memory_order_relaxed);
    if (n == 0) continue;
    // (Divided, not multiplied by a reciprocal: 5 / 1000.0 is the bound 0.005 exactly.)
    const double value = static_cast<double>(i) / divisor;
    // The first bound at or above the value (+Inf past the last).
    const auto b =
        static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
    per_bucket[b] += n;
    s.sum += value * static_cast<double>(n);
  }
  s.cumulative.resize(per_bucket.size());
  uint64_t running = 0;
  for (size_t i = 0; i < per_bucket.size(); ++i) s.cumulative[i] = running += per_bucket[i];
  return s;
}

Counter& CounterFamily::With(std::initializer_list<std::string_view> values) {
  IRIS_CHECK(values.size() == num_labels_);
  return series_.GetOrCreate(values, [] { return std::make_unique<Counter>(); });
}

Histogram& HistogramFamily::With(std::initializer_list<std::string_view> values) {
  IRIS_CHECK(values.size() == num_labels_);
  return series_.GetOrCreate(values, [this] { return std::make_unique<Histogram>(bounds_); });
}

// ---------------------------------------------------------------------------------------

MetricsRegistry::Family& MetricsRegistry::Register(std::string name, std::string help,
                                                   MetricType type,
                                                   std::vector<std::string> label_names) {
  IRIS_CHECK_MSG(ValidName(name, true), name.c_str());
  for (const std::string& l : label_names) {
    IRIS_CHECK_MSG(ValidName(l, false), l.c_str());
    IRIS_CHECK_MSG(!(type == MetricType::kHistogram && l == "le"), name.c_str());
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& f : families_) IRIS_CHECK_MSG(f->name != name, name.c_str());
  auto f = std::make_unique<Family>();
  f->name = std::move(name);
  f->help = std::move(help);
  f->type = type;
  f->label_names = std::move(label_names);
  families_.push_back(std::move(f));
  return *families_.back();
}

CounterFamily& MetricsRegistry::AddCounter(std::string name, std::string help,
                                           std::vector<std::string> label_names) {
  const size_t n = label_names.size();
  Family& f =
      Register(std::move(name), std::move(help), MetricType::kCounter, std::move(label_names));
  std::lock_guard<std::mutex> lock(mu_);
  f.counter = std::make_unique<CounterFamily>();
  f.counter->num_labels_ = n;
  return *f.counter;
}

HistogramFamily& MetricsRegistry::AddHistogram(std::string name, std::string help,
                                               std::vector<std::string> label_names,
                                               std::vector<double> bounds) {
  IRIS_CHECK(std::is_sorted(bounds.begin(), bounds.end()));
  IRIS_CHECK(std::adjacent_find(bounds.begin(), bounds.end()) == bounds.end());
  for (double b : bounds) IRIS_CHECK(std::isfinite(b));
  const size_t n = label_names.size();
  Family& f =
      Register(std::move(name), std::move(help), MetricType::kHistogram, std::move(label_names));
  std::lock_guard<std::mutex> lock(mu_);
  f.histogram = std::make_unique<HistogramFamily>(std::move(bounds));
  f.histogram->num_labels_ = n;
  return *f.histogram;
}

void MetricsRegistry::AddGauge(std::string name, std::string help, MetricType type,
                               GaugeCallback fn) {
  IRIS_CHECK(type != MetricType::kHistogram);
  IRIS_CHECK(fn != nullptr);
  Family& f = Register(std::move(name), std::move(help), type, {});
  std::lock_guard<std::mutex> lock(mu_);
  f.gauge = std::move(fn);
}

void MetricsRegistry::AddHistogramGauge(std::string name, std::string help,
                                        std::vector<double> bounds,
                                        std::function<std::optional<Histogram::Snapshot>()> fn) {
  IRIS_CHECK(fn != nullptr);
  Family& f = Register(std::move(name), std::move(help), MetricType::kHistogram, {});
  std::lock_guard<std::mutex> lock(mu_);
  f.histogram_gauge = std::move(fn);
  f.histogram_gauge_bounds = std::move(bounds);
}

std::string MetricsRegistry::Exposition() const {
  std::string out;
  out.reserve(8192);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& fp : families_) {
    const Family& f = *fp;
    if (f.counter) {
      auto entries = f.counter->series_.Sorted();
      if (entries.empty()) continue;
      AppendHeader(out, f.name, f.help, f.type);
      for (const auto* e : entries) {
        AppendSample(out, f.name, "", f.label_names, e->label_values, e->series->Value());
      }
    } else if (f.histogram) {
      auto entries = f.histogram->series_.Sorted();
      if (entries.empty()) continue;
      AppendHeader(out, f.name, f.help, f.type);
      const std::vector<double>& bounds = f.histogram->bounds();
      for (const auto* e : entries) {
        const Histogram::Snapshot s = e->series->Read();
        for (size_t i = 0; i <= bounds.size(); ++i) {
          const std::string le = i < bounds.size() ? FormatValue(bounds[i]) : "+Inf";
          AppendSample(out, f.name, "_bucket", f.label_names, e->label_values,
                       static_cast<double>(s.cumulative[i]), "le", le);
        }
        AppendSample(out, f.name, "_sum", f.label_names, e->label_values, s.sum);
        AppendSample(out, f.name, "_count", f.label_names, e->label_values,
                     static_cast<double>(s.cumulative.back()));
      }
    } else if (f.histogram_gauge) {
      const std::optional<Histogram::Snapshot> s = f.histogram_gauge();
      const std::vector<double>& bounds = f.histogram_gauge_bounds;
      if (!s || s->cumulative.size() != bounds.size() + 1) continue;
      AppendHeader(out, f.name, f.help, f.type);
      for (size_t i = 0; i <= bounds.size(); ++i) {
        const std::string le = i < bounds.size() ? FormatValue(bounds[i]) : "+Inf";
        AppendSample(out, f.name, "_bucket", {}, {}, static_cast<double>(s->cumulative[i]), "le",
                     le);
      }
      AppendSample(out, f.name, "_sum", {}, {}, s->sum);
      AppendSample(out, f.name, "_count", {}, {}, static_cast<double>(s->cumulative.back()));
    } else if (f.gauge) {
      std::vector<GaugeSample> samples = f.gauge();
      if (samples.empty()) continue;
      AppendHeader(out, f.name, f.help, f.type);
      std::sort(samples.begin(), samples.end(),
                [](const GaugeSample& a, const GaugeSample& b) { return a.first < b.first; });
      std::vector<std::string> names, values;
      for (const auto& [labels, value] : samples) {
        names.clear();
        values.clear();
        for (const auto& [k, v] : labels) {
          // A callback's label names come from code, like the family's: a bad one is a bug.
          IRIS_CHECK_MSG(ValidName(k, false), k.c_str());
          names.push_back(k);
          values.push_back(v);
        }
        AppendSample(out, f.name, "", names, values, value);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------

namespace {

// Seconds. Request latency and TTFT span a cache hit to a long generation.
const std::vector<double> kLatencyBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                            1,     2.5,  5,     10,   30,  60,   120};
// The gateway's own share of a request: fine at the low end, where it should stay.
const std::vector<double> kOverheadBounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                             0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1};

std::string_view OutcomeOf(const RequestSummary& s) {
  if (s.error_class.empty()) return "ok";
  if (s.error_class == "client_gone") return "client_gone";
  return "error";
}

}  // namespace

GatewayMetrics::GatewayMetrics()
    : requests_(registry_.AddCounter("iris_requests_total",
                                     "Requests finished, by route (empty when the caller named "
                                     "a provider model directly), answering target and outcome.",
                                     {"route", "provider", "model", "outcome"})),
      attempts_(registry_.AddCounter("iris_attempts_total",
                                     "Tries of one target inside requests (ok, error, skipped).",
                                     {"provider", "model", "outcome"})),
      duration_(registry_.AddHistogram("iris_request_duration_seconds",
                                       "Time from a request's arrival to its last byte.",
                                       {"route", "provider"}, kLatencyBounds)),
      ttft_(registry_.AddHistogram("iris_time_to_first_token_seconds",
                                   "Time from a request's arrival to its first output token.",
                                   {"provider", "model"}, kLatencyBounds)),
      overhead_family_(registry_.AddHistogram(
          "iris_gateway_overhead_seconds",
          "Time a request spent in the gateway itself, not waiting on an upstream or the engine.",
          {}, kOverheadBounds)),
      overhead_(overhead_family_.With({})),
      tokens_(registry_.AddCounter("iris_tokens_total",
                                   "Tokens by answering target and type: input, output, "
                                   "cached (input read from a prompt cache), cache_write (input "
                                   "written to one), reasoning (a subset of output).",
                                   {"provider", "model", "type"})),
      web_searches_(registry_.AddCounter(
          "iris_web_searches_total",
          "Hosted web searches the answering target ran, which its provider bills by the search.",
          {"provider", "model"})),
      cost_(registry_.AddCounter("iris_cost_usd_total",
                                 "List-price cost in US dollars of answered requests whose "
                                 "price is known.",
                                 {"provider", "model"})),
      errors_(registry_.AddCounter("iris_errors_total", "Failed requests by error class.",
                                   {"class"})) {}

GatewayMetrics::Combo& GatewayMetrics::ComboFor(std::string_view route, std::string_view provider,
                                                std::string_view model, std::string_view outcome) {
  return combos_.GetOrCreate({route, provider, model, outcome}, [&] {
    auto c = std::make_unique<Combo>();
    c->requests = &requests_.With({route, provider, model, outcome});
    c->duration = &duration_.With({route, provider});
    if (!provider.empty()) {
      c->ttft = &ttft_.With({provider, model});
      static constexpr std::array<std::string_view, 5> kTypes = {"input", "output", "cached",
                                                                 "cache_write", "reasoning"};
      static_assert(kTypes.size() == std::tuple_size_v<decltype(c->tokens)>);
      for (size_t i = 0; i < kTypes.size(); ++i) {
        c->tokens[i] = &tokens_.With({provider, model, kTypes[i]});
      }
      c->web_searches = &web_searches_.With({provider, model});
      c->cost = &cost_.With({provider, model});
    }
    return c;
  });
}

std::string_view GatewayMetrics::ModelLabel(std::string_view model) {
  if (model.empty()) return model;
  {
    std::shared_lock lock(models_mu_);
    if (auto it = model_labels_.find(model); it != model_labels_.end()) return *it;
    if (model_labels_.size() >= max_model_labels_) return "other";
  }
  std::unique_lock lock(models_mu_);
  if (model_labels_.size() >= max_model_labels_ && !model_labels_.contains(model)) return "other";
  return *model_labels_.emplace(model).first;
}

void GatewayMetrics::Record(const RequestSummary& s) {
  const std::string_view outcome = OutcomeOf(s);
  Combo& c = ComboFor(s.alias, s.provider, ModelLabel(s.model), outcome);
  c.requests->Inc();
  c.duration->Observe(s.latency_ms / 1000);
  overhead_.Observe(s.overhead_ms / 1000);
  if (c.ttft) {
    if (s.ttft_ms >= 0) c.ttft->Observe(s.ttft_ms / 1000);
    // In the order of Combo::tokens.
    const std::array<int64_t, 5> tokens = {s.usage.input_tokens, s.usage.output_tokens,
                                           s.usage.cached_input_tokens, s.usage.cache_write_tokens,
                                           s.usage.reasoning_tokens};
    static_assert(tokens.size() == std::tuple_size_v<decltype(c.tokens)>);
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i] > 0) c.tokens[i]->Inc(static_cast<uint64_t>(tokens[i]));
    }
    if (s.usage.web_searches > 0) c.web_searches->Inc(static_cast<uint64_t>(s.usage.web_searches));
    if (s.cost_usd && *s.cost_usd > 0) c.cost->Add(*s.cost_usd);
  }
  for (const AttemptRecord& a : s.attempts) {
    attempts_.With({a.provider, ModelLabel(a.model), a.outcome}).Inc();
  }
  if (!s.error_class.empty()) errors_.With({s.error_class}).Inc();
}

void GatewayMetrics::SetSources(ScrapeSources sources) {
  if (auto fn = std::move(sources.breaker_states)) {
    registry_.AddGauge("iris_circuit_breaker_state",
                       "Circuit breaker per target: 0 closed, 1 half-open, 2 open.",
                       MetricType::kGauge, [fn] {
                         std::vector<GaugeSample> out;
                         for (auto& [target, state] : fn()) {
                           out.push_back({{{"target", target}}, static_cast<double>(state)});
                         }
                         return out;
                       });
  }
  auto one = [](double v) { return std::vector<GaugeSample>{{Labels{}, v}}; };
  if (auto fn = std::move(sources.http)) {
    registry_.AddGauge("iris_http_connections_open", "Client connections open now.",
                       MetricType::kGauge,
                       [fn, one] { return one(static_cast<double>(fn().connections_open)); });
    registry_.AddGauge("iris_http_requests_in_flight", "Client requests being handled now.",
                       MetricType::kGauge,
                       [fn, one] { return one(static_cast<double>(fn().requests_in_flight)); });
  }
  if (auto fn = std::move(sources.request_log)) {
    registry_.AddGauge(
        "iris_request_log_queue_depth", "Request records waiting to be written to the request log.",
        MetricType::kGauge, [fn, one] { return one(static_cast<double>(fn().queue_depth)); });
    registry_.AddGauge("iris_request_log_dropped_total",
                       "Request records dropped because the request log's queue was full.",
                       MetricType::kCounter,
                       [fn, one] { return one(static_cast<double>(fn().dropped)); });
    registry_.AddGauge("iris_request_log_summed_total",
                       "Dropped request records whose cost, tokens and bytes were written summed "
                       "into one row per caller key, provider, model, status and minute.",
                       MetricType::kCounter,
                       [fn, one] { return one(static_cast<double>(fn().summed)); });
    registry_.AddGauge("iris_request_log_written_total",
                       "Request records written to the request log.", MetricType::kCounter,
                       [fn, one] { return one(static_cast<double>(fn().written)); });
    registry_.AddGauge("iris_request_log_bodies_dropped_total",
                       "Records of store_bodies routes written without their prompt and answer "
                       "(over limits.max_stored_body_bytes, or the request log's queue held too "
                       "many bodies).",
                       MetricType::kCounter,
                       [fn, one] { return one(static_cast<double>(fn().bodies_dropped)); });
  }
  if (auto fn = std::move(sources.shared_state)) {
    registry_.AddGauge("iris_state_up",
                       "Whether the shared state of budgets and limits answered its last call.",
                       MetricType::kGauge, [fn, one] { return one(fn().first ? 1 : 0); });
    registry_.AddGauge(
        "iris_state_pending_settles",
        "Settled costs not yet in the shared state: queued, being sent, or waiting for it.",
        MetricType::kGauge, [fn, one] { return one(static_cast<double>(fn().second)); });
  }
  if (auto fn = std::move(sources.key_spend)) {
    // Key ids and names only (operator-chosen labels), never a key.
    registry_.AddGauge(
        "iris_key_spend_usd", "Spend of each API key in its current budget period, in USD.",
        MetricType::kGauge, [fn] {
          std::vector<GaugeSample> out;
          for (const KeySpendGauge& k : fn()) {
            out.push_back({{{"key_id", k.key_id}, {"key_name", k.key_name}, {"period", k.period}},
                           k.spent_usd});
          }
          return out;
        });
    registry_.AddGauge(
        "iris_key_budget_usd", "Budget of each API key that has one, in USD.", MetricType::kGauge,
        [fn] {
          std::vector<GaugeSample> out;
          for (const KeySpendGauge& k : fn()) {
            if (!k.budget_usd) continue;
            out.push_back({{{"key_id", k.key_id}, {"key_name", k.key_name}, {"period", k.period}},
                           *k.budget_usd});
          }
          return out;
        });
  }
  if (auto fn = std::move(sources.local_engine)) {
    registry_.AddGauge("iris_local_queue_depth", "Requests waiting for the local engine.",
                       MetricType::kGauge,
                       [fn, one] { return one(static_cast<double>(fn().queue_depth)); });
    registry_.AddGauge("iris_local_running", "Requests the local engine is generating now.",
                       MetricType::kGauge,
                       [fn, one] { return one(static_cast<double>(fn().running)); });
    registry_.AddGauge("iris_local_output_tokens_total", "Tokens the local engine has generated.",
                       MetricType::kCounter,
                       [fn, one] { return one(static_cast<double>(fn().output_tokens)); });
    registry_.AddGauge("iris_local_decode_tokens_per_second",
                       "Decode speed of the local engine's last generation.", MetricType::kGauge,
                       [fn, one] { return one(fn().decode_tokens_per_second); });
    registry_.AddGauge("iris_local_kv_blocks_in_use",
                       "KV cache blocks (16 positions each) the local engine holds: running "
                       "sequences and cached prompt prefixes.",
                       MetricType::kGauge,
                       [fn, one] { return one(static_cast<double>(fn().kv_blocks_in_use)); });
    registry_.AddGauge("iris_local_kv_blocks", "KV cache blocks the local engine may hold.",
                       MetricType::kGauge,
                       [fn, one] { return one(static_cast<double>(fn().kv_blocks_total)); });
    registry_.AddGauge("iris_local_prefix_hit_tokens_total",
                       "Prompt positions the local engine took from cached prefixes instead of "
                       "computing them.",
                       MetricType::kCounter,
                       [fn, one] { return one(static_cast<double>(fn().prefix_hit_tokens)); });
    registry_.AddGauge("iris_local_image_cache_hits_total",
                       "Images and videos whose features came from the local engine's cache.",
                       MetricType::kCounter,
                       [fn, one] { return one(static_cast<double>(fn().image_cache_hits)); });
    registry_.AddGauge("iris_local_image_cache_misses_total",
                       "Images and videos the local engine's vision tower encoded.",
                       MetricType::kCounter,
                       [fn, one] { return one(static_cast<double>(fn().image_cache_misses)); });
    registry_.AddHistogramGauge(
        "iris_local_batch_sequences", "Sequences in each batched step of the local engine.",
        LocalBatchBounds(),
        [fn]() -> std::optional<Histogram::Snapshot> { return fn().batch_sequences; });
    registry_.AddHistogramGauge(
        "iris_local_step_seconds",
        "Wall time of each batched step of the local engine: the gap between two tokens of "
        "every answer in the step.",
        LocalStepSecondsBounds(),
        [fn]() -> std::optional<Histogram::Snapshot> { return fn().step_seconds; });
  }
}

}  // namespace iris::gateway::observe

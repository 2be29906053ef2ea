#include "gateway/observe/metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

namespace iris::gateway::observe {
namespace {

RequestSummary Ok(std::string route, std::string provider, std::string model) {
  RequestSummary s;
  s.alias = std::move(route);
  s.provider = std::move(provider);
  s.model = std::move(model);
  s.latency_ms = 120;
  s.ttft_ms = 40;
  s.overhead_ms = 0.3;
  s.usage.input_tokens = 10;
  s.usage.output_tokens = 5;
  s.usage.cached_input_tokens = 2;
  s.cost_usd = 0.000125;
  AttemptRecord a;
  a.provider = s.provider;
  a.model = s.model;
  a.outcome = "ok";
  s.attempts.push_back(a);
  return s;
}

// The value of the sample line that starts with `series + " "`, or -1.
double Sample(const std::string& text, const std::string& series) {
  size_t pos = 0;
  while ((pos = text.find(series + " ", pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      const size_t start = pos + series.size() + 1;
      return std::stod(text.substr(start, text.find('\n', start) - start));
    }
    ++pos;
  }
  return -1;
}

// The local engine's gauges as the provider would give them: 3 steps of 1 sequence, 1 of 5.
LocalEngineGauges SomeLocalEngine() {
  LocalEngineGauges g;
  g.queue_depth = 1;
  g.running = 1;
  g.output_tokens = 77;
  g.decode_tokens_per_second = 42.5;
  g.batch_sequences.cumulative = {3, 3, 3, 4, 4, 4, 4, 4, 4, 4};  // +Inf last
  g.batch_sequences.sum = 8;
  // Steps counted by milliseconds: two of 5 ms, one of 6, one of over a second.
  static std::array<std::atomic<uint64_t>, 1002> by_ms{};
  by_ms[5] = 2;
  by_ms[6] = 1;
  by_ms[1001] = 1;
  g.step_seconds = SnapshotOfCounts(LocalStepSecondsBounds(), by_ms, 1000.0);
  return g;
}

TEST(Metrics, ExactTextOfASmallRegistry) {
  MetricsRegistry r;
  CounterFamily& c = r.AddCounter("app_things_total", "Things done.", {"kind"});
  c.With({"b"}).Inc(2);
  c.With({"a"}).Inc();
  HistogramFamily& h = r.AddHistogram("app_wait_seconds", "Waits.", {}, {0.1, 1});
  h.With({}).Observe(0.05);
  h.With({}).Observe(0.5);
  h.With({}).Observe(3);
  r.AddGauge("app_up", "Whether it is up.", MetricType::kGauge, [] {
    return std::vector<GaugeSample>{{Labels{}, 1}};
  });
  r.AddGauge("app_nothing", "No samples: left out.", MetricType::kGauge,
             [] { return std::vector<GaugeSample>{}; });
  r.AddCounter("app_unused_total", "No series yet: left out.", {"x"});
  EXPECT_EQ(r.Exposition(),
            "# HELP app_things_total Things done.\n"
            "# TYPE app_things_total counter\n"
            "app_things_total{kind=\"a\"} 1\n"
            "app_things_total{kind=\"b\"} 2\n"
            "# HELP app_wait_seconds Waits.\n"
            "# TYPE app_wait_seconds histogram\n"
            "app_wait_seconds_bucket{le=\"0.1\"} 1\n"
            "app_wait_seconds_bucket{le=\"1\"} 2\n"
            "app_wait_seconds_bucket{le=\"+Inf\"} 3\n"
            "app_wait_seconds_sum 3.55\n"
            "app_wait_seconds_count 3\n"
            "# HELP app_up Whether it is up.\n"
            "# TYPE app_up gauge\n"
            "app_up 1\n");
}

TEST(Metrics, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  MetricsRegistry r;
  r.AddCounter("x_total", "Help with \\ and\nnewline.", {"v"}).With({"q\"\\\n"}).Inc();
  EXPECT_EQ(r.Exposition(),
            "# HELP x_total Help with \\\\ and\\nnewline.\n"
            "# TYPE x_total counter\n"
            "x_total{v=\"q\\\"\\\\\\n\"} 1\n");
}

TEST(Metrics, FormatsValues) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(0.00005), "0.00005");
  EXPECT_EQ(FormatValue(-3.5), "-3.5");
  EXPECT_EQ(FormatValue(1e20), "1e+20");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(std::stod(FormatValue(0.1 + 0.2)), 0.1 + 0.2);  // round trips
}

TEST(Metrics, HistogramBucketsAreCumulativeAndInclusive) {
  MetricsRegistry r;
  Histogram& h = r.AddHistogram("h_seconds", "H.", {"k"}, {1, 2, 5}).With({"x"});
  for (double v : {0.5, 1.0, 1.5, 2.0, 2.0, 4.0, 9.0}) h.Observe(v);
  const Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 5, 6, 7}));  // le=1 holds 1.0 itself
  EXPECT_DOUBLE_EQ(s.sum, 20.0);
  const std::string text = r.Exposition();
  EXPECT_EQ(Sample(text, "h_seconds_bucket{k=\"x\",le=\"2\"}"), 5);
  EXPECT_EQ(Sample(text, "h_seconds_bucket{k=\"x\",le=\"+Inf\"}"), 7);
  EXPECT_EQ(Sample(text, "h_seconds_count{k=\"x\"}"), 7);
  EXPECT_EQ(Sample(text, "h_seconds_sum{k=\"x\"}"), 20);
}

TEST(Metrics, GatewayRecordsARequest) {
  GatewayMetrics m;
  m.Record(Ok("chat", "openai", "gpt-4o-mini"));
  RequestSummary fallback = Ok("vision", "anthropic", "claude-haiku-4-5");
  AttemptRecord failed;
  failed.provider = "openai";
  failed.model = "fail-500-v";
  failed.outcome = "error";
  failed.error_class = "upstream";
  fallback.attempts.insert(fallback.attempts.begin(), failed);
  fallback.usage.cache_write_tokens = 6;
  fallback.usage.web_searches = 3;
  m.Record(fallback);
  RequestSummary error;
  error.alias = "breaker";
  error.error_class = "upstream";
  error.http_status = 502;
  error.latency_ms = 3;
  error.attempts.push_back(failed);
  m.Record(error);
  RequestSummary gone = Ok("", "openai", "gpt-4o-mini");
  gone.error_class = "client_gone";
  gone.cost_usd.reset();
  m.Record(gone);

  const std::string t = m.Exposition();
  EXPECT_EQ(
      Sample(
          t,
          R"(iris_requests_total{route="chat",provider="openai",model="gpt-4o-mini",outcome="ok"})"),
      1);
  EXPECT_EQ(
      Sample(
          t,
          R"(iris_requests_total{route="vision",provider="anthropic",model="claude-haiku-4-5",outcome="ok"})"),
      1);
  EXPECT_EQ(
      Sample(t, R"(iris_requests_total{route="breaker",provider="",model="",outcome="error"})"), 1);
  EXPECT_EQ(
      Sample(
          t,
          R"(iris_requests_total{route="",provider="openai",model="gpt-4o-mini",outcome="client_gone"})"),
      1);
  EXPECT_EQ(
      Sample(t, R"(iris_attempts_total{provider="openai",model="fail-500-v",outcome="error"})"), 2);
  EXPECT_EQ(Sample(t, R"(iris_attempts_total{provider="openai",model="gpt-4o-mini",outcome="ok"})"),
            2);
  EXPECT_EQ(Sample(t, R"(iris_errors_total{class="upstream"})"), 1);
  EXPECT_EQ(Sample(t, R"(iris_errors_total{class="client_gone"})"), 1);
  EXPECT_EQ(Sample(t, R"(iris_tokens_total{provider="openai",model="gpt-4o-mini",type="input"})"),
            20);
  EXPECT_EQ(Sample(t, R"(iris_tokens_total{provider="openai",model="gpt-4o-mini",type="cached"})"),
            4);
  EXPECT_EQ(
      Sample(t, R"(iris_tokens_total{provider="openai",model="gpt-4o-mini",type="reasoning"})"), 0);
  EXPECT_EQ(
      Sample(
          t,
          R"(iris_tokens_total{provider="anthropic",model="claude-haiku-4-5",type="cache_write"})"),
      6);
  EXPECT_EQ(Sample(t, R"(iris_web_searches_total{provider="anthropic",model="claude-haiku-4-5"})"),
            3);
  EXPECT_EQ(Sample(t, R"(iris_web_searches_total{provider="openai",model="gpt-4o-mini"})"), 0);
  EXPECT_DOUBLE_EQ(Sample(t, R"(iris_cost_usd_total{provider="openai",model="gpt-4o-mini"})"),
                   0.000125);
  EXPECT_EQ(
      Sample(t, R"(iris_request_duration_seconds_bucket{route="chat",provider="openai",le="0.1"})"),
      0);
  EXPECT_EQ(
      Sample(t,
             R"(iris_request_duration_seconds_bucket{route="chat",provider="openai",le="0.25"})"),
      1);
  EXPECT_EQ(
      Sample(
          t,
          R"(iris_time_to_first_token_seconds_bucket{provider="openai",model="gpt-4o-mini",le="0.05"})"),
      2);
  EXPECT_EQ(Sample(t, R"(iris_gateway_overhead_seconds_bucket{le="0.0005"})"), 4);
  EXPECT_EQ(Sample(t, R"(iris_gateway_overhead_seconds_count)"), 4);
}

TEST(Metrics, ScrapeSourcesBecomeGauges) {
  GatewayMetrics m;
  ScrapeSources src;
  src.breaker_states = [] {
    return std::vector<std::pair<std::string, int>>{{"openai/gpt-4o-mini", 0}, {"openai/x", 2}};
  };
  src.http = [] { return HttpGauges{3, 1}; };
  src.request_log = [] { return RequestLogGauges{4, 5, 6}; };
  src.local_engine = SomeLocalEngine;
  m.SetSources(std::move(src));
  const std::string t = m.Exposition();
  EXPECT_EQ(Sample(t, R"(iris_circuit_breaker_state{target="openai/x"})"), 2);
  EXPECT_EQ(Sample(t, R"(iris_circuit_breaker_state{target="openai/gpt-4o-mini"})"), 0);
  EXPECT_EQ(Sample(t, "iris_http_connections_open"), 3);
  EXPECT_EQ(Sample(t, "iris_http_requests_in_flight"), 1);
  EXPECT_EQ(Sample(t, "iris_request_log_queue_depth"), 4);
  EXPECT_EQ(Sample(t, "iris_request_log_dropped_total"), 5);
  EXPECT_EQ(Sample(t, "iris_request_log_written_total"), 6);
  EXPECT_EQ(Sample(t, "iris_local_output_tokens_total"), 77);
  EXPECT_EQ(Sample(t, "iris_local_decode_tokens_per_second"), 42.5);
  EXPECT_NE(t.find("iris_local_batch_sequences_bucket{le=\"1\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("iris_local_batch_sequences_bucket{le=\"8\"} 4\n"), std::string::npos) << t;
  EXPECT_NE(t.find("iris_local_batch_sequences_count 4\n"), std::string::npos) << t;
  // 5 ms is within the 0.005 bound (counted in whole milliseconds, compared exactly).
  EXPECT_NE(t.find("iris_local_step_seconds_bucket{le=\"0.005\"} 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("iris_local_step_seconds_bucket{le=\"0.01\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("iris_local_step_seconds_bucket{le=\"1\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("iris_local_step_seconds_bucket{le=\"+Inf\"} 4\n"), std::string::npos) << t;
  EXPECT_NEAR(Sample(t, "iris_local_step_seconds_sum"), 1.017, 1e-9);
  EXPECT_EQ(Sample(t, "iris_local_step_seconds_count"), 4);
  EXPECT_NE(t.find("# TYPE iris_local_step_seconds histogram\n"), std::string::npos) << t;
  EXPECT_NE(t.find("# TYPE iris_request_log_dropped_total counter\n"), std::string::npos);
}

TEST(Metrics, ConcurrentRecordsSumExactly) {
  GatewayMetrics m;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, t] {
      const std::string model = t % 2 ? "a" : "b";
      for (int i = 0; i < kPerThread; ++i) {
        RequestSummary s = Ok("chat", "openai", model);
        s.cost_usd = 0.5;  // exact in binary, so the sum is exact too
        m.Record(s);
        // A scrape racing the writers must not crash or tear.
        if (i % 5000 == 0) (void)m.Exposition();
      }
    });
  }
  for (auto& th : threads) th.join();
  const std::string t = m.Exposition();
  const double per_model = kPerThread * kThreads / 2.0;
  for (const char* model : {"a", "b"}) {
    const std::string m_label = std::string("model=\"") + model + "\"";
    EXPECT_EQ(Sample(t, "iris_requests_total{route=\"chat\",provider=\"openai\"," + m_label +
                            ",outcome=\"ok\"}"),
              per_model);
    EXPECT_EQ(Sample(t, "iris_tokens_total{provider=\"openai\"," + m_label + ",type=\"input\"}"),
              per_model * 10);
    EXPECT_EQ(Sample(t, "iris_cost_usd_total{provider=\"openai\"," + m_label + "}"),
              per_model * 0.5);
    EXPECT_EQ(
        Sample(t, "iris_time_to_first_token_seconds_count{provider=\"openai\"," + m_label + "}"),
        per_model);
  }
  EXPECT_EQ(Sample(t, R"(iris_request_duration_seconds_count{route="chat",provider="openai"})"),
            kThreads * kPerThread);
  EXPECT_EQ(Sample(t, "iris_gateway_overhead_seconds_count"), kThreads * kPerThread);
}

// Not a benchmark (no assertion on time): prints the cost of one Record for the record.
TEST(Metrics, RecordCost) {
  GatewayMetrics m;
  RequestSummary s = Ok("chat", "openai", "gpt-4o-mini");
  m.Record(s);
  constexpr int kN = 200000;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kN; ++i) m.Record(s);
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
      kN;
  std::printf("Record: %.0f ns per request (one thread)\n", ns);
  EXPECT_EQ(Sample(m.Exposition(), "iris_gateway_overhead_seconds_count"), kN + 1);
}

// Prometheus's own parser and linter: `promtool check metrics` reads the exposition on stdin
// and prints any problem. Missing promtool is a failure, not a skip.
TEST(Metrics, PromtoolAcceptsTheExposition) {
  const char* promtool = "/usr/bin/promtool";
  ASSERT_EQ(access(promtool, X_OK), 0)
      << "promtool not found: install Debian's prometheus package (apt-get install prometheus)";
  GatewayMetrics m;
  ScrapeSources src;
  src.breaker_states = [] {
    return std::vector<std::pair<std::string, int>>{{"openai/gpt-4o-mini", 1}};
  };
  src.http = [] { return HttpGauges{3, 1}; };
  src.request_log = [] { return RequestLogGauges{4, 5, 6}; };
  src.local_engine = SomeLocalEngine;
  m.SetSources(std::move(src));
  m.Record(Ok("chat", "openai", "gpt-4o-mini"));
  RequestSummary weird = Ok("", "compat \"quoted\"", "path\\model\nx");
  weird.error_class = "upstream";
  m.Record(weird);
  const std::string text = m.Exposition();

  const auto dir = std::filesystem::temp_directory_path();
  const auto in = dir / ("iris_metrics_" + std::to_string(getpid()) + ".prom");
  const auto out = dir / ("iris_metrics_" + std::to_string(getpid()) + ".out");
  std::ofstream(in) << text;
  const std::string cmd =
      std::string(promtool) + " check metrics < " + in.string() + " > " + out.string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream f(out);
  const std::string complaints((std::istreambuf_iterator<char>(f)), {});
  std::filesystem::remove(in);
  std::filesystem::remove(out);
  EXPECT_EQ(rc, 0) << complaints << "\n--- exposition ---\n" << text;
  EXPECT_EQ(complaints, "") << text;
}

}  // namespace
}  // namespace iris::gateway::observe

// `iris usage`: spend, request counts and latency percentiles from the request log, by day,
// model or provider, as an aligned table or the same JSON as the dashboard's /api/usage.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/time.h"
#include "cli/commands.h"
#include "gateway/observe/store.h"
#include "gateway/observe/usage.h"

namespace iris::cli {
namespace {

namespace observe = gateway::observe;

std::string Count(int64_t n) {
  char buf[32];
  if (n >= 10000000) {
    std::snprintf(buf, sizeof(buf), "%.1fM", n / 1e6);
  } else if (n >= 100000) {
    std::snprintf(buf, sizeof(buf), "%.1fk", n / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(n));
  }
  return buf;
}

std::string Ms(const std::optional<double>& v) {
  if (!v) return "-";
  char buf[32];
  if (*v >= 10000) {
    std::snprintf(buf, sizeof(buf), "%.1fs", *v / 1000);
  } else {
    std::snprintf(buf, sizeof(buf), "%.0fms", *v);
  }
  return buf;
}

std::string Spend(const observe::UsageStats& s) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), s.cost_usd >= 100 ? "$%.2f" : "$%.4f", s.cost_usd);
  std::string out = buf;
  if (s.unpriced_requests > 0) out += "+";  // some requests have no known price
  return out;
}

void PrintTable(const char* key_title, const std::vector<observe::UsageStats>& groups,
                const observe::UsageStats& totals) {
  size_t key_width = std::max<size_t>(std::strlen(key_title), 5);
  for (const observe::UsageStats& g : groups) key_width = std::max(key_width, g.key.size());
  const int kw = static_cast<int>(key_width);
  std::printf("%-*s %9s %7s %11s %9s %9s %8s %8s %9s\n", kw, key_title, "REQUESTS", "ERRORS",
              "SPEND", "IN TOK", "OUT TOK", "P50", "P99", "P50 TTFT");
  auto row = [kw](const std::string& key, const observe::UsageStats& s) {
    std::printf("%-*s %9s %7s %11s %9s %9s %8s %8s %9s\n", kw, key.c_str(),
                Count(s.requests).c_str(), Count(s.errors).c_str(), Spend(s).c_str(),
                Count(s.input_tokens).c_str(), Count(s.output_tokens).c_str(),
                Ms(s.latency_ms.p50).c_str(), Ms(s.latency_ms.p99).c_str(),
                Ms(s.ttft_ms.p50).c_str());
  };
  for (const observe::UsageStats& g : groups) row(g.key, g);
  if (!groups.empty()) std::printf("%s\n", std::string(key_width + 79, '-').c_str());
  row("TOTAL", totals);
  if (totals.unpriced_requests > 0) {
    std::printf("(+: %lld requests have no known price and are not in the spend)\n",
                static_cast<long long>(totals.unpriced_requests));
  }
}

}  // namespace

Result<int64_t> ParseSince(const std::string& s, int64_t now_ms) {
  return observe::ParseSince(s, now_ms, "--since");
}

void AddUsageCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "usage", "Spend, request counts and latency from the request log, by day, model or provider");
  struct Flags {
    std::string config_path;
    std::string db;
    std::string store;
    std::string since = "7d";
    std::string by;
    bool json = false;
  };
  auto f = std::make_shared<Flags>();
  auto* db = cmd->add_option("--db", f->db,
                             "the request log: a SQLite path or postgres://... (default: the data "
                             "directory's iris.db)");
  auto* store_flag =
      cmd->add_option("--store", f->store, "the same as --db (sqlite:PATH or postgres://...)")
          ->excludes(db);
  cmd->add_option("--config", f->config_path, "iris.yaml: read its `store:`")
      ->excludes(db)
      ->excludes(store_flag);
  cmd->add_option("--since", f->since, "window start: 30m, 24h, 7d, YYYY-MM-DD (UTC) or all")
      ->capture_default_str();
  cmd->add_option("--by", f->by, "group by day, model, provider or key (table default: day)")
      ->check(CLI::IsMember({"day", "model", "provider", "key"}));
  cmd->add_flag("--json", f->json, "print the report as JSON (the /api/usage shape)");
  cmd->callback([f, &exit_code] {
    const int64_t now = NowUnixMs();
    auto since = ParseSince(f->since, now);
    if (!since.ok()) {
      PrintError("usage", since.status().message());
      exit_code = 2;
      return;
    }
    observe::UsageQuery query;
    query.since_unix_ms = *since;
    query.until_unix_ms = now + 1;
    const std::string by = f->by.empty() && !f->json ? "day" : f->by;
    query.by_day = by == "day" || by.empty();
    query.by_model = by == "model" || by.empty();
    query.by_provider = by == "provider" || by.empty();
    query.by_key = by == "key" || by.empty();

    const bool explicit_store = !f->db.empty() || !f->store.empty() || !f->config_path.empty();
    auto from_flags = StoreFromFlags(f->config_path, !f->store.empty() ? f->store : f->db);
    if (!from_flags.ok()) {
      PrintError("usage", from_flags.status().message());
      exit_code = 2;
      return;
    }
    const std::string spec = *from_flags;
    const observe::StoreSpec parsed = observe::ParseStoreSpec(spec);
    const std::string where = parsed.kind == observe::StoreSpec::Kind::kPostgres
                                  ? std::string("the PostgreSQL request log")
                                  : parsed.location;
    auto store = observe::OpenStore(spec, observe::StoreOptions{.create = false});
    observe::UsageReport report;
    if (!store.ok()) {
      if (store.status().code() != ErrorCode::kNotFound || explicit_store) {
        PrintError("usage", store.status().message());
        exit_code = 1;
        return;
      }
      // The default log does not exist yet: nothing has been recorded.
      report = observe::AggregateUsage({}, query);
    } else {
      auto r = observe::QueryUsage(**store, query);
      if (!r.ok()) {
        PrintError("usage", r.status().message());
        exit_code = 1;
        return;
      }
      report = std::move(*r);
    }
    exit_code = 0;
    if (f->json) {
      std::printf("%s\n", observe::UsageJson(report).c_str());
      return;
    }
    if (report.totals.requests == 0) {
      std::printf("no requests recorded since %s in %s\n",
                  observe::UtcDay(query.since_unix_ms).c_str(),
                  store.ok() ? where.c_str() : (where + " (not created yet)").c_str());
      return;
    }
    if (by == "model") {
      PrintTable("MODEL", report.by_model, report.totals);
    } else if (by == "provider") {
      PrintTable("PROVIDER", report.by_provider, report.totals);
    } else if (by == "key") {
      // Key ids with their names.
      if (store.ok()) {
        if (auto keys = (*store)->FetchKeys(); keys.ok()) {
          for (observe::UsageStats& g : report.by_key) {
            for (const observe::KeyRecord& k : *keys) {
              if (k.id == g.key) g.key = k.name + " (" + k.id + ")";
            }
          }
        }
      }
      PrintTable("KEY", report.by_key, report.totals);
    } else {
      PrintTable("DAY (UTC)", report.by_day, report.totals);
    }
  });
}

}  // namespace iris::cli

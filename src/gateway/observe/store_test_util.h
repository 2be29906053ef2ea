// Shared by the request log's tests: temp directories, a fresh store of either backend, and
// record builders. Test-only and header-only.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <ostream>
#include <string>

#include "gateway/observe/postgres_test_server.h"
#include "gateway/observe/record.h"
#include "gateway/observe/store.h"

namespace iris::gateway::observe::testing {

enum class Backend { kSqlite, kPostgres };

inline void PrintTo(Backend b, std::ostream* os) {
  *os << (b == Backend::kSqlite ? "sqlite" : "postgres");
}

// "prefix" + i, spelled so that GCC 12's -Wrestrict false positive on `"lit" + string&&`
// stays quiet.
inline std::string Id(const char* prefix, int i) {
  std::string s(prefix);
  s += std::to_string(i);
  return s;
}

inline std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
}

// A directory removed when the object goes.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/iris-store-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A store string naming a new, empty store of `backend`. For PostgreSQL a server that
// cannot start fails the test with its reason (never a skip: CI installs the server).
inline std::string FreshStore(Backend backend, const TempDir& dir) {
  if (backend == Backend::kSqlite) {
    static int n = 0;
    return "sqlite:" + dir.path() + "/log" + Id("", ++n) + ".db";
  }
  auto& server = PostgresTestServer::Get();
  if (!server.status().ok()) {
    ADD_FAILURE() << server.status().ToString();
    return "";
  }
  auto uri = server.NewDatabase();
  if (!uri.ok()) {
    ADD_FAILURE() << uri.status().ToString();
    return "";
  }
  return *uri;
}

inline RequestSummary MakeRecord(const std::string& id, int64_t start_unix_ms) {
  RequestSummary r;
  r.request_id = id;
  r.start_unix_ms = start_unix_ms;
  r.requested_model = "fast";
  r.alias = "fast";
  r.provider = "openai";
  r.model = "gpt-4o-mini";
  r.http_status = 200;
  r.latency_ms = 120.5;
  r.ttft_ms = 40.25;
  r.overhead_ms = 0.75;
  r.usage.input_tokens = 100;
  r.usage.output_tokens = 20;
  r.usage.reported = true;
  r.cost_usd = 0.0000270;
  r.bytes_in = 512;
  r.bytes_out = 2048;
  AttemptRecord a;
  a.provider = "openai";
  a.model = "gpt-4o-mini";
  a.outcome = "ok";
  a.status = 200;
  a.latency_ms = 119.0;
  a.ttft_ms = 39.5;
  r.attempts.push_back(a);
  return r;
}

}  // namespace iris::gateway::observe::testing

// The schema migrations and the choice of backend from a store string; the backends are
// sqlite_store.cc and postgres_store.cc.
#include "gateway/observe/store.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <string>

#include "base/env.h"
#include "base/utf8.h"

namespace iris::gateway::observe {

const std::vector<std::string_view>& Migrations() {
  static const std::vector<std::string_view> kMigrations = {
      // 1: one row per request, one per attempt.
      R"sql(
CREATE TABLE requests (
  request_id TEXT PRIMARY KEY,
  start_unix_ms BIGINT NOT NULL,
  caller_key TEXT NOT NULL DEFAULT '',
  dialect TEXT NOT NULL,
  requested_model TEXT NOT NULL DEFAULT '',
  route TEXT NOT NULL DEFAULT '',
  provider TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '',
  stream INTEGER NOT NULL DEFAULT 0,
  http_status INTEGER NOT NULL,
  error_class TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  latency_ms DOUBLE PRECISION NOT NULL,
  ttft_ms DOUBLE PRECISION,
  overhead_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
  input_tokens BIGINT NOT NULL DEFAULT 0,
  output_tokens BIGINT NOT NULL DEFAULT 0,
  cached_tokens BIGINT NOT NULL DEFAULT 0,
  cache_write_tokens BIGINT NOT NULL DEFAULT 0,
  reasoning_tokens BIGINT NOT NULL DEFAULT 0,
  cost_usd DOUBLE PRECISION,
  bytes_in BIGINT NOT NULL DEFAULT 0,
  bytes_out BIGINT NOT NULL DEFAULT 0,
  attempts_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX requests_start ON requests (start_unix_ms);
CREATE INDEX requests_provider_start ON requests (provider, start_unix_ms);
CREATE INDEX requests_model_start ON requests (model, start_unix_ms);
CREATE TABLE attempts (
  request_id TEXT NOT NULL,
  n INTEGER NOT NULL,
  provider TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '',
  outcome TEXT NOT NULL DEFAULT '',
  status INTEGER NOT NULL DEFAULT 0,
  error_class TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
  ttft_ms DOUBLE PRECISION,
  PRIMARY KEY (request_id, n)
);
)sql",
      // 2: gateway API keys, stored as the SHA-256 of the key.
      R"sql(
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  hint TEXT NOT NULL DEFAULT '',
  created_unix_ms BIGINT NOT NULL,
  updated_unix_ms BIGINT NOT NULL DEFAULT 0,
  expires_unix_ms BIGINT NOT NULL DEFAULT 0,
  revoked_unix_ms BIGINT NOT NULL DEFAULT 0,
  budget_usd DOUBLE PRECISION,
  budget_period TEXT NOT NULL DEFAULT 'total',
  rpm BIGINT NOT NULL DEFAULT 0,
  tpm BIGINT NOT NULL DEFAULT 0,
  models TEXT NOT NULL DEFAULT '[]'
);
)sql",
      // 3: the prompt and answer of requests on store_bodies routes, apart from the rows the
      // usage report scans.
      R"sql(
CREATE TABLE request_bodies (
  request_id TEXT PRIMARY KEY,
  request_body TEXT NOT NULL,
  response_body TEXT NOT NULL
);
)sql",
      // 4: no query reads requests by model alone (the model filter matches model OR
      // requested_model, which this index cannot answer), and every logged request paid an
      // insert into it.
      R"sql(
DROP INDEX IF EXISTS requests_model_start;
)sql",
      // 5: web searches a provider ran and billed by the search (cost_usd counts them).
      R"sql(
ALTER TABLE requests ADD COLUMN web_searches BIGINT NOT NULL DEFAULT 0;
)sql",
  };
  return kMigrations;
}

StoreSpec ParseStoreSpec(const std::string& store) {
  StoreSpec spec;
  if (store.rfind("postgres://", 0) == 0 || store.rfind("postgresql://", 0) == 0) {
    spec.kind = StoreSpec::Kind::kPostgres;
    spec.location = store;
  } else if (store.rfind("sqlite://", 0) == 0) {
    spec.location = store.substr(9);
  } else if (store.rfind("sqlite:", 0) == 0) {
    spec.location = store.substr(7);
  } else {
    spec.location = store;
  }
  if (spec.kind == StoreSpec::Kind::kSqlite && spec.location.empty()) {
    spec.location = DefaultStorePath();
  }
  return spec;
}

std::string DefaultStorePath() {
  if (auto dir = GetEnv("IRIS_DATA_DIR")) return *dir + "/iris.db";
  if (auto dir = GetEnv("XDG_DATA_HOME")) return *dir + "/iris/iris.db";
  std::string path = GetEnv("HOME").value_or(".");
  path.append("/.local/share/iris/iris.db");
  return path;
}

Result<std::unique_ptr<Store>> OpenStore(const std::string& store, const StoreOptions& options) {
  StoreSpec spec = ParseStoreSpec(store);
  if (spec.kind == StoreSpec::Kind::kPostgres) return OpenPostgresStore(spec.location);
  return OpenSqliteStore(spec.location, options);
}

namespace internal {

bool IsStorableText(std::string_view v) {
  return v.find('\0') == std::string_view::npos && IsValidUtf8(v);
}

std::string StorableText(std::string_view v) {
  const std::string lossy = LossyUtf8(v);
  std::string out;
  out.reserve(lossy.size());
  for (char c : lossy) {
    if (c == '\0') {
      out += kUtf8Replacement;
    } else {
      out += c;
    }
  }
  return out;
}

std::string_view DialectName(Dialect dialect) {
  switch (dialect) {
    case Dialect::kAnthropic:
      return "anthropic";
    case Dialect::kResponses:
      return "responses";
    case Dialect::kEmbeddings:
      return "embeddings";
    case Dialect::kAiGateway:
      return "ai-gateway";
    case Dialect::kAiGatewayEmbeddings:
      return "ai-gateway-embeddings";
    case Dialect::kOpenAI:
      break;
  }
  return "openai";
}

Dialect DialectFromName(std::string_view name) {
  if (name == "anthropic") return Dialect::kAnthropic;
  if (name == "responses") return Dialect::kResponses;
  if (name == "embeddings") return Dialect::kEmbeddings;
  if (name == "ai-gateway") return Dialect::kAiGateway;
  if (name == "ai-gateway-embeddings") return Dialect::kAiGatewayEmbeddings;
  return Dialect::kOpenAI;
}

std::string ModelsToText(const std::vector<std::string>& models) {
  boost::json::array a;
  for (const std::string& m : models) a.emplace_back(m);
  return boost::json::serialize(a);
}

std::vector<std::string> ModelsFromText(std::string_view text) {
  std::vector<std::string> out;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_array()) return out;
  for (const boost::json::value& m : v.as_array()) {
    if (m.is_string()) out.emplace_back(m.as_string());
  }
  return out;
}

Status NewerSchemaError(std::string_view where, int found) {
  return FailedPrecondition("the request log at " + std::string(where) + " has schema version " +
                            std::to_string(found) + ", newer than this iris knows (" +
                            std::to_string(LatestSchemaVersion()) +
                            "); upgrade iris or point --db/--store elsewhere");
}

}  // namespace internal

Result<std::vector<UsageRow>> Store::FetchUsageRows(int64_t since_unix_ms, int64_t until_unix_ms) {
  std::vector<UsageRow> rows;
  IRIS_RETURN_IF_ERROR(ForEachUsageRow(since_unix_ms, until_unix_ms,
                                       [&rows](const UsageRow& r) { rows.push_back(r); }));
  return rows;
}

}  // namespace iris::gateway::observe

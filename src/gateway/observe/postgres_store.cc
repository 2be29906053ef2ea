// The request log in PostgreSQL through libpq, for several gateways sharing one log. One
// connection per Store, parameterised queries only, and a broken connection is reset before
// the next statement so that a database restart costs one failed batch, not the process.
#include <libpq-fe.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/time.h"
#include "gateway/observe/store.h"

namespace iris::gateway::observe {
namespace {

// Owns one PGresult.
class PgResult {
 public:
  explicit PgResult(PGresult* r) : r_(r) {}
  PgResult(PgResult&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  PgResult& operator=(PgResult&&) = delete;
  ~PgResult() { PQclear(r_); }
  PGresult* get() const { return r_; }

 private:
  PGresult* r_;
};

// Parameters as text, NULL where unset.
class Params {
 public:
  // As both stores keep text (internal::StorableText): PostgreSQL refuses bytes that are not
  // UTF-8 with the whole batch, and a parameter's C string would end at a NUL.
  void Text(std::string v) {
    if (!internal::IsStorableText(v)) v = internal::StorableText(v);
    values_.push_back(std::move(v));
  }
  void Int(int64_t v) { values_.push_back(std::to_string(v)); }
  void Double(double v) {
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%.17g", v);
    values_.push_back(buf);
  }
  void OptDouble(std::optional<double> v) {
    if (v) {
      Double(*v);
    } else {
      values_.push_back(std::nullopt);
    }
  }
  int size() const { return static_cast<int>(values_.size()); }
  std::vector<const char*> Pointers() const {
    std::vector<const char*> p;
    for (const auto& v : values_) p.push_back(v ? v->c_str() : nullptr);
    return p;
  }

 private:
  std::vector<std::optional<std::string>> values_;
};

std::string Get(PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), PQgetlength(r, row, col));
}
int64_t GetInt(PGresult* r, int row, int col) {
  return std::strtoll(PQgetvalue(r, row, col), nullptr, 10);
}
double GetDouble(PGresult* r, int row, int col) {
  return std::strtod(PQgetvalue(r, row, col), nullptr);
}
std::optional<double> GetOptDouble(PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return std::nullopt;
  return GetDouble(r, row, col);
}
std::optional<double> Ttft(double ttft_ms) {
  return ttft_ms >= 0 ? std::optional<double>(ttft_ms) : std::nullopt;
}

// The conninfo without a password, for messages.
std::string Redact(const std::string& conninfo) {
  size_t scheme = conninfo.find("://");
  size_t at = conninfo.find('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return conninfo;
  size_t colon = conninfo.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return conninfo;
  return conninfo.substr(0, colon) + ":***" + conninfo.substr(at);
}

class PostgresStore final : public Store {
 public:
  PostgresStore(PGconn* conn, std::string conninfo)
      : conn_(conn), conninfo_(std::move(conninfo)), where_(Redact(conninfo_)) {}
  ~PostgresStore() override { PQfinish(conn_); }

  std::string_view kind() const override { return "postgres"; }

  Status Init() {
    // Notices (e.g. "relation already exists, skipping") are not for the gateway's stderr.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
    IRIS_RETURN_IF_ERROR(Exec("BEGIN"));
    Status st = MigrateLocked();
    if (!st.ok()) {
      (void)Exec("ROLLBACK");
      return st;
    }
    return Exec("COMMIT");
  }

  Result<int64_t> Insert(const std::vector<RequestSummary>& batch) override {
    IRIS_RETURN_IF_ERROR(EnsureConnected());
    IRIS_RETURN_IF_ERROR(Exec("BEGIN"));
    int64_t written = 0;
    Status st = InsertRows(batch, written);
    if (!st.ok()) {
      (void)Exec("ROLLBACK");
      return st;
    }
    IRIS_RETURN_IF_ERROR(Exec("COMMIT"));
    return written;
  }

  Status ForEachUsageRow(int64_t since, int64_t until,
                         const std::function<void(const UsageRow&)>& fn) override {
    IRIS_RETURN_IF_ERROR(EnsureConnected());
    Params p;
    p.Int(since);
    p.Int(until);
    std::vector<const char*> values = p.Pointers();
    // Single-row mode: libpq hands over one row at a time instead of the whole window.
    if (PQsendQueryParams(conn_, R"sql(
SELECT start_unix_ms, requested_model, provider, model, http_status, error_class, latency_ms,
  ttft_ms, cost_usd, input_tokens, output_tokens, cached_tokens, reasoning_tokens, caller_key,
  web_searches
FROM requests WHERE start_unix_ms >= $1 AND start_unix_ms < $2
ORDER BY start_unix_ms, request_id)sql",
                          p.size(), nullptr, values.data(), nullptr, nullptr, 0) == 0) {
      return Error("reading usage");
    }
    PQsetSingleRowMode(conn_);
    Status status = OkStatus();
    UsageRow u;
    while (PGresult* raw = PQgetResult(conn_)) {
      PgResult res(raw);
      const ExecStatusType st = PQresultStatus(raw);
      if (st == PGRES_SINGLE_TUPLE) {
        if (!status.ok()) continue;  // drain the rest after an error
        u.start_unix_ms = GetInt(raw, 0, 0);
        u.requested_model = Get(raw, 0, 1);
        u.provider = Get(raw, 0, 2);
        u.model = Get(raw, 0, 3);
        u.http_status = static_cast<int>(GetInt(raw, 0, 4));
        u.error_class = Get(raw, 0, 5);
        u.latency_ms = GetDouble(raw, 0, 6);
        u.ttft_ms = GetOptDouble(raw, 0, 7);
        u.cost_usd = GetOptDouble(raw, 0, 8);
        u.input_tokens = GetInt(raw, 0, 9);
        u.output_tokens = GetInt(raw, 0, 10);
        u.cached_tokens = GetInt(raw, 0, 11);
        u.reasoning_tokens = GetInt(raw, 0, 12);
        u.caller_key = Get(raw, 0, 13);
        u.web_searches = GetInt(raw, 0, 14);
        fn(u);
      } else if (st != PGRES_TUPLES_OK && status.ok()) {
        status = Error("reading usage");
      }
    }
    return status;
  }

  Status ForEachStoredExchange(int64_t since, int64_t until,
                               const std::function<void(const StoredExchange&)>& fn) override {
    IRIS_RETURN_IF_ERROR(EnsureConnected());
    Params p;
    p.Int(since);
    p.Int(until);
    std::vector<const char*> values = p.Pointers();
    // Single-row mode: one stored exchange in memory at a time, whatever the window.
    if (PQsendQueryParams(conn_, R"sql(
SELECT r.request_id, r.start_unix_ms, r.caller_key, r.requested_model, r.route, r.provider,
  r.model, b.request_body, b.response_body
FROM requests r JOIN request_bodies b ON b.request_id = r.request_id
WHERE r.start_unix_ms >= $1 AND r.start_unix_ms < $2
ORDER BY r.start_unix_ms, r.request_id)sql",
                          p.size(), nullptr, values.data(), nullptr, nullptr, 0) == 0) {
      return Error("reading stored bodies");
    }
    PQsetSingleRowMode(conn_);
    Status status = OkStatus();
    StoredExchange e;
    while (PGresult* raw = PQgetResult(conn_)) {
      PgResult res(raw);
      const ExecStatusType st = PQresultStatus(raw);
      if (st == PGRES_SINGLE_TUPLE) {
        if (!status.ok()) continue;  // drain the rest after an error
        e.request_id = Get(raw, 0, 0);
        e.start_unix_ms = GetInt(raw, 0, 1);
        e.caller_key = Get(raw, 0, 2);
        e.requested_model = Get(raw, 0, 3);
        e.alias = Get(raw, 0, 4);
        e.provider = Get(raw, 0, 5);
        e.model = Get(raw, 0, 6);
        e.request_body = Get(raw, 0, 7);
        e.response_body = Get(raw, 0, 8);
        fn(e);
      } else if (st != PGRES_TUPLES_OK && status.ok()) {
        status = Error("reading stored bodies");
      }
    }
    return status;
  }

  Result<std::vector<RequestSummary>> FetchRequests(const RequestFilter& f) override {
    IRIS_RETURN_IF_ERROR(EnsureConnected());
    std::string sql = R"sql(
SELECT request_id, start_unix_ms, caller_key, dialect, requested_model, route, provider, model,
  stream, http_status, error_class, error, latency_ms, ttft_ms, overhead_ms, input_tokens,
  output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd, bytes_in,
  bytes_out, web_searches
FROM requests WHERE TRUE)sql";
    Params p;
    // (Built by appending: GCC 12 warns falsely on "$" + std::to_string(...).)
    auto next = [&p] {
      std::string placeholder = "$";
      placeholder += std::to_string(p.size());
      return placeholder;
    };
    if (f.before_unix_ms > 0) {
      p.Int(f.before_unix_ms);
      sql += " AND start_unix_ms < " + next();
    }
    if (!f.provider.empty()) {
      p.Text(f.provider);
      sql += " AND provider = " + next();
    }
    if (!f.model.empty()) {
      p.Text(f.model);
      sql += " AND (model = " + next() + " OR requested_model = " + next() + ")";
    }
    if (f.http_status == -1) sql += " AND http_status >= 400";
    if (f.http_status > 0) {
      p.Int(f.http_status);
      sql += " AND http_status = " + next();
    }
    if (!f.caller_key.empty()) {
      p.Text(f.caller_key);
      sql += " AND caller_key = " + next();
    }
    p.Int(f.limit);
    sql += " ORDER BY start_unix_ms DESC, request_id DESC LIMIT " + next();
    IRIS_ASSIGN_OR_RETURN(PgResult res, Query(sql, p));
    PGresult* r = res.get();
    std::vector<RequestSummary> out;
    const int n = PQntuples(r);
    for (int i = 0; i < n; ++i) {
      RequestSummary s;
      s.request_id = Get(r, i, 0);
      s.start_unix_ms = GetInt(r, i, 1);
      s.caller_key = Get(r, i, 2);
      s.dialect = internal::DialectFromName(Get(r, i, 3));
      s.requested_model = Get(r, i, 4);
      s.alias = Get(r, i, 5);
      s.provider = Get(r, i, 6);
      s.model = Get(r, i, 7);
      s.stream = GetInt(r, i, 8) != 0;
      s.http_status = static_cast<int>(GetInt(r, i, 9));
      s.error_class = Get(r, i, 10);
      s.error = Get(r, i, 11);
      s.latency_ms = GetDouble(r, i, 12);
      s.ttft_ms = GetOptDouble(r, i, 13).value_or(-1);
      s.overhead_ms = GetDouble(r, i, 14);
      s.usage.input_tokens = GetInt(r, i, 15);
      s.usage.output_tokens = GetInt(r, i, 16);
      s.usage.cached_input_tokens = GetInt(r, i, 17);
      s.usage.cache_write_tokens = GetInt(r, i, 18);
      s.usage.reasoning_tokens = GetInt(r, i, 19);
      s.cost_usd = GetOptDouble(r, i, 20);
      s.bytes_in = GetInt(r, i, 21);
      s.bytes_out = GetInt(r, i, 22);
      s.usage.web_searches = GetInt(r, i, 23);
      out.push_back(std::move(s));
    }
    if (out.empty()) return out;

    // The attempts of every listed request in one round trip.
    Params ap;
    std::string in;
    for (const RequestSummary& s : out) {
      ap.Text(s.request_id);
      in += (in.empty() ? "$" : ", $") + std::to_string(ap.size());
    }
    IRIS_ASSIGN_OR_RETURN(PgResult ares, Query(R"sql(
SELECT request_id, n, provider, model, outcome, status, error_class, error, latency_ms, ttft_ms
FROM attempts WHERE request_id IN ()sql" + in + ") ORDER BY request_id, n",
                                               ap));
    PGresult* a = ares.get();
    std::unordered_map<std::string, RequestSummary*> by_id;
    for (RequestSummary& s : out) by_id[s.request_id] = &s;
    for (int i = 0; i < PQntuples(a); ++i) {
      auto it = by_id.find(Get(a, i, 0));
      if (it == by_id.end()) continue;
      AttemptRecord at;
      at.provider = Get(a, i, 2);
      at.model = Get(a, i, 3);
      at.outcome = Get(a, i, 4);
      at.status = static_cast<int>(GetInt(a, i, 5));
      at.error_class = Get(a, i, 6);
      at.error = Get(a, i, 7);
      at.latency_ms = GetDouble(a, i, 8);
      at.ttft_ms = GetOptDouble(a, i, 9).value_or(-1);
      it->second->attempts.push_back(std::move(at));
    }
    return out;
  }

  Status InsertKey(const KeyRecord& k) override {
    IRIS_RETURN_IF_ERROR(EnsureConnected());
    Params p = KeyParams(k);
    std::vector<const char*> values = p.Pointers();
    PgResult res(PQexecParams(conn_, R"sql(
INSERT INTO api_keys (id, name, key_hash, hint, created_unix_ms, updated_unix_ms,
  expires_unix_ms, revoked_unix_ms, budget_usd, budget_period, rpm, tpm, models)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13))sql",
                              p.size(), nullptr, values.data(), nullptr, nullptr, 0));
    if (PQresultStatus(res.get()) == PGRES_COMMAND_OK) return OkStatus();
    const char* state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
    if (state != nullptr && std::string_view(state) == "23505") {  // unique_violation
      return FailedPrecondition("a key with id " + k.id + " (or its hash) already exists");
    }
    return Error("inserting a key");
  }

  Status UpdateKey(const KeyRecord& k) override {
    IRIS_RETURN_IF_ERROR(EnsureConnected());
    IRIS_ASSIGN_OR_RETURN(PgResult res, Query(R"sql(
UPDATE api_keys SET name = $2, key_hash = $3, hint = $4, created_unix_ms = $5,
  updated_unix_ms = $6, expires_unix_ms = $7, revoked_unix_ms = $8, budget_usd = $9,
  budget_period = $10, rpm = $11, tpm = $12, models = $13
WHERE id = $1)sql",
                                              KeyParams(k)));
    if (std::atoll(PQcmdTuples(res.get())) == 0) return NotFound("no key with id " + k.id);
    return OkStatus();
  }

  Result<std::vector<KeyRecord>> FetchKeys() override {
    IRIS_RETURN_IF_ERROR(EnsureConnected());
    IRIS_ASSIGN_OR_RETURN(PgResult res, Query(R"sql(
SELECT id, name, key_hash, hint, created_unix_ms, updated_unix_ms, expires_unix_ms,
  revoked_unix_ms, budget_usd, budget_period, rpm, tpm, models
FROM api_keys ORDER BY created_unix_ms, id)sql",
                                              {}));
    PGresult* r = res.get();
    std::vector<KeyRecord> out;
    for (int i = 0; i < PQntuples(r); ++i) {
      KeyRecord k;
      k.id = Get(r, i, 0);
      k.name = Get(r, i, 1);
      k.key_hash = Get(r, i, 2);
      k.hint = Get(r, i, 3);
      k.created_unix_ms = GetInt(r, i, 4);
      k.updated_unix_ms = GetInt(r, i, 5);
      k.expires_unix_ms = GetInt(r, i, 6);
      k.revoked_unix_ms = GetInt(r, i, 7);
      k.budget_usd = GetOptDouble(r, i, 8);
      k.budget_period = Get(r, i, 9);
      k.rpm = GetInt(r, i, 10);
      k.tpm = GetInt(r, i, 11);
      k.models = internal::ModelsFromText(Get(r, i, 12));
      out.push_back(std::move(k));
    }
    return out;
  }

  Result<std::map<std::string, double>> SpendByKeySince(int64_t since_unix_ms) override {
    IRIS_RETURN_IF_ERROR(EnsureConnected());
    Params p;
    p.Int(since_unix_ms);
    IRIS_ASSIGN_OR_RETURN(PgResult res, Query(R"sql(
SELECT caller_key, SUM(cost_usd) FROM requests
WHERE start_unix_ms >= $1 AND caller_key <> '' AND cost_usd IS NOT NULL
GROUP BY caller_key)sql",
                                              p));
    std::map<std::string, double> out;
    for (int i = 0; i < PQntuples(res.get()); ++i) {
      out[Get(res.get(), i, 0)] = GetDouble(res.get(), i, 1);
    }
    return out;
  }

  Result<int> SchemaVersion() override {
    IRIS_ASSIGN_OR_RETURN(PgResult res,
                          Query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", {}));
    return static_cast<int>(GetInt(res.get(), 0, 0));
  }

  Status ExecForTest(const std::string& sql) override {
    IRIS_RETURN_IF_ERROR(EnsureConnected());
    return Exec(sql);
  }

 private:
  Status Error(std::string_view what) const {
    std::string msg = PQerrorMessage(conn_);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return Status(ErrorCode::kUnavailable,
                  "PostgreSQL " + where_ + ": " + std::string(what) + ": " + msg);
  }

  // A connection that broke (server restart, network) is reset before the next use.
  Status EnsureConnected() {
    if (PQstatus(conn_) == CONNECTION_OK) return OkStatus();
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) return Error("reconnecting");
    return OkStatus();
  }

  Status Exec(const std::string& sql) {
    PgResult res(PQexec(conn_, sql.c_str()));
    ExecStatusType st = PQresultStatus(res.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return Error(sql.substr(0, 40));
    return OkStatus();
  }

  Result<PgResult> Query(const std::string& sql, const Params& params) {
    std::vector<const char*> values = params.Pointers();
    PgResult res(PQexecParams(conn_, sql.c_str(), params.size(), nullptr, values.data(), nullptr,
                              nullptr, 0));
    ExecStatusType st = PQresultStatus(res.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return Error("query");
    return res;
  }

  static Params KeyParams(const KeyRecord& k) {
    Params p;
    p.Text(k.id);
    p.Text(k.name);
    p.Text(k.key_hash);
    p.Text(k.hint);
    p.Int(k.created_unix_ms);
    p.Int(k.updated_unix_ms);
    p.Int(k.expires_unix_ms);
    p.Int(k.revoked_unix_ms);
    p.OptDouble(k.budget_usd);
    p.Text(k.budget_period);
    p.Int(k.rpm);
    p.Int(k.tpm);
    p.Text(internal::ModelsToText(k.models));
    return p;
  }

  Status InsertRows(const std::vector<RequestSummary>& batch, int64_t& written) {
    static const std::string kInsertRequest = R"sql(
INSERT INTO requests (request_id, start_unix_ms, caller_key, dialect, requested_model, route,
  provider, model, stream, http_status, error_class, error, latency_ms, ttft_ms, overhead_ms,
  input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd,
  bytes_in, bytes_out, attempts_count, web_searches)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
  $20, $21, $22, $23, $24, $25)
ON CONFLICT (request_id) DO NOTHING)sql";
    static const std::string kInsertAttempt = R"sql(
INSERT INTO attempts (request_id, n, provider, model, outcome, status, error_class, error,
  latency_ms, ttft_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (request_id, n) DO NOTHING)sql";
    static const std::string kInsertBody = R"sql(
INSERT INTO request_bodies (request_id, request_body, response_body) VALUES ($1, $2, $3)
ON CONFLICT (request_id) DO NOTHING)sql";
    for (const RequestSummary& r : batch) {
      Params p;
      p.Text(r.request_id);
      p.Int(r.start_unix_ms);
      p.Text(r.caller_key);
      p.Text(std::string(internal::DialectName(r.dialect)));
      p.Text(r.requested_model);
      p.Text(r.alias);
      p.Text(r.provider);
      p.Text(r.model);
      p.Int(r.stream ? 1 : 0);
      p.Int(r.http_status);
      p.Text(r.error_class);
      p.Text(r.error);
      p.Double(r.latency_ms);
      p.OptDouble(Ttft(r.ttft_ms));
      p.Double(r.overhead_ms);
      p.Int(r.usage.input_tokens);
      p.Int(r.usage.output_tokens);
      p.Int(r.usage.cached_input_tokens);
      p.Int(r.usage.cache_write_tokens);
      p.Int(r.usage.reasoning_tokens);
      p.OptDouble(r.cost_usd);
      p.Int(r.bytes_in);
      p.Int(r.bytes_out);
      p.Int(static_cast<int64_t>(r.attempts.size()));
      p.Int(r.usage.web_searches);
      IRIS_ASSIGN_OR_RETURN(PgResult inserted, Query(kInsertRequest, p));
      const int64_t rows = std::atoll(PQcmdTuples(inserted.get()));
      written += rows;
      if (rows > 0 && !r.request_body.empty()) {
        Params bp;
        bp.Text(r.request_id);
        bp.Text(r.request_body);
        bp.Text(r.response_body);
        IRIS_RETURN_IF_ERROR(Query(kInsertBody, bp).status());
      }
      for (size_t n = 0; n < r.attempts.size(); ++n) {
        const AttemptRecord& at = r.attempts[n];
        Params ap;
        ap.Text(r.request_id);
        ap.Int(static_cast<int64_t>(n + 1));
        ap.Text(at.provider);
        ap.Text(at.model);
        ap.Text(at.outcome);
        ap.Int(at.status);
        ap.Text(at.error_class);
        ap.Text(at.error);
        ap.Double(at.latency_ms);
        ap.OptDouble(Ttft(at.ttft_ms));
        IRIS_RETURN_IF_ERROR(Query(kInsertAttempt, ap).status());
      }
    }
    return OkStatus();
  }

  Status MigrateLocked() {
    // Gateways starting together serialise here: the lock is held until COMMIT.
    IRIS_RETURN_IF_ERROR(Exec("SELECT pg_advisory_xact_lock(7234601)"));
    IRIS_RETURN_IF_ERROR(
        Exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
             "applied_at BIGINT NOT NULL)"));
    IRIS_ASSIGN_OR_RETURN(int version, SchemaVersion());
    const auto& migrations = Migrations();
    if (version > static_cast<int>(migrations.size())) {
      return internal::NewerSchemaError(where_, version);
    }
    for (int v = version + 1; v <= static_cast<int>(migrations.size()); ++v) {
      IRIS_RETURN_IF_ERROR(Exec(std::string(migrations[v - 1])));
      Params p;
      p.Int(v);
      p.Int(NowUnixMs());
      IRIS_RETURN_IF_ERROR(
          Query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", p).status());
    }
    return OkStatus();
  }

  PGconn* conn_;
  std::string conninfo_;
  std::string where_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& conninfo) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return Internal("libpq could not allocate a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    PQfinish(conn);
    return Status(ErrorCode::kUnavailable,
                  "cannot connect to the request log at " + Redact(conninfo) + ": " + msg);
  }
  auto store = std::make_unique<PostgresStore>(conn, conninfo);
  Status st = store->Init();
  if (!st.ok()) return st.WithContext("cannot open the request log");
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace iris::gateway::observe

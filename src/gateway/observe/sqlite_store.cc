// The request log in an SQLite file: WAL so that readers (the dashboard, `iris usage`) never
// block the writer, synchronous=NORMAL (a power cut may lose the last transactions, never
// corrupt the file), prepared statements reused across batches.
#include <sqlite3.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <thread>

#include "base/time.h"
#include "gateway/observe/store.h"

namespace iris::gateway::observe {
namespace {

// Owns one prepared statement.
class Stmt {
 public:
  Stmt() = default;
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  Stmt(Stmt&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept {
    if (this != &o) {
      sqlite3_finalize(s_);
      s_ = o.s_;
      o.s_ = nullptr;
    }
    return *this;
  }
  ~Stmt() { sqlite3_finalize(s_); }
  sqlite3_stmt* get() const { return s_; }

 private:
  sqlite3_stmt* s_ = nullptr;
};

std::string ColText(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  // Its length, not its first NUL: text that holds one (a row written before text was kept as
  // StorableText) reads back whole.
  return t != nullptr ? std::string(reinterpret_cast<const char*>(t),
                                    static_cast<size_t>(sqlite3_column_bytes(s, i)))
                      : std::string();
}

std::optional<double> ColOptDouble(sqlite3_stmt* s, int i) {
  if (sqlite3_column_type(s, i) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_double(s, i);
}

class SqliteStore final : public Store {
 public:
  SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteStore() override {
    insert_request_ = Stmt();
    insert_attempt_ = Stmt();
    insert_body_ = Stmt();
    sqlite3_close_v2(db_);
  }

  std::string_view kind() const override { return "sqlite"; }

  Status Init(const StoreOptions& options) {
    sqlite3_busy_timeout(db_, options.busy_timeout_ms);
    // Reading the journal mode is the first read of the file: a file that is not a
    // database fails here.
    IRIS_RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL"));
    IRIS_RETURN_IF_ERROR(Exec("PRAGMA synchronous=NORMAL"));
    IRIS_RETURN_IF_ERROR(Exec("PRAGMA foreign_keys=OFF"));
    IRIS_RETURN_IF_ERROR(Migrate());
    IRIS_ASSIGN_OR_RETURN(insert_request_, Prepare(R"sql(
INSERT INTO requests (request_id, start_unix_ms, caller_key, dialect, requested_model, route,
  provider, model, stream, http_status, error_class, error, latency_ms, ttft_ms, overhead_ms,
  input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd,
  bytes_in, bytes_out, attempts_count, web_searches)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
  ?20, ?21, ?22, ?23, ?24, ?25)
ON CONFLICT (request_id) DO NOTHING)sql"));
    IRIS_ASSIGN_OR_RETURN(insert_attempt_, Prepare(R"sql(
INSERT INTO attempts (request_id, n, provider, model, outcome, status, error_class, error,
  latency_ms, ttft_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
ON CONFLICT (request_id, n) DO NOTHING)sql"));
    IRIS_ASSIGN_OR_RETURN(insert_body_, Prepare(R"sql(
INSERT INTO request_bodies (request_id, request_body, response_body) VALUES (?1, ?2, ?3)
ON CONFLICT (request_id) DO NOTHING)sql"));
    return OkStatus();
  }

  Result<int64_t> Insert(const std::vector<RequestSummary>& batch) override {
    IRIS_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    int64_t written = 0;
    Status st = InsertRows(batch, written);
    if (!st.ok()) {
      (void)Exec("ROLLBACK");
      return st;
    }
    st = Exec("COMMIT");
    if (!st.ok()) {
      (void)Exec("ROLLBACK");
      return st;
    }
    return written;
  }

  Status ForEachUsageRow(int64_t since, int64_t until,
                         const std::function<void(const UsageRow&)>& fn) override {
    IRIS_ASSIGN_OR_RETURN(Stmt s, Prepare(R"sql(
SELECT start_unix_ms, requested_model, provider, model, http_status, error_class, latency_ms,
  ttft_ms, cost_usd, input_tokens, output_tokens, cached_tokens, reasoning_tokens, caller_key,
  web_searches
FROM requests WHERE start_unix_ms >= ?1 AND start_unix_ms < ?2
ORDER BY start_unix_ms, request_id)sql"));
    sqlite3_bind_int64(s.get(), 1, since);
    sqlite3_bind_int64(s.get(), 2, until);
    int rc;
    UsageRow r;  // reused: its strings keep their capacity from row to row
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      sqlite3_stmt* q = s.get();
      r.start_unix_ms = sqlite3_column_int64(q, 0);
      r.requested_model = ColText(q, 1);
      r.provider = ColText(q, 2);
      r.model = ColText(q, 3);
      r.http_status = sqlite3_column_int(q, 4);
      r.error_class = ColText(q, 5);
      r.latency_ms = sqlite3_column_double(q, 6);
      r.ttft_ms = ColOptDouble(q, 7);
      r.cost_usd = ColOptDouble(q, 8);
      r.input_tokens = sqlite3_column_int64(q, 9);
      r.output_tokens = sqlite3_column_int64(q, 10);
      r.cached_tokens = sqlite3_column_int64(q, 11);
      r.reasoning_tokens = sqlite3_column_int64(q, 12);
      r.caller_key = ColText(q, 13);
      r.web_searches = sqlite3_column_int64(q, 14);
      fn(r);
    }
    if (rc != SQLITE_DONE) return Error("reading usage");
    return OkStatus();
  }

  Status ForEachStoredExchange(int64_t since, int64_t until,
                               const std::function<void(const StoredExchange&)>& fn) override {
    IRIS_ASSIGN_OR_RETURN(Stmt s, Prepare(R"sql(
SELECT r.request_id, r.start_unix_ms, r.caller_key, r.requested_model, r.route, r.provider,
  r.model, b.request_body, b.response_body
FROM requests r JOIN request_bodies b ON b.request_id = r.request_id
WHERE r.start_unix_ms >= ?1 AND r.start_unix_ms < ?2
ORDER BY r.start_unix_ms, r.request_id)sql"));
    sqlite3_bind_int64(s.get(), 1, since);
    sqlite3_bind_int64(s.get(), 2, until);
    int rc;
    StoredExchange e;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      sqlite3_stmt* q = s.get();
      e.request_id = ColText(q, 0);
      e.start_unix_ms = sqlite3_column_int64(q, 1);
      e.caller_key = ColText(q, 2);
      e.requested_model = ColText(q, 3);
      e.alias = ColText(q, 4);
      e.provider = ColText(q, 5);
      e.model = ColText(q, 6);
      e.request_body = ColText(q, 7);
      e.response_body = ColText(q, 8);
      fn(e);
    }
    if (rc != SQLITE_DONE) return Error("reading stored bodies");
    return OkStatus();
  }

  Result<std::vector<RequestSummary>> FetchRequests(const RequestFilter& f) override {
    std::string sql = R"sql(
SELECT request_id, start_unix_ms, caller_key, dialect, requested_model, route, provider, model,
  stream, http_status, error_class, error, latency_ms, ttft_ms, overhead_ms, input_tokens,
  output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd, bytes_in,
  bytes_out, web_searches
FROM requests WHERE 1=1)sql";
    if (f.before_unix_ms > 0) sql += " AND start_unix_ms < ?1";
    if (!f.provider.empty()) sql += " AND provider = ?2";
    if (!f.model.empty()) sql += " AND (model = ?3 OR requested_model = ?3)";
    if (f.http_status == -1) sql += " AND http_status >= 400";
    if (f.http_status > 0) sql += " AND http_status = ?4";
    if (!f.caller_key.empty()) sql += " AND caller_key = ?6";
    sql += " ORDER BY start_unix_ms DESC, request_id DESC LIMIT ?5";
    IRIS_ASSIGN_OR_RETURN(Stmt s, Prepare(sql));
    if (f.before_unix_ms > 0) sqlite3_bind_int64(s.get(), 1, f.before_unix_ms);
    if (!f.provider.empty()) BindText(s.get(), 2, f.provider);
    if (!f.model.empty()) BindText(s.get(), 3, f.model);
    if (f.http_status > 0) sqlite3_bind_int(s.get(), 4, f.http_status);
    sqlite3_bind_int(s.get(), 5, f.limit);
    if (!f.caller_key.empty()) BindText(s.get(), 6, f.caller_key);
    std::vector<RequestSummary> out;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      sqlite3_stmt* q = s.get();
      RequestSummary r;
      r.request_id = ColText(q, 0);
      r.start_unix_ms = sqlite3_column_int64(q, 1);
      r.caller_key = ColText(q, 2);
      r.dialect = internal::DialectFromName(ColText(q, 3));
      r.requested_model = ColText(q, 4);
      r.alias = ColText(q, 5);
      r.provider = ColText(q, 6);
      r.model = ColText(q, 7);
      r.stream = sqlite3_column_int(q, 8) != 0;
      r.http_status = sqlite3_column_int(q, 9);
      r.error_class = ColText(q, 10);
      r.error = ColText(q, 11);
      r.latency_ms = sqlite3_column_double(q, 12);
      r.ttft_ms = ColOptDouble(q, 13).value_or(-1);
      r.overhead_ms = sqlite3_column_double(q, 14);
      r.usage.input_tokens = sqlite3_column_int64(q, 15);
      r.usage.output_tokens = sqlite3_column_int64(q, 16);
      r.usage.cached_input_tokens = sqlite3_column_int64(q, 17);
      r.usage.cache_write_tokens = sqlite3_column_int64(q, 18);
      r.usage.reasoning_tokens = sqlite3_column_int64(q, 19);
      r.cost_usd = ColOptDouble(q, 20);
      r.bytes_in = sqlite3_column_int64(q, 21);
      r.bytes_out = sqlite3_column_int64(q, 22);
      r.usage.web_searches = sqlite3_column_int64(q, 23);
      out.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) return Error("listing requests");
    if (out.empty()) return out;

    IRIS_ASSIGN_OR_RETURN(Stmt a, Prepare(R"sql(
SELECT n, provider, model, outcome, status, error_class, error, latency_ms, ttft_ms
FROM attempts WHERE request_id = ?1 ORDER BY n)sql"));
    for (RequestSummary& r : out) {
      sqlite3_reset(a.get());
      BindText(a.get(), 1, r.request_id);
      while ((rc = sqlite3_step(a.get())) == SQLITE_ROW) {
        sqlite3_stmt* q = a.get();
        AttemptRecord at;
        at.provider = ColText(q, 1);
        at.model = ColText(q, 2);
        at.outcome = ColText(q, 3);
        at.status = sqlite3_column_int(q, 4);
        at.error_class = ColText(q, 5);
        at.error = ColText(q, 6);
        at.latency_ms = sqlite3_column_double(q, 7);
        at.ttft_ms = ColOptDouble(q, 8).value_or(-1);
        r.attempts.push_back(std::move(at));
      }
      if (rc != SQLITE_DONE) return Error("listing attempts");
    }
    return out;
  }

  Status InsertKey(const KeyRecord& k) override {
    IRIS_ASSIGN_OR_RETURN(Stmt s, Prepare(R"sql(
INSERT INTO api_keys (id, name, key_hash, hint, created_unix_ms, updated_unix_ms,
  expires_unix_ms, revoked_unix_ms, budget_usd, budget_period, rpm, tpm, models)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13))sql"));
    BindKey(s.get(), k);
    int rc = sqlite3_step(s.get());
    if (rc == SQLITE_CONSTRAINT) {
      return FailedPrecondition("a key with id " + k.id + " (or its hash) already exists");
    }
    if (rc != SQLITE_DONE) return Error("inserting a key");
    return OkStatus();
  }

  Status UpdateKey(const KeyRecord& k) override {
    IRIS_ASSIGN_OR_RETURN(Stmt s, Prepare(R"sql(
UPDATE api_keys SET name = ?2, key_hash = ?3, hint = ?4, created_unix_ms = ?5,
  updated_unix_ms = ?6, expires_unix_ms = ?7, revoked_unix_ms = ?8, budget_usd = ?9,
  budget_period = ?10, rpm = ?11, tpm = ?12, models = ?13
WHERE id = ?1)sql"));
    BindKey(s.get(), k);
    IRIS_RETURN_IF_ERROR(StepDone(s.get(), "updating a key"));
    if (sqlite3_changes(db_) == 0) return NotFound("no key with id " + k.id);
    return OkStatus();
  }

  Result<std::vector<KeyRecord>> FetchKeys() override {
    IRIS_ASSIGN_OR_RETURN(Stmt s, Prepare(R"sql(
SELECT id, name, key_hash, hint, created_unix_ms, updated_unix_ms, expires_unix_ms,
  revoked_unix_ms, budget_usd, budget_period, rpm, tpm, models
FROM api_keys ORDER BY created_unix_ms, id)sql"));
    std::vector<KeyRecord> out;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      sqlite3_stmt* q = s.get();
      KeyRecord k;
      k.id = ColText(q, 0);
      k.name = ColText(q, 1);
      k.key_hash = ColText(q, 2);
      k.hint = ColText(q, 3);
      k.created_unix_ms = sqlite3_column_int64(q, 4);
      k.updated_unix_ms = sqlite3_column_int64(q, 5);
      k.expires_unix_ms = sqlite3_column_int64(q, 6);
      k.revoked_unix_ms = sqlite3_column_int64(q, 7);
      k.budget_usd = ColOptDouble(q, 8);
      k.budget_period = ColText(q, 9);
      k.rpm = sqlite3_column_int64(q, 10);
      k.tpm = sqlite3_column_int64(q, 11);
      k.models = internal::ModelsFromText(ColText(q, 12));
      out.push_back(std::move(k));
    }
    if (rc != SQLITE_DONE) return Error("listing keys");
    return out;
  }

  Result<std::map<std::string, double>> SpendByKeySince(int64_t since_unix_ms) override {
    IRIS_ASSIGN_OR_RETURN(Stmt s, Prepare(R"sql(
SELECT caller_key, SUM(cost_usd) FROM requests
WHERE start_unix_ms >= ?1 AND caller_key <> '' AND cost_usd IS NOT NULL
GROUP BY caller_key)sql"));
    sqlite3_bind_int64(s.get(), 1, since_unix_ms);
    std::map<std::string, double> out;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      out[ColText(s.get(), 0)] = sqlite3_column_double(s.get(), 1);
    }
    if (rc != SQLITE_DONE) return Error("summing spend by key");
    return out;
  }

  Result<int> SchemaVersion() override {
    IRIS_ASSIGN_OR_RETURN(Stmt s,
                          Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
    if (sqlite3_step(s.get()) != SQLITE_ROW) return Error("reading the schema version");
    return sqlite3_column_int(s.get(), 0);
  }

  Status ExecForTest(const std::string& sql) override { return Exec(sql); }

 private:
  Status Error(std::string_view what) const {
    return Status(ErrorCode::kUnavailable,
                  "SQLite " + path_ + ": " + std::string(what) + ": " + sqlite3_errmsg(db_));
  }

  Status Exec(const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return OkStatus();
    std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    ErrorCode code = (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT) ? ErrorCode::kDataLoss
                                                                   : ErrorCode::kUnavailable;
    return Status(code, "SQLite " + path_ + ": " + msg);
  }

  Result<Stmt> Prepare(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      return Error("preparing a statement");
    }
    return Stmt(s);
  }

  // Every text column and filter takes text as both stores keep it (internal::StorableText),
  // so a record reads back, and a filter matches, the same in either.
  static void BindText(sqlite3_stmt* s, int i, std::string_view v) {
    std::string replaced;
    if (!internal::IsStorableText(v)) v = replaced = internal::StorableText(v);
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  // Binds `v` without a copy: its bytes must stay put until the statement's bindings are
  // cleared (InsertRows clears them before the batch they point into goes away). Text that
  // must be replaced first is copied, as BindText does.
  static void BindTextInPlace(sqlite3_stmt* s, int i, std::string_view v) {
    if (!internal::IsStorableText(v)) return BindText(s, i, v);
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
  static void BindOptDouble(sqlite3_stmt* s, int i, std::optional<double> v) {
    if (v) {
      sqlite3_bind_double(s, i, *v);
    } else {
      sqlite3_bind_null(s, i);
    }
  }
  static void BindKey(sqlite3_stmt* s, const KeyRecord& k) {
    BindText(s, 1, k.id);
    BindText(s, 2, k.name);
    BindText(s, 3, k.key_hash);
    BindText(s, 4, k.hint);
    sqlite3_bind_int64(s, 5, k.created_unix_ms);
    sqlite3_bind_int64(s, 6, k.updated_unix_ms);
    sqlite3_bind_int64(s, 7, k.expires_unix_ms);
    sqlite3_bind_int64(s, 8, k.revoked_unix_ms);
    BindOptDouble(s, 9, k.budget_usd);
    BindText(s, 10, k.budget_period);
    sqlite3_bind_int64(s, 11, k.rpm);
    sqlite3_bind_int64(s, 12, k.tpm);
    BindText(s, 13, internal::ModelsToText(k.models));
  }
  static std::optional<double> Ttft(double ttft_ms) {
    return ttft_ms >= 0 ? std::optional<double>(ttft_ms) : std::nullopt;
  }

  Status StepDone(sqlite3_stmt* s, std::string_view what) {
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return Error(what);
    return OkStatus();
  }

  Status InsertRows(const std::vector<RequestSummary>& batch, int64_t& written) {
    Status st = InsertRowsInPlace(batch, written);
    // (The rows' text was bound in place: no statement keeps a pointer into the batch.)
    for (const Stmt* stmt : {&insert_request_, &insert_attempt_, &insert_body_}) {
      if (stmt->get() != nullptr) sqlite3_clear_bindings(stmt->get());
    }
    return st;
  }

  Status InsertRowsInPlace(const std::vector<RequestSummary>& batch, int64_t& written) {
    sqlite3_stmt* s = insert_request_.get();
    sqlite3_stmt* a = insert_attempt_.get();
    size_t row = 0;
    for (const RequestSummary& r : batch) {
      // A batch of 500 rows is about 3 ms of CPU. Held in one run, it kept requests waiting
      // for that CPU on a small machine (p99 at one connection 2.2-2.4 ms instead of 0.6 on 2
      // cores). The writer offers its CPU every 16 rows (about 0.1 ms); the transaction, and
      // so the cost of each commit, stays whole.
      if (++row % 16 == 0) std::this_thread::yield();
      sqlite3_clear_bindings(s);
      BindTextInPlace(s, 1, r.request_id);
      sqlite3_bind_int64(s, 2, r.start_unix_ms);
      BindTextInPlace(s, 3, r.caller_key);
      BindTextInPlace(s, 4, internal::DialectName(r.dialect));
      BindTextInPlace(s, 5, r.requested_model);
      BindTextInPlace(s, 6, r.alias);
      BindTextInPlace(s, 7, r.provider);
      BindTextInPlace(s, 8, r.model);
      sqlite3_bind_int(s, 9, r.stream ? 1 : 0);
      sqlite3_bind_int(s, 10, r.http_status);
      BindTextInPlace(s, 11, r.error_class);
      BindTextInPlace(s, 12, r.error);
      sqlite3_bind_double(s, 13, r.latency_ms);
      BindOptDouble(s, 14, Ttft(r.ttft_ms));
      sqlite3_bind_double(s, 15, r.overhead_ms);
      sqlite3_bind_int64(s, 16, r.usage.input_tokens);
      sqlite3_bind_int64(s, 17, r.usage.output_tokens);
      sqlite3_bind_int64(s, 18, r.usage.cached_input_tokens);
      sqlite3_bind_int64(s, 19, r.usage.cache_write_tokens);
      sqlite3_bind_int64(s, 20, r.usage.reasoning_tokens);
      BindOptDouble(s, 21, r.cost_usd);
      sqlite3_bind_int64(s, 22, r.bytes_in);
      sqlite3_bind_int64(s, 23, r.bytes_out);
      sqlite3_bind_int(s, 24, static_cast<int>(r.attempts.size()));
      sqlite3_bind_int64(s, 25, r.usage.web_searches);
      IRIS_RETURN_IF_ERROR(StepDone(s, "inserting a request"));
      const int inserted = sqlite3_changes(db_);
      written += inserted;
      if (inserted > 0 && !r.request_body.empty()) {
        sqlite3_stmt* b = insert_body_.get();
        sqlite3_clear_bindings(b);
        BindTextInPlace(b, 1, r.request_id);
        BindTextInPlace(b, 2, r.request_body);
        BindTextInPlace(b, 3, r.response_body);
        IRIS_RETURN_IF_ERROR(StepDone(b, "inserting a request's bodies"));
      }
      for (size_t n = 0; n < r.attempts.size(); ++n) {
        const AttemptRecord& at = r.attempts[n];
        sqlite3_clear_bindings(a);
        BindTextInPlace(a, 1, r.request_id);
        sqlite3_bind_int(a, 2, static_cast<int>(n + 1));
        BindTextInPlace(a, 3, at.provider);
        BindTextInPlace(a, 4, at.model);
        BindTextInPlace(a, 5, at.outcome);
        sqlite3_bind_int(a, 6, at.status);
        BindTextInPlace(a, 7, at.error_class);
        BindTextInPlace(a, 8, at.error);
        sqlite3_bind_double(a, 9, at.latency_ms);
        BindOptDouble(a, 10, Ttft(at.ttft_ms));
        IRIS_RETURN_IF_ERROR(StepDone(a, "inserting an attempt"));
      }
    }
    return OkStatus();
  }

  Status Migrate() {
    // BEGIN IMMEDIATE takes the write lock first, so two processes opening the same file
    // at once apply each migration once.
    IRIS_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    Status st = MigrateLocked();
    if (!st.ok()) {
      (void)Exec("ROLLBACK");
      return st;
    }
    return Exec("COMMIT");
  }

  Status MigrateLocked() {
    IRIS_RETURN_IF_ERROR(
        Exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
             "applied_at BIGINT NOT NULL)"));
    IRIS_ASSIGN_OR_RETURN(int version, SchemaVersion());
    const auto& migrations = Migrations();
    if (version > static_cast<int>(migrations.size())) {
      return internal::NewerSchemaError(path_, version);
    }
    for (int v = version + 1; v <= static_cast<int>(migrations.size()); ++v) {
      IRIS_RETURN_IF_ERROR(Exec(std::string(migrations[v - 1])));
      IRIS_RETURN_IF_ERROR(Exec("INSERT INTO schema_migrations (version, applied_at) VALUES (" +
                                std::to_string(v) + ", " + std::to_string(NowUnixMs()) + ")"));
    }
    return OkStatus();
  }

  sqlite3* db_;
  std::string path_;
  Stmt insert_request_;
  Stmt insert_attempt_;
  Stmt insert_body_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                               const StoreOptions& options) {
  // SQLite counts every allocation under one process-wide mutex unless told not to, and iris
  // reads none of those counts. (Possible only before SQLite's first use, which is here: when
  // anything came first, the call is refused and nothing changes.)
  static const int memstatus_off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)memstatus_off;
  std::error_code ec;
  if (!options.create && !std::filesystem::exists(path, ec)) {
    return NotFound("no request log at " + path);
  }
  if (options.create) {
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return Status(ErrorCode::kUnavailable, "cannot create the directory " + parent.string() +
                                                   " for the request log: " + ec.message());
      }
    }
  }
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (options.create) flags |= SQLITE_OPEN_CREATE;
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return Status(ErrorCode::kUnavailable, "cannot open the request log " + path + ": " + msg);
  }
  auto store = std::make_unique<SqliteStore>(db, path);
  Status st = store->Init(options);
  if (!st.ok()) return st.WithContext("cannot open the request log");
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace iris::gateway::observe

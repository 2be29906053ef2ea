// Where the request log lives: one interface over SQLite (embedded default) and PostgreSQL
// (shared by several gateways), with the schema versioned by migrations applied at open.
// Aggregation lives in usage.cc so that both backends answer with the same numbers.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gateway/observe/record.h"

namespace iris::gateway::observe {

// The schema, one migration per version (version = index + 1). Each is applied once, in a
// transaction, and recorded in schema_migrations(version, applied_at). The SQL is the
// common subset that SQLite and PostgreSQL both accept. Append only: never edit one that
// has shipped.
const std::vector<std::string_view>& Migrations();
inline int LatestSchemaVersion() { return static_cast<int>(Migrations().size()); }

// The columns the usage report aggregates, one per request.
struct UsageRow {
  int64_t start_unix_ms = 0;
  std::string caller_key;  // the key's id; empty for calls without one
  std::string requested_model;
  std::string provider;
  std::string model;
  int http_status = 0;
  std::string error_class;
  double latency_ms = 0;
  std::optional<double> ttft_ms;
  std::optional<double> cost_usd;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t reasoning_tokens = 0;
  int64_t web_searches = 0;
};

// One answered request whose prompt and answer were stored (a store_bodies route).
struct StoredExchange {
  std::string request_id;
  int64_t start_unix_ms = 0;
  std::string caller_key;
  std::string requested_model;
  std::string alias;
  std::string provider;
  std::string model;
  std::string request_body;   // RequestSummary::request_body
  std::string response_body;  // RequestSummary::response_body
};

// Filters of a request listing; empty strings and 0 mean "any".
struct RequestFilter {
  int64_t before_unix_ms = 0;  // only requests that started strictly before; 0: no bound
  std::string provider;
  std::string model;       // matches the upstream model or the model the caller asked for
  int http_status = 0;     // exact status; -1: every error (>= 400)
  std::string caller_key;  // the key's id
  int limit = 100;
};

// One connection to a store. Not thread-safe: each thread that uses a store opens its own
// (the request log's writer owns one; readers open theirs).
class Store {
 public:
  virtual ~Store() = default;

  virtual std::string_view kind() const = 0;  // "sqlite" or "postgres"

  // Writes `batch` in one transaction (with the bodies of those that carry them); a request id
  // already present is left as it is, so
  // retrying a batch that may have been committed is safe. Returns how many requests were
  // written (fewer than the batch when ids were already there). On error nothing is written.
  virtual Result<int64_t> Insert(const std::vector<RequestSummary>& batch) = 0;

  // Calls `fn` for each request with since <= start_unix_ms < until, oldest first, one row at
  // a time: a window of any size costs the caller one row of memory (usage.cc aggregates on
  // the fly). An error from the database stops the walk.
  virtual Status ForEachUsageRow(int64_t since_unix_ms, int64_t until_unix_ms,
                                 const std::function<void(const UsageRow&)>& fn) = 0;
  // The same rows collected in a vector (tests and small windows).
  Result<std::vector<UsageRow>> FetchUsageRows(int64_t since_unix_ms, int64_t until_unix_ms);

  // Calls `fn` for each stored exchange with since <= start_unix_ms < until, oldest first, one
  // row at a time. An error from the database stops the walk.
  virtual Status ForEachStoredExchange(int64_t since_unix_ms, int64_t until_unix_ms,
                                       const std::function<void(const StoredExchange&)>& fn) = 0;

  // Requests matching `filter`, newest first (ties by request id, descending), with their
  // attempts in order; at most filter.limit.
  virtual Result<std::vector<RequestSummary>> FetchRequests(const RequestFilter& filter) = 0;

  // Gateway API keys (stored hashed). InsertKey refuses an id or hash already present
  // (FailedPrecondition); UpdateKey replaces every field of the key with that id (NotFound when
  // there is none). FetchKeys returns every key, revoked ones included, oldest first.
  virtual Status InsertKey(const KeyRecord& key) = 0;
  virtual Status UpdateKey(const KeyRecord& key) = 0;
  virtual Result<std::vector<KeyRecord>> FetchKeys() = 0;
  // The known cost of the requests made with each key that started at or after `since`
  // (one pass, whatever the number of keys); keys without such requests are absent.
  virtual Result<std::map<std::string, double>> SpendByKeySince(int64_t since_unix_ms) = 0;

  // The highest migration applied.
  virtual Result<int> SchemaVersion() = 0;

  // Runs raw SQL (several statements allowed). For tests and maintenance only.
  virtual Status ExecForTest(const std::string& sql) = 0;
};

struct StoreOptions {
  // SQLite: create the file (and, for the default path, its directory) when missing. When
  // false a missing file is NotFound.
  bool create = true;
  // SQLite: how long a statement waits for a lock held by another connection.
  int busy_timeout_ms = 5000;
};

// Which backend a store string names and where it points.
struct StoreSpec {
  enum class Kind { kSqlite, kPostgres };
  Kind kind = Kind::kSqlite;
  std::string location;  // SQLite file path, or the libpq connection URI
};

// "" = the default SQLite file (DefaultStorePath()), "sqlite:PATH" or a plain path = that
// SQLite file, "postgres://..." / "postgresql://..." = PostgreSQL (a libpq URI).
StoreSpec ParseStoreSpec(const std::string& store);

// $IRIS_DATA_DIR/iris.db, else $XDG_DATA_HOME/iris/iris.db, else
// ~/.local/share/iris/iris.db. Creates nothing.
std::string DefaultStorePath();

// Opens (or creates) the store and brings its schema to LatestSchemaVersion(). A store
// whose schema is newer than this binary knows is refused (FailedPrecondition).
Result<std::unique_ptr<Store>> OpenStore(const std::string& store,
                                         const StoreOptions& options = {});
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                               const StoreOptions& options = {});
Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& conninfo);

// Shared by the backends.
namespace internal {
// Text as both stores keep it: UTF-8 without NUL (PostgreSQL's text refuses anything else, and
// with it the whole batch). IsStorableText(v) when `v` is that already; StorableText(v) puts
// U+FFFD for each sequence that is not UTF-8 (a provider's error page in Latin-1, a character
// cut in two at a length) and for each NUL.
bool IsStorableText(std::string_view v);
std::string StorableText(std::string_view v);
// KeyRecord::models as stored: a JSON array of strings.
std::string ModelsToText(const std::vector<std::string>& models);
std::vector<std::string> ModelsFromText(std::string_view text);
std::string_view DialectName(Dialect dialect);
Dialect DialectFromName(std::string_view name);
// The refusal for a schema newer than Migrations() knows.
Status NewerSchemaError(std::string_view where, int found);
}  // namespace internal

}  // namespace iris::gateway::observe

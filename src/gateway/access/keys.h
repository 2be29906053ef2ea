// Gateway API keys: how a key is made, how it is stored (its SHA-256 only), and the rules of one
// key (live, expired, revoked, which models, which budget period). Pure functions, no I/O; the
// store keeps KeyRecords (observe/record.h), key_admin.h manages them, access.h enforces them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gateway/observe/record.h"

namespace iris::gateway::access {

using observe::KeyRecord;

inline constexpr std::string_view kKeyPrefix = "sk-iris-";

// A new key: "sk-iris-" + 32 random bytes in base62 (43 characters), from the OS's random
// source (OpenSSL RAND_bytes).
struct GeneratedKey {
  std::string plaintext;  // shown once, never stored
  std::string id;         // "key_" + 16 base62 characters
  std::string hash;       // HashKey(plaintext)
  std::string hint;       // KeyHint(plaintext)
};
Result<GeneratedKey> GenerateKey();

// Lower-case hex SHA-256 of the whole key, as stored and looked up.
std::string HashKey(std::string_view plaintext);
// "sk-iris-AbCd...wxyz": the first four and last four characters after the prefix.
std::string KeyHint(std::string_view plaintext);
// Base62 of `bytes` as one big-endian number, zero-padded to the length that any value of
// that many bytes needs (32 bytes: 43 characters).
std::string Base62(const unsigned char* bytes, size_t n);

// Budget periods; a period starts at 00:00 UTC (day) or the 1st 00:00 UTC (month).
enum class BudgetPeriod { kTotal, kDay, kMonth };
Result<BudgetPeriod> ParseBudgetPeriod(std::string_view text);
std::string_view BudgetPeriodName(BudgetPeriod period);
// The start of the period holding `now` (0 for kTotal) and the start of the next one
// (INT64_MAX for kTotal).
int64_t PeriodStart(BudgetPeriod period, int64_t now_unix_ms);
int64_t PeriodEnd(BudgetPeriod period, int64_t now_unix_ms);

// Names are labels on /metrics and in the dashboard: 1..64 of [A-Za-z0-9._-].
Status ValidateKeyName(std::string_view name);
// Model names in a key's allow list: model ids as api::CheckModelId allows them, or
// "provider/*" (a provider name as api::CheckProviderName allows it).
Status ValidateModelName(std::string_view model);

// Why a presented key may not call now, as a sentence; nullopt when it may.
std::optional<std::string> Unusable(const KeyRecord& key, int64_t now_unix_ms);
// Whether the key's model list (empty: any) allows `model`. An entry "p/*" allows every
// "p/..." model.
bool AllowsModel(const KeyRecord& key, std::string_view model);

// What `iris keys create/update` and POST/PATCH /admin/keys may set. Unset fields are left
// as they are (update) or take their defaults (create).
struct KeyChanges {
  std::optional<std::string> name;
  std::optional<std::optional<double>> budget_usd;  // set to nullopt: remove the budget
  std::optional<std::string> budget_period;
  std::optional<int64_t> rpm;
  std::optional<int64_t> tpm;
  std::optional<std::vector<std::string>> models;
  std::optional<int64_t> expires_unix_ms;  // 0: never
};
// Applies `changes` to `key` after checking each (names, budgets >= 0, periods, limits,
// models); nothing is applied when one is wrong.
Status ApplyKeyChanges(const KeyChanges& changes, KeyRecord& key);

}  // namespace iris::gateway::access

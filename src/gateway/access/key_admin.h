// Managing keys in a store: what `iris keys ...` and /admin/keys both do, and the JSON they
// both speak. Blocking (the store); never called on a server worker.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gateway/access/keys.h"
#include "gateway/observe/store.h"

namespace iris::gateway::access {

struct CreatedKey {
  std::string plaintext;  // shown once
  KeyRecord record;
};

// A new key named changes.name (required) with the other fields of `changes`.
Result<CreatedKey> CreateKey(observe::Store& store, const KeyChanges& changes, int64_t now_unix_ms);
// A key by id ("key_...") or by name (the newest key of that name that is not revoked).
Result<KeyRecord> FindKey(observe::Store& store, std::string_view id_or_name);
Result<KeyRecord> UpdateKey(observe::Store& store, std::string_view id_or_name,
                            const KeyChanges& changes, int64_t now_unix_ms);
// Revoking is final; revoking a revoked key changes nothing.
Result<KeyRecord> RevokeKey(observe::Store& store, std::string_view id_or_name,
                            int64_t now_unix_ms);

// {"id","name","hint","created_at","updated_at","expires_at"|null,"revoked_at"|null,
//  "status":"active"|"revoked"|"expired","budget_usd"|null,"budget_period","rpm"|null,
//  "tpm"|null,"models":[...]} (times as Unix ms). Never the hash.
boost::json::object KeyJson(const KeyRecord& key, int64_t now_unix_ms);

// The fields of a POST/PATCH /admin/keys body: name, budget_usd (number or null),
// budget_period, rpm, tpm (0 or null: no limit), models (array of strings), expires_at
// (Unix ms, "YYYY-MM-DD", or null). Unknown fields are refused.
Result<KeyChanges> KeyChangesFromJson(const boost::json::value& body);

// "YYYY-MM-DD" (UTC midnight) or Unix milliseconds; "never" or "" is 0.
Result<int64_t> ParseExpiry(std::string_view text);

}  // namespace iris::gateway::access

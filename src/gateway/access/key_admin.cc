// Key management over a store, shared by the CLI and the admin API.
#include "gateway/access/key_admin.h"

#include <charconv>

#include "base/time.h"

namespace iris::gateway::access {

namespace json = boost::json;

Result<CreatedKey> CreateKey(observe::Store& store, const KeyChanges& changes,
                             int64_t now_unix_ms) {
  if (!changes.name) return InvalidArgument("a new key needs a name (--name NAME)");
  IRIS_ASSIGN_OR_RETURN(GeneratedKey g, GenerateKey());
  KeyRecord k;
  k.id = g.id;
  k.key_hash = g.hash;
  k.hint = g.hint;
  k.created_unix_ms = now_unix_ms;
  k.updated_unix_ms = now_unix_ms;
  IRIS_RETURN_IF_ERROR(ApplyKeyChanges(changes, k));
  if (k.budget_period != "total" && !k.budget_usd) {
    return InvalidArgument("a budget period needs a budget (--budget-usd X)");
  }
  IRIS_RETURN_IF_ERROR(store.InsertKey(k));
  return CreatedKey{std::move(g.plaintext), std::move(k)};
}

Result<KeyRecord> FindKey(observe::Store& store, std::string_view id_or_name) {
  IRIS_ASSIGN_OR_RETURN(std::vector<KeyRecord> keys, store.FetchKeys());
  const KeyRecord* by_name = nullptr;
  for (const KeyRecord& k : keys) {
    if (k.id == id_or_name) return k;
    // The newest live key of that name wins (keys come oldest first).
    if (k.name == id_or_name && k.revoked_unix_ms == 0) by_name = &k;
  }
  if (by_name != nullptr) return *by_name;
  return NotFound("no key with id or name \"" + std::string(id_or_name.substr(0, 80)) +
                  "\" (iris keys list shows them)");
}

Result<KeyRecord> UpdateKey(observe::Store& store, std::string_view id_or_name,
                            const KeyChanges& changes, int64_t now_unix_ms) {
  IRIS_ASSIGN_OR_RETURN(KeyRecord k, FindKey(store, id_or_name));
  IRIS_RETURN_IF_ERROR(ApplyKeyChanges(changes, k));
  k.updated_unix_ms = now_unix_ms;
  IRIS_RETURN_IF_ERROR(store.UpdateKey(k));
  return k;
}

Result<KeyRecord> RevokeKey(observe::Store& store, std::string_view id_or_name,
                            int64_t now_unix_ms) {
  IRIS_ASSIGN_OR_RETURN(KeyRecord k, FindKey(store, id_or_name));
  if (k.revoked_unix_ms != 0) return k;
  k.revoked_unix_ms = now_unix_ms;
  k.updated_unix_ms = now_unix_ms;
  IRIS_RETURN_IF_ERROR(store.UpdateKey(k));
  return k;
}

json::object KeyJson(const KeyRecord& k, int64_t now_unix_ms) {
  json::object o;
  o["id"] = k.id;
  o["name"] = k.name;
  o["hint"] = k.hint;
  o["created_at"] = k.created_unix_ms;
  o["updated_at"] = k.updated_unix_ms;
  o["expires_at"] = k.expires_unix_ms != 0 ? json::value(k.expires_unix_ms) : json::value(nullptr);
  o["revoked_at"] = k.revoked_unix_ms != 0 ? json::value(k.revoked_unix_ms) : json::value(nullptr);
  o["status"] = k.revoked_unix_ms != 0                                         ? "revoked"
                : (k.expires_unix_ms != 0 && now_unix_ms >= k.expires_unix_ms) ? "expired"
                                                                               : "active";
  o["budget_usd"] = k.budget_usd ? json::value(*k.budget_usd) : json::value(nullptr);
  o["budget_period"] = k.budget_period;
  o["rpm"] = k.rpm > 0 ? json::value(k.rpm) : json::value(nullptr);
  o["tpm"] = k.tpm > 0 ? json::value(k.tpm) : json::value(nullptr);
  json::array models;
  for (const std::string& m : k.models) models.emplace_back(m);
  o["models"] = std::move(models);
  return o;
}

Result<int64_t> ParseExpiry(std::string_view text) {
  if (text.empty() || text == "never") return int64_t{0};
  if (text.size() == 10 && text[4] == '-') return ParseUtcDate(text);
  int64_t ms = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec != std::errc() || p != text.data() + text.size() || ms < 0) {
    return InvalidArgument("expires: expected YYYY-MM-DD, Unix milliseconds or never, got \"" +
                           std::string(text.substr(0, 40)) + "\"");
  }
  return ms;
}

namespace {
Result<int64_t> Limit(const json::value& v, std::string_view field) {
  if (v.is_null()) return int64_t{0};
  if (v.is_int64() && v.as_int64() >= 0) return v.as_int64();
  if (v.is_uint64()) return static_cast<int64_t>(std::min<uint64_t>(v.as_uint64(), INT64_MAX));
  return InvalidArgument(std::string(field) + ": expected a whole number >= 0 or null");
}
}  // namespace

Result<KeyChanges> KeyChangesFromJson(const json::value& body) {
  if (!body.is_object()) return InvalidArgument("expected a JSON object");
  KeyChanges c;
  for (const auto& [k, v] : body.as_object()) {
    if (k == "name") {
      if (!v.is_string()) return InvalidArgument("name: expected a string");
      c.name = std::string(v.as_string());
    } else if (k == "budget_usd") {
      if (v.is_null()) {
        c.budget_usd = std::optional<double>();
      } else if (v.is_number()) {
        c.budget_usd = std::optional<double>(v.to_number<double>());
      } else {
        return InvalidArgument("budget_usd: expected a number or null");
      }
    } else if (k == "budget_period") {
      if (!v.is_string()) return InvalidArgument("budget_period: expected day, month or total");
      c.budget_period = std::string(v.as_string());
    } else if (k == "rpm") {
      IRIS_ASSIGN_OR_RETURN(c.rpm, Limit(v, "rpm"));
    } else if (k == "tpm") {
      IRIS_ASSIGN_OR_RETURN(c.tpm, Limit(v, "tpm"));
    } else if (k == "models") {
      if (!v.is_array()) return InvalidArgument("models: expected an array of model names");
      std::vector<std::string> models;
      for (const json::value& m : v.as_array()) {
        if (!m.is_string()) return InvalidArgument("models: expected an array of model names");
        models.emplace_back(m.as_string());
      }
      c.models = std::move(models);
    } else if (k == "expires_at") {
      if (v.is_null()) {
        c.expires_unix_ms = 0;
      } else if (v.is_string()) {
        IRIS_ASSIGN_OR_RETURN(c.expires_unix_ms, ParseExpiry(std::string_view(v.as_string())));
      } else if (v.is_int64() && v.as_int64() >= 0) {
        c.expires_unix_ms = v.as_int64();
      } else {
        return InvalidArgument("expires_at: expected Unix milliseconds, YYYY-MM-DD or null");
      }
    } else {
      return InvalidArgument("unknown field \"" + std::string(k.substr(0, 40)) +
                             "\" (name, budget_usd, budget_period, rpm, tpm, models, expires_at)");
    }
  }
  return c;
}

}  // namespace iris::gateway::access

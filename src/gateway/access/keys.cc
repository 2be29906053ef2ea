// Key generation (OpenSSL's RAND_bytes), hashing (SHA-256) and the checks of one key.
#include "gateway/access/keys.h"

#include <openssl/rand.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/sha256.h"
#include "gateway/api/identifiers.h"

namespace iris::gateway::access {

namespace {
constexpr std::string_view kBase62 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

Result<std::string> RandomBase62(size_t bytes) {
  std::array<unsigned char, 64> buf{};
  if (bytes > buf.size() || RAND_bytes(buf.data(), static_cast<int>(bytes)) != 1) {
    return Internal("the system's random source failed (OpenSSL RAND_bytes)");
  }
  return Base62(buf.data(), bytes);
}
}  // namespace

std::string Base62(const unsigned char* bytes, size_t n) {
  // Digits needed for any n-byte value: ceil(8n / log2(62)).
  const size_t digits = static_cast<size_t>(std::ceil(static_cast<double>(n) * 8 / std::log2(62)));
  std::vector<unsigned char> num(bytes, bytes + n);  // big-endian, divided in place
  std::string out(digits, '0');
  for (size_t d = 0; d < digits; ++d) {
    unsigned rem = 0;
    for (unsigned char& b : num) {
      const unsigned cur = (rem << 8) | b;
      b = static_cast<unsigned char>(cur / 62);
      rem = cur % 62;
    }
    out[digits - 1 - d] = kBase62[rem];
  }
  return out;
}

std::string HashKey(std::string_view plaintext) { return Sha256::HexOf(plaintext); }

std::string KeyHint(std::string_view plaintext) {
  std::string_view body = plaintext;
  std::string prefix;
  if (body.starts_with(kKeyPrefix)) {
    body.remove_prefix(kKeyPrefix.size());
    prefix = kKeyPrefix;
  }
  if (body.size() < 12) return prefix + "...";
  std::string out = prefix;
  out.append(body.substr(0, 4)).append("...").append(body.substr(body.size() - 4));
  return out;
}

Result<GeneratedKey> GenerateKey() {
  GeneratedKey k;
  IRIS_ASSIGN_OR_RETURN(std::string secret, RandomBase62(32));
  k.plaintext = std::string(kKeyPrefix) + secret;
  IRIS_ASSIGN_OR_RETURN(std::string id, RandomBase62(12));
  k.id = "key_" + id.substr(id.size() - 16);
  k.hash = HashKey(k.plaintext);
  k.hint = KeyHint(k.plaintext);
  return k;
}

Result<BudgetPeriod> ParseBudgetPeriod(std::string_view text) {
  if (text == "total") return BudgetPeriod::kTotal;
  if (text == "day") return BudgetPeriod::kDay;
  if (text == "month") return BudgetPeriod::kMonth;
  return InvalidArgument("budget period: expected day, month or total, got \"" +
                         std::string(text.substr(0, 32)) + "\"");
}

std::string_view BudgetPeriodName(BudgetPeriod period) {
  switch (period) {
    case BudgetPeriod::kDay:
      return "day";
    case BudgetPeriod::kMonth:
      return "month";
    case BudgetPeriod::kTotal:
      break;
  }
  return "total";
}

namespace {
using std::chrono::days;
using std::chrono::milliseconds;
using std::chrono::sys_days;
using std::chrono::year_month_day;

int64_t ToMs(sys_days d) {
  return std::chrono::duration_cast<milliseconds>(d.time_since_epoch()).count();
}
year_month_day DayOf(int64_t unix_ms) {
  return year_month_day{
      std::chrono::floor<days>(std::chrono::sys_time<milliseconds>(milliseconds(unix_ms)))};
}
}  // namespace

int64_t PeriodStart(BudgetPeriod period, int64_t now_unix_ms) {
  const year_month_day d = DayOf(now_unix_ms);
  switch (period) {
    case BudgetPeriod::kDay:
      return ToMs(sys_days(d));
    case BudgetPeriod::kMonth:
      return ToMs(sys_days(d.year() / d.month() / 1));
    case BudgetPeriod::kTotal:
      break;
  }
  return 0;
}

int64_t PeriodEnd(BudgetPeriod period, int64_t now_unix_ms) {
  const year_month_day d = DayOf(now_unix_ms);
  switch (period) {
    case BudgetPeriod::kDay:
      return ToMs(sys_days(d) + days(1));
    case BudgetPeriod::kMonth: {
      const auto next = (d.year() / d.month() / 1) + std::chrono::months(1);
      return ToMs(sys_days(next));
    }
    case BudgetPeriod::kTotal:
      break;
  }
  return std::numeric_limits<int64_t>::max();
}

Status ValidateKeyName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return InvalidArgument("a key name has 1 to 64 characters");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return InvalidArgument("key name \"" + std::string(name) +
                             "\": only letters, digits, '.', '_' and '-' are allowed");
    }
  }
  return OkStatus();
}

Status ValidateModelName(std::string_view model) {
  // A model id as callers may name one, or "provider/*" for every model of a provider.
  if (model.size() > 2 && model.ends_with("/*")) {
    return api::CheckProviderName(model.substr(0, model.size() - 2), "models");
  }
  return api::CheckModelId(model, "models");
}

std::optional<std::string> Unusable(const KeyRecord& key, int64_t now_unix_ms) {
  if (key.revoked_unix_ms != 0) return "this API key (" + key.hint + ") has been revoked";
  if (key.expires_unix_ms != 0 && now_unix_ms >= key.expires_unix_ms) {
    return "this API key (" + key.hint + ") has expired";
  }
  return std::nullopt;
}

bool AllowsModel(const KeyRecord& key, std::string_view model) {
  if (key.models.empty()) return true;
  for (const std::string& m : key.models) {
    if (m == model) return true;
    if (m.size() >= 2 && m.ends_with("/*") &&
        model.starts_with(std::string_view(m).substr(0, m.size() - 1))) {
      return true;
    }
  }
  return false;
}

Status ApplyKeyChanges(const KeyChanges& changes, KeyRecord& key) {
  KeyRecord k = key;
  if (changes.name) {
    IRIS_RETURN_IF_ERROR(ValidateKeyName(*changes.name));
    k.name = *changes.name;
  }
  if (changes.budget_usd) {
    const std::optional<double>& b = *changes.budget_usd;
    if (b && (!std::isfinite(*b) || *b < 0 || *b > 1e12)) {
      return InvalidArgument("budget: expected US dollars between 0 and 1e12");
    }
    k.budget_usd = b;
  }
  if (changes.budget_period) {
    IRIS_ASSIGN_OR_RETURN(BudgetPeriod p, ParseBudgetPeriod(*changes.budget_period));
    k.budget_period = std::string(BudgetPeriodName(p));
  }
  if (changes.rpm) {
    if (*changes.rpm < 0 || *changes.rpm > 1'000'000'000) {
      return InvalidArgument("rpm: expected 0 (no limit) to 1e9 requests a minute");
    }
    k.rpm = *changes.rpm;
  }
  if (changes.tpm) {
    if (*changes.tpm < 0 || *changes.tpm > 1'000'000'000'000) {
      return InvalidArgument("tpm: expected 0 (no limit) to 1e12 tokens a minute");
    }
    k.tpm = *changes.tpm;
  }
  if (changes.models) {
    if (changes.models->size() > 1000) return InvalidArgument("models: at most 1000 names");
    for (const std::string& m : *changes.models) IRIS_RETURN_IF_ERROR(ValidateModelName(m));
    k.models = *changes.models;
  }
  if (changes.expires_unix_ms) {
    if (*changes.expires_unix_ms < 0) return InvalidArgument("expires: before 1970");
    k.expires_unix_ms = *changes.expires_unix_ms;
  }
  key = std::move(k);
  return OkStatus();
}

}  // namespace iris::gateway::access

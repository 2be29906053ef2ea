// The gateway's one set of JSON field readers, shared by the inbound codecs (api/) and the
// provider translators (providers/), so that every error names its field the same way.
#pragma once

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace iris::gateway::api {

// ---- Field paths -------------------------------------------------------------------------
// A path names a field from the document's root: dots before members, [i] for elements,
// e.g. "messages[0].content[1].image_url.url". The root itself is "" (or a name such as
// "request body" in messages about the whole document).

// `base` + "." + `key`; just `key` when `base` is empty.
std::string MemberPath(std::string_view base, std::string_view key);
// `base` + "[" + `index` + "]".
std::string ElementPath(std::string_view base, size_t index);

// ---- Errors (kInvalidArgument) -----------------------------------------------------------

// "path: what".
Status FieldError(std::string_view path, std::string_view what);
// "path: required".
Status MissingField(std::string_view path);
// "path: expected <expected>, got <KindName(got)>", e.g. "n: expected an integer, got a string".
Status TypeError(std::string_view path, std::string_view expected, const boost::json::value& got);
// The kind of a value as the errors say it: "null", "a boolean", "a number", "a string",
// "an array", "an object".
std::string_view KindName(const boost::json::value& v);
// `s` in double quotes, as error messages show a caller's value: "file" -> "\"file\"".
std::string Quote(std::string_view s);

// ---- Strict readers (requests from callers) ----------------------------------------------
// Each takes the value and its path and refuses a value of another kind with TypeError.

// The member `key`, or nullptr when it is absent or JSON null: both inbound dialects treat an
// explicit null as absent.
const boost::json::value* FindField(const boost::json::object& o, std::string_view key);
// The member `key` of the object at `base`; MissingField(MemberPath(base, key)) when absent
// or null.
Result<const boost::json::value*> RequireField(const boost::json::object& o, std::string_view key,
                                               std::string_view base);

Result<std::string> AsString(const boost::json::value& v, std::string_view path);
Result<bool> AsBool(const boost::json::value& v, std::string_view path);
// Any JSON number.
Result<double> AsNumber(const boost::json::value& v, std::string_view path);
// A number in [lo, hi]; outside: "path: must be between <lo> and <hi>".
Result<double> AsNumberInRange(const boost::json::value& v, std::string_view path, double lo,
                               double hi);
// The member `key` of `o` as AsNumberInRange reads it (path `key`); nullopt when absent or null.
Result<std::optional<double>> OptionalNumberInRange(const boost::json::object& o,
                                                    std::string_view key, double lo, double hi);
// An integer in int64 range; a double is accepted when it is integral and below 9e15 in
// magnitude (exact in a double). An integral number beyond that: "integer out of range".
Result<int64_t> AsInt(const boost::json::value& v, std::string_view path);
Result<const boost::json::object*> AsObject(const boost::json::value& v, std::string_view path);
Result<const boost::json::array*> AsArray(const boost::json::value& v, std::string_view path);
// An array of strings; an element of another kind is named by its index ("stop[1]").
Result<std::vector<std::string>> AsStringList(const boost::json::value& v, std::string_view path);

// RequireField then AsString / AsObject.
Result<std::string> RequiredString(const boost::json::object& o, std::string_view key,
                                   std::string_view base);
Result<const boost::json::object*> RequiredObject(const boost::json::object& o,
                                                  std::string_view key, std::string_view base);

// A JSON object written in a string (tool-call arguments): "path: expected a JSON object, got
// <kind>", or "path: expected a JSON object, got invalid JSON".
Result<boost::json::object> ParseObjectText(std::string_view text, std::string_view path);

// ---- Names of fields iris did not interpret -----------------------------------------------

// Adds `name` to `names` once. A name that is not plain (1 to 64 bytes of A-Z a-z 0-9 . _ -)
// is added as "(unnamed)": these names go into a response header. Past kMaxFieldNames distinct
// names one last "..." says there were more.
inline constexpr size_t kMaxFieldNames = 32;
void AddFieldName(std::vector<std::string>& names, std::string_view name);
// Adds `note` to `notes` once, within the same bound (kMaxFieldNames, then "...").
void AddNote(std::vector<std::string>& notes, std::string_view note);
// Notes in `as_is_only` (ChatRequest::as_is_only) that the caller's body holds something at
// `path` of kind `type` (a hosted or server tool, an item or block only the provider of the
// caller's own wire format knows) that only a provider taking the body as is can honour:
// "tools[1] (web_search)". The type is shown only when it is plain words; at most
// kMaxFieldNames notes.
void NoteAsIsOnly(std::vector<std::string>* as_is_only, std::string_view path,
                  std::string_view type);
// The keys of `o` not in `known`, each through AddFieldName (JSON null values count as absent).
std::vector<std::string> UninterpretedKeys(const boost::json::object& o,
                                           std::initializer_list<std::string_view> known);

// ---- Lenient readers (answers from providers) --------------------------------------------
// An absent, null or mistyped field reads as empty: upstreams omit fields freely, and the
// translators decide what is required.

// The string at `key`, or `fallback`.
std::string StringField(const boost::json::object& o, std::string_view key,
                        std::string_view fallback = {});
// The string at `key`, an integer there in decimal (some servers send numeric ids and error
// codes), or `fallback`.
std::string StringOrIntegerField(const boost::json::object& o, std::string_view key,
                                 std::string_view fallback = {});
// The object / array at `key`, or nullptr.
const boost::json::object* ObjectField(const boost::json::object& o, std::string_view key);
const boost::json::array* ArrayField(const boost::json::object& o, std::string_view key);
// True only when `key` holds the boolean true.
bool BoolField(const boost::json::object& o, std::string_view key);
// The integer at `key`, or 0. A double is truncated; a value beyond int64 saturates.
int64_t IntField(const boost::json::object& o, std::string_view key);

// The most tokens one count of a provider's usage can say: 2^32, more than any model reads or
// writes in one answer. Counts are added (an answer's parts, a day's requests) and priced.
inline constexpr int64_t kMaxTokenCount = int64_t{1} << 32;
// A provider's token count at `key`: IntField, then from 0 to kMaxTokenCount, so that sums of
// counts never overflow whatever a provider writes.
int64_t TokenCountField(const boost::json::object& o, std::string_view key);

}  // namespace iris::gateway::api

// Stored exchanges → training examples, and the credential scrubber of --redact-keys.
#include "gateway/observe/dataset.h"

#include <unistd.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace iris::gateway::observe {

namespace json = boost::json;

namespace {

constexpr std::string_view kRedacted = "[REDACTED]";

enum class Charset { kAlnum, kToken, kUpperAlnum, kBearer };

bool InSet(char c, Charset set) {
  const auto u = static_cast<unsigned char>(c);
  switch (set) {
    case Charset::kAlnum:
      return std::isalnum(u) != 0;
    case Charset::kToken:  // base64url and the dashes/underscores keys use
      return std::isalnum(u) != 0 || c == '-' || c == '_';
    case Charset::kUpperAlnum:
      return std::isdigit(u) != 0 || (c >= 'A' && c <= 'Z');
    case Charset::kBearer:  // RFC 6750 b64token, and the dots of JWTs
      return std::isalnum(u) != 0 || std::strchr("-._~+/=", c) != nullptr;
  }
  return false;
}

// A credential shape: a literal prefix, then at least `min_run` characters of `set`. The
// prefix is kept in the output when `keep_prefix` (so a reader sees what was there).
struct KeyShape {
  std::string_view prefix;
  Charset set;
  size_t min_run;
  bool keep_prefix;
};

// Longer prefixes first where one is the start of another (sk-ant- before sk-).
constexpr KeyShape kKeyShapes[] = {
    {"sk-ant-", Charset::kToken, 20, false},    // Anthropic
    {"sk-iris-", Charset::kAlnum, 20, false},   // iris gateway keys
    {"sk-", Charset::kToken, 20, false},        // OpenAI (sk-proj-..., sk-svcacct-..., legacy)
    {"AIza", Charset::kToken, 30, false},       // Google API keys
    {"AKIA", Charset::kUpperAlnum, 16, false},  // AWS access key ids
    {"ASIA", Charset::kUpperAlnum, 16, false},  // AWS temporary access key ids
    {"ghp_", Charset::kAlnum, 30, false},       // GitHub tokens
    {"gho_", Charset::kAlnum, 30, false},
    {"ghs_", Charset::kAlnum, 30, false},
    {"ghu_", Charset::kAlnum, 30, false},
    {"ghr_", Charset::kAlnum, 30, false},
    {"github_pat_", Charset::kToken, 20, false},
    {"hf_", Charset::kAlnum, 30, false},    // Hugging Face
    {"xoxb-", Charset::kToken, 10, false},  // Slack
    {"xoxp-", Charset::kToken, 10, false},
    {"xoxa-", Charset::kToken, 10, false},
    {"xoxs-", Charset::kToken, 10, false},
    {"Bearer ", Charset::kBearer, 16, true},  // an Authorization header pasted in
    {"bearer ", Charset::kBearer, 16, true},
    {"eyJ", Charset::kBearer, 30, false},  // JWTs (base64url of '{"')
};

bool WordStart(const std::string& s, size_t at) {
  if (at == 0) return true;
  const char c = s[at - 1];
  return !(std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-');
}

int RedactShapes(std::string& s) {
  int n = 0;
  for (const KeyShape& k : kKeyShapes) {
    size_t from = 0;
    while ((from = s.find(k.prefix, from)) != std::string::npos) {
      size_t end = from + k.prefix.size();
      while (end < s.size() && InSet(s[end], k.set)) ++end;
      const size_t run = end - from - k.prefix.size();
      if (!WordStart(s, from) || run < k.min_run) {
        from += k.prefix.size();
        continue;
      }
      const size_t begin = k.keep_prefix ? from + k.prefix.size() : from;
      s.replace(begin, end - begin, kRedacted);
      from = begin + kRedacted.size();
      ++n;
    }
  }
  // PEM private keys: the whole block, armour included.
  size_t from = 0;
  while ((from = s.find("-----BEGIN ", from)) != std::string::npos) {
    const size_t head_end = s.find("-----", from + 11);
    if (head_end == std::string::npos) break;
    const std::string_view head(s.data() + from, head_end - from);
    if (head.find("PRIVATE KEY") == std::string_view::npos) {
      from = head_end;
      continue;
    }
    const size_t end_marker = s.find("-----END ", head_end);
    size_t end = end_marker == std::string::npos ? s.size() : s.find("-----", end_marker + 9);
    end = end == std::string::npos ? s.size() : end + 5;
    s.replace(from, end - from, kRedacted);
    from += kRedacted.size();
    ++n;
  }
  return n;
}

// Applies RedactSecrets to every string of the content (a string or an array of parts).
int RedactContent(json::value& content, const std::vector<std::string>& exact) {
  int n = 0;
  auto scrub = [&](json::value& v) {
    if (!v.is_string()) return;
    std::string text(v.as_string());
    if (int k = RedactSecrets(text, exact); k > 0) {
      n += k;
      v = text;
    }
  };
  if (content.is_string()) {
    scrub(content);
  } else if (content.is_array()) {
    for (json::value& part : content.as_array()) {
      json::object* p = part.if_object();
      if (p == nullptr) continue;
      if (json::value* text = p->if_contains("text")) scrub(*text);
      // An image URL that stayed a URL may be signed (X-Amz-Credential=AKIA..., ?key=AIza...).
      if (json::value* iu = p->if_contains("image_url"); iu && iu->is_object()) {
        if (json::value* url = iu->as_object().if_contains("url");
            url && url->is_string() && !url->as_string().starts_with("data:")) {
          scrub(*url);
        }
      }
    }
  }
  return n;
}

}  // namespace

int RedactSecrets(std::string& text, const std::vector<std::string>& exact) {
  // The operator's own keys first, longest first: a shape matching part of one, or a shorter
  // key inside a longer one, must not leave the rest of it behind.
  std::vector<const std::string*> keys;
  for (const std::string& secret : exact) {
    if (secret.size() >= 8) keys.push_back(&secret);  // (shorter would scrub ordinary words)
  }
  std::sort(keys.begin(), keys.end(),
            [](const std::string* a, const std::string* b) { return a->size() > b->size(); });
  int n = 0;
  for (const std::string* secret : keys) {
    size_t from = 0;
    while ((from = text.find(*secret, from)) != std::string::npos) {
      text.replace(from, secret->size(), kRedacted);
      from += kRedacted.size();
      ++n;
    }
  }
  return n + RedactShapes(text);
}

bool AnsweredBy(const StoredExchange& e, std::string_view model) {
  if (model.empty()) return false;
  if (e.model == model) return true;
  return model.size() == e.provider.size() + 1 + e.model.size() && model.starts_with(e.provider) &&
         model[e.provider.size()] == '/' && model.ends_with(e.model);
}

ExampleVerdict TrainingExample(const StoredExchange& e, const DatasetExportOptions& options,
                               std::string& out, DatasetExportCounts& counts) {
  boost::system::error_code ec;
  json::value request = json::parse(e.request_body, ec);
  if (ec || !request.is_object()) return ExampleVerdict::kUnreadable;
  json::value response = json::parse(e.response_body, ec);
  if (ec || !response.is_object()) return ExampleVerdict::kUnreadable;
  const json::object& req = request.as_object();
  if (const json::value* tools = req.if_contains("tools");
      tools && tools->is_array() && !tools->as_array().empty()) {
    return ExampleVerdict::kTools;
  }
  const json::value* messages = req.if_contains("messages");
  if (messages == nullptr || !messages->is_array()) return ExampleVerdict::kUnreadable;

  // The answer: the first choice's text, finished by itself.
  const json::value* choices = response.as_object().if_contains("choices");
  if (choices == nullptr || !choices->is_array() || choices->as_array().empty() ||
      !choices->as_array()[0].is_object()) {
    return ExampleVerdict::kUnreadable;
  }
  const json::object& choice = choices->as_array()[0].as_object();
  const json::value* finish = choice.if_contains("finish_reason");
  const std::string_view finish_reason =
      finish && finish->is_string() ? std::string_view(finish->as_string()) : "";
  const json::value* message = choice.if_contains("message");
  if (message == nullptr || !message->is_object()) return ExampleVerdict::kUnreadable;
  if (const json::value* calls = message->as_object().if_contains("tool_calls");
      finish_reason == "tool_calls" || (calls && calls->is_array() && !calls->as_array().empty())) {
    return ExampleVerdict::kTools;
  }
  if (finish_reason == "length" || finish_reason == "content_filter") return ExampleVerdict::kCut;
  const json::value* answer = message->as_object().if_contains("content");
  if (answer == nullptr || !answer->is_string() || answer->as_string().empty()) {
    return ExampleVerdict::kEmpty;
  }

  json::array turns;
  int64_t images = 0;
  int64_t image_urls = 0;
  for (const json::value& mv : messages->as_array()) {
    const json::object* m = mv.if_object();
    if (m == nullptr) return ExampleVerdict::kUnreadable;
    const json::value* role = m->if_contains("role");
    if (role == nullptr || !role->is_string()) return ExampleVerdict::kUnreadable;
    const std::string_view r = role->as_string();
    if (r == "tool" || m->contains("tool_calls")) return ExampleVerdict::kTools;
    std::string_view turn_role = r;
    if (r == "developer") turn_role = "system";
    if (turn_role != "system" && turn_role != "user" && turn_role != "assistant") {
      return ExampleVerdict::kUnreadable;
    }
    const json::value* content = m->if_contains("content");
    if (content == nullptr || !(content->is_string() || content->is_array())) {
      return ExampleVerdict::kUnreadable;
    }
    json::value c = *content;
    if (c.is_array()) {
      for (const json::value& pv : c.as_array()) {
        const json::object* p = pv.if_object();
        const json::value* type = p ? p->if_contains("type") : nullptr;
        if (type == nullptr || !type->is_string()) return ExampleVerdict::kUnreadable;
        if (type->as_string() != "image_url") continue;
        ++images;
        const json::value* iu = p->if_contains("image_url");
        const json::value* url = iu && iu->is_object() ? iu->as_object().if_contains("url") : iu;
        if (url && url->is_string() && !url->as_string().starts_with("data:")) ++image_urls;
      }
    }
    turns.push_back(json::object{{"role", turn_role}, {"content", std::move(c)}});
  }
  turns.push_back(json::object{{"role", "assistant"}, {"content", *answer}});
  if (options.redact_keys) {
    for (json::value& t : turns) {
      counts.redactions += RedactContent(t.as_object()["content"], options.secrets);
    }
  }
  counts.images += images;
  if (image_urls > 0) ++counts.image_urls;
  json::object line;
  line["messages"] = std::move(turns);
  line["id"] = e.request_id;
  out = json::serialize(line);
  return ExampleVerdict::kWritten;
}

Status ExportDataset(Store& store, const DatasetExportOptions& options, std::FILE* out,
                     DatasetExportCounts& counts) {
  Status write_error = OkStatus();
  std::string line;
  Status walked = store.ForEachStoredExchange(
      options.since_unix_ms, options.until_unix_ms, [&](const StoredExchange& e) {
        ++counts.stored;
        if (!write_error.ok() || !AnsweredBy(e, options.model)) return;
        ++counts.matched;
        switch (TrainingExample(e, options, line, counts)) {
          case ExampleVerdict::kWritten:
            line += '\n';
            if (std::fwrite(line.data(), 1, line.size(), out) != line.size()) {
              write_error = Internal(std::string("writing the dataset: ") + std::strerror(errno));
              return;
            }
            ++counts.written;
            return;
          case ExampleVerdict::kTools:
            ++counts.tools;
            return;
          case ExampleVerdict::kCut:
            ++counts.cut;
            return;
          case ExampleVerdict::kEmpty:
            ++counts.empty;
            return;
          case ExampleVerdict::kUnreadable:
            ++counts.unreadable;
            return;
        }
      });
  IRIS_RETURN_IF_ERROR(walked);
  return write_error;
}

Result<DatasetExportCounts> ExportDatasetFile(Store& store, const DatasetExportOptions& options,
                                              const std::string& out_path) {
  const std::string partial = out_path + ".partial";
  std::FILE* out = std::fopen(partial.c_str(), "wb");
  if (out == nullptr) {
    return InvalidArgument("cannot write " + partial + ": " + std::strerror(errno));
  }
  DatasetExportCounts counts;
  Status exported = ExportDataset(store, options, out, counts);
  if (std::fflush(out) != 0 || fsync(fileno(out)) != 0) {
    if (exported.ok()) exported = Internal("writing " + partial + ": " + std::strerror(errno));
  }
  std::fclose(out);
  std::error_code ec;
  if (!exported.ok() || counts.written == 0) {
    std::filesystem::remove(partial, ec);
    IRIS_RETURN_IF_ERROR(exported);
    return NotFound(
        "nothing to export: " +
        (counts.stored == 0
             ? std::string("the request log holds no stored answers in this window: set "
                           "store_bodies: true on the route in iris.yaml and send requests")
         : counts.matched == 0 ? "none of the " + std::to_string(counts.stored) +
                                     " stored answers in this window is from " + options.model +
                                     " (the model names the answering provider/model)"
                               : DescribeExport(counts, options.model)));
  }
  std::filesystem::rename(partial, out_path, ec);
  if (ec) return Internal("cannot move " + partial + " to " + out_path + ": " + ec.message());
  return counts;
}

std::string DescribeExport(const DatasetExportCounts& c, std::string_view model) {
  std::string s = std::to_string(c.written) + " examples (" + std::to_string(c.images) +
                  " images) from " + std::to_string(c.matched) + " stored answers of " +
                  std::string(model);
  std::vector<std::string> skipped;
  if (c.tools > 0) skipped.push_back(std::to_string(c.tools) + " with tools");
  if (c.cut > 0) skipped.push_back(std::to_string(c.cut) + " cut by max_tokens or a filter");
  if (c.empty > 0) skipped.push_back(std::to_string(c.empty) + " without text");
  if (c.unreadable > 0) skipped.push_back(std::to_string(c.unreadable) + " unreadable");
  if (!skipped.empty()) {
    s += "; skipped ";
    for (size_t i = 0; i < skipped.size(); ++i) s += (i > 0 ? ", " : "") + skipped[i];
  }
  if (c.redactions > 0) s += "; " + std::to_string(c.redactions) + " credentials redacted";
  if (c.image_urls > 0) {
    s += "; " + std::to_string(c.image_urls) +
         " examples hold image URLs the gateway could not fetch (turn image_fetch on to store "
         "the pixels; iris finetune reports those lines)";
  }
  return s;
}

}  // namespace iris::gateway::observe

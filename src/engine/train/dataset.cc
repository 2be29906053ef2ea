#include "engine/train/dataset.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "base/base64.h"
#include "base/json.h"
#include "base/sha256.h"
#include "engine/media/image.h"

namespace iris::train {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr std::string_view kImage = "<image>";

// One image part's bytes: a data: URL, a file:// URL or a path (relative to base_dir).
Result<runtime::Visual> LoadVisual(const std::string& url, const runtime::Engine& engine,
                                   const DatasetOptions& options, const std::string& base_dir) {
  media::DecodeOptions decode;
  decode.max_pixels = options.max_image_pixels;
  auto from_bytes = [&](std::span<const uint8_t> bytes) -> Result<runtime::Visual> {
    IRIS_ASSIGN_OR_RETURN(media::Image image, media::DecodeImage(bytes, decode));
    runtime::Visual v;
    IRIS_ASSIGN_OR_RETURN(v.pixels, engine.PreprocessImage(image));
    return v;
  };
  if (url.starts_with("data:")) {
    const size_t comma = url.find(',');
    if (comma == std::string::npos || url.substr(0, comma).find(";base64") == std::string::npos) {
      return InvalidArgument("a data: URL that is not base64 (data:image/png;base64,...)");
    }
    IRIS_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes,
                          Base64Decode(std::string_view(url).substr(comma + 1)));
    return from_bytes(bytes);
  }
  if (url.starts_with("http://") || url.starts_with("https://")) {
    if (!options.fetch_url) {
      return Unimplemented(options.no_fetch_reason + " (" + url.substr(0, 80) +
                           "); download the image and give its path, or a data: URL");
    }
    IRIS_ASSIGN_OR_RETURN(std::string bytes, options.fetch_url(url));
    return from_bytes(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  }
  std::string path = url.starts_with("file://") ? url.substr(7) : url;
  if (!path.empty() && path[0] != '/') path = (fs::path(base_dir) / path).string();
  return engine.LoadImage(path, decode);
}

bool IsPrefix(const std::string& prefix, const std::string& text) {
  return text.size() >= prefix.size() && text.compare(0, prefix.size(), prefix) == 0;
}

size_t CountImages(std::string_view text) {
  size_t n = 0;
  for (size_t at = text.find(kImage); at != std::string_view::npos;
       at = text.find(kImage, at + kImage.size())) {
    ++n;
  }
  return n;
}

}  // namespace

size_t Dataset::tokens() const {
  size_t n = 0;
  for (const Example& e : examples) n += e.ids.size();
  return n;
}

size_t Dataset::labelled() const {
  size_t n = 0;
  for (const Example& e : examples) n += e.labelled;
  return n;
}

Result<Example> MakeExample(const json::value& line, const runtime::Engine& engine,
                            const DatasetOptions& options, const std::string& base_dir) {
  if (!line.is_object()) return InvalidArgument("not a JSON object");
  const json::value* msgs = line.as_object().if_contains("messages");
  if (msgs == nullptr || !msgs->is_array() || msgs->as_array().empty()) {
    return InvalidArgument("no \"messages\" array");
  }
  // The messages as the chat template reads them, and the images in order.
  json::array messages;
  std::vector<runtime::Visual> visuals;
  bool any_answer = false;
  size_t index = 0;
  for (const json::value& mv : msgs->as_array()) {
    ++index;
    const std::string where = "message " + std::to_string(index);
    if (!mv.is_object()) return InvalidArgument(where + " is not an object");
    const json::object& m = mv.as_object();
    const json::value* role = m.if_contains("role");
    if (role == nullptr || !role->is_string()) return InvalidArgument(where + " has no role");
    const std::string r(role->as_string());
    if (r != "system" && r != "user" && r != "assistant") {
      return InvalidArgument(where + " has role '" + r.substr(0, 40) +
                             "' (system, user or assistant)");
    }
    const json::value* content = m.if_contains("content");
    if (content == nullptr || content->is_null()) {
      return InvalidArgument(where + " has no content");
    }
    json::array parts;
    if (content->is_string()) {
      parts.push_back(json::object{{"type", "text"}, {"text", content->as_string()}});
      any_answer |= r == "assistant" && !content->as_string().empty();
    } else if (content->is_array()) {
      for (const json::value& pv : content->as_array()) {
        const json::object* p = pv.if_object();
        const json::value* type = p ? p->if_contains("type") : nullptr;
        if (type == nullptr || !type->is_string()) {
          return InvalidArgument(where + ": a content part without a type");
        }
        if (type->as_string() == "text") {
          const json::value* text = p->if_contains("text");
          if (text == nullptr || !text->is_string()) {
            return InvalidArgument(where + ": a text part without text");
          }
          parts.push_back(json::object{{"type", "text"}, {"text", text->as_string()}});
          any_answer |= r == "assistant" && !text->as_string().empty();
        } else if (type->as_string() == "image_url") {
          if (r != "user") return InvalidArgument(where + ": images belong in user messages");
          const json::value* iu = p->if_contains("image_url");
          const json::value* url = iu && iu->is_object() ? iu->as_object().if_contains("url") : iu;
          if (url == nullptr || !url->is_string()) {
            return InvalidArgument(where + ": an image_url part without a url");
          }
          if (static_cast<int>(visuals.size()) >= options.max_images) {
            return InvalidArgument("more than " + std::to_string(options.max_images) + " images");
          }
          auto v = LoadVisual(std::string(url->as_string()), engine, options, base_dir);
          if (!v.ok()) {
            return Status(v.status().code(), "image " + std::to_string(visuals.size() + 1) + ": " +
                                                 v.status().message());
          }
          visuals.push_back(std::move(v).value());
          parts.push_back(json::object{{"type", "image"}});
        } else {
          return InvalidArgument(where + ": content part type '" +
                                 std::string(type->as_string()).substr(0, 40) +
                                 "' (text or image_url)");
        }
      }
    } else {
      return InvalidArgument(where + ": content must be a string or an array of parts");
    }
    messages.push_back(json::object{{"role", r}, {"content", std::move(parts)}});
  }
  if (!any_answer) return InvalidArgument("no assistant message to learn from");

  // Segments: what precedes each answer (unlabelled) and the answer itself as the template
  // renders it (labelled), read off the renderings of the conversation up to each message.
  IRIS_ASSIGN_OR_RETURN(std::string full, engine.RenderChat(messages, false));
  struct Segment {
    size_t begin, end;
    bool answer;
  };
  std::vector<Segment> segments;
  size_t done = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].as_object().at("role").as_string() != "assistant") continue;
    json::array before(messages.begin(), messages.begin() + static_cast<ptrdiff_t>(i));
    json::array through(messages.begin(), messages.begin() + static_cast<ptrdiff_t>(i + 1));
    IRIS_ASSIGN_OR_RETURN(std::string prompt, engine.RenderChat(before, true));
    IRIS_ASSIGN_OR_RETURN(std::string with_answer, engine.RenderChat(through, false));
    if (!IsPrefix(prompt, with_answer) || !IsPrefix(with_answer, full) || prompt.size() < done) {
      return FailedPrecondition(
          "the chat template does not render this conversation message by message");
    }
    if (prompt.size() > done) segments.push_back({done, prompt.size(), false});
    segments.push_back({prompt.size(), with_answer.size(), true});
    done = with_answer.size();
  }
  if (done < full.size()) segments.push_back({done, full.size(), false});

  Example ex;
  size_t next_visual = 0;
  for (const Segment& s : segments) {
    const std::string_view text = std::string_view(full).substr(s.begin, s.end - s.begin);
    const size_t n = CountImages(text);
    if (next_visual + n > visuals.size()) {
      return InvalidArgument("the text holds more <image> placeholders than the images given");
    }
    std::span<const runtime::Visual> vs(visuals.data() + next_visual, n);
    next_visual += n;
    IRIS_ASSIGN_OR_RETURN(std::vector<int32_t> ids, engine.TokenizePrompt(text, vs));
    const size_t start = ex.ids.size();
    ex.ids.insert(ex.ids.end(), ids.begin(), ids.end());
    ex.labels.resize(ex.ids.size(), -1);
    if (s.answer) {
      // Position t predicts t + 1: the answer's tokens are the labels of the positions
      // before them.
      for (size_t t = start; t < ex.ids.size(); ++t) {
        if (t == 0) continue;
        ex.labels[t - 1] = ex.ids[t];
      }
    }
  }
  if (next_visual != visuals.size()) {
    return InvalidArgument(std::to_string(visuals.size()) + " images but " +
                           std::to_string(next_visual) + " <image> placeholders");
  }
  const size_t context = static_cast<size_t>(engine.config().text.max_position_embeddings);
  const size_t limit = options.max_tokens ? std::min(options.max_tokens, context) : context;
  if (ex.ids.size() > limit) {
    return OutOfRange(std::to_string(ex.ids.size()) + " tokens, longer than " +
                      (options.max_tokens && options.max_tokens < context
                           ? "--max-seq-tokens (" + std::to_string(limit) + ")"
                           : "the model's context (" + std::to_string(context) + ")"));
  }
  for (int32_t l : ex.labels) ex.labelled += l >= 0 ? 1 : 0;
  ex.visuals = std::move(visuals);
  return ex;
}

Result<Dataset> LoadDataset(const std::string& path, const runtime::Engine& engine,
                            const DatasetOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  Dataset d;
  d.path = path;
  // The file and every image it names (a path's bytes may change while the file does not).
  Sha256 fingerprint;
  fingerprint.Update(bytes.data(), bytes.size());
  const std::string base_dir = fs::path(path).parent_path().string();
  // A URL that failed fails again without a second wait (a dead host named on many lines).
  std::map<std::string, Status> failed;  // (opts lives only within this load)
  DatasetOptions opts = options;
  if (options.fetch_url) {
    opts.fetch_url = [&fetch = options.fetch_url, &failed](const std::string& url) {
      if (auto it = failed.find(url); it != failed.end()) return Result<std::string>(it->second);
      Result<std::string> got = fetch(url);
      if (!got.ok()) failed.emplace(url, got.status());
      return got;
    };
  }
  size_t line_no = 0, pos = 0;
  while (pos < bytes.size()) {
    if (options.stop && options.stop()) {
      return Status(ErrorCode::kUnavailable, "stopped while reading " + path);
    }
    size_t end = bytes.find('\n', pos);
    if (end == std::string::npos) end = bytes.size();
    const std::string_view line = std::string_view(bytes).substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto parsed = ParseJson(line, "line " + std::to_string(line_no));
    if (!parsed.ok()) {
      d.problems.push_back({line_no, "not JSON: " + parsed.status().message()});
      continue;
    }
    auto ex = MakeExample(*parsed, engine, opts, base_dir);
    if (!ex.ok()) {
      d.problems.push_back({line_no, ex.status().message()});
      continue;
    }
    ex->line = line_no;
    for (const runtime::Visual& v : ex->visuals) {
      fingerprint.Update(v.pixels.pixel_values.data(),
                         v.pixels.pixel_values.size() * sizeof(float));
    }
    d.examples.push_back(std::move(ex).value());
  }
  const Sha256Digest digest = fingerprint.Finish();
  std::memcpy(&d.fingerprint, digest.data(), sizeof(d.fingerprint));
  return d;
}

}  // namespace iris::train

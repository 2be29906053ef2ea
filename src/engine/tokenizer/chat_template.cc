// ChatTemplate: finds a checkpoint's template, compiles it once with the Jinja interpreter
// (jinja_*.cc) and renders it per request.
#include "engine/tokenizer/chat_template.h"

#include <filesystem>
#include <optional>
#include <utility>

#include "base/json.h"
#include "base/mapped_file.h"
#include "engine/tokenizer/jinja_ast.h"
#include "engine/tokenizer/jinja_parser.h"
#include "engine/tokenizer/jinja_render.h"

namespace iris::tokenizer {

struct ChatTemplate::Impl {
  jinja::Body body;
};

ChatTemplate::ChatTemplate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::~ChatTemplate() = default;

Result<ChatTemplate> ChatTemplate::Parse(std::string_view source) {
  IRIS_ASSIGN_OR_RETURN(jinja::Body body, jinja::ParseTemplate(source));
  auto impl = std::make_unique<Impl>();
  impl->body = std::move(body);
  return ChatTemplate(std::move(impl));
}

namespace {

Result<ChatTemplate> ParseFromFile(std::string_view source, const std::string& path) {
  Result<ChatTemplate> parsed = ChatTemplate::Parse(source);
  if (!parsed.ok()) return parsed.status().WithContext(path);
  return parsed;
}

// tokenizer_config.json's "chat_template": a string, or [{"name": ..., "template": ...}]
// from which transformers takes "default". nullopt when the field is absent.
Result<std::optional<std::string>> TemplateFromTokenizerConfig(const boost::json::value& config,
                                                               const std::string& path) {
  const boost::json::object* object = config.if_object();
  const boost::json::value* field =
      object != nullptr ? object->if_contains("chat_template") : nullptr;
  if (field == nullptr || field->is_null()) return std::optional<std::string>();
  if (const boost::json::string* s = field->if_string()) {
    return std::optional<std::string>(std::string(*s));
  }
  if (const boost::json::array* list = field->if_array()) {
    for (const boost::json::value& entry : *list) {
      const boost::json::object* e = entry.if_object();
      if (e == nullptr) continue;
      const boost::json::value* name = e->if_contains("name");
      const boost::json::value* text = e->if_contains("template");
      if (name != nullptr && name->is_string() && name->get_string() == "default" &&
          text != nullptr && text->is_string()) {
        return std::optional<std::string>(std::string(text->get_string()));
      }
    }
    return NotFound(path + ": \"chat_template\" lists named templates but none is \"default\"");
  }
  return InvalidArgument(path + ": \"chat_template\" must be a string or a list");
}

}  // namespace

Result<ChatTemplateSource> ChatTemplate::SourceFromModelDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string path = (fs::path(dir) / "chat_template.json").string();
  if (fs::is_regular_file(path, ec)) {
    IRIS_ASSIGN_OR_RETURN(boost::json::value json, ReadJsonFile(path));
    const boost::json::object* object = json.if_object();
    const boost::json::value* field =
        object != nullptr ? object->if_contains("chat_template") : nullptr;
    if (field == nullptr || !field->is_string()) {
      return InvalidArgument(path + ": expected {\"chat_template\": \"...\"}");
    }
    return ChatTemplateSource{std::string(field->get_string()), path};
  }
  path = (fs::path(dir) / "chat_template.jinja").string();
  if (fs::is_regular_file(path, ec)) {
    IRIS_ASSIGN_OR_RETURN(std::string source, ReadFileToString(path));
    return ChatTemplateSource{std::move(source), path};
  }
  path = (fs::path(dir) / "tokenizer_config.json").string();
  if (fs::is_regular_file(path, ec)) {
    IRIS_ASSIGN_OR_RETURN(boost::json::value json, ReadJsonFile(path));
    IRIS_ASSIGN_OR_RETURN(std::optional<std::string> source,
                          TemplateFromTokenizerConfig(json, path));
    if (source.has_value()) return ChatTemplateSource{std::move(*source), path};
  }
  return NotFound("no chat template in " + dir +
                  " (looked for chat_template.json, chat_template.jinja and "
                  "tokenizer_config.json's \"chat_template\")");
}

Result<ChatTemplate> ChatTemplate::FromModelDir(const std::string& dir) {
  IRIS_ASSIGN_OR_RETURN(ChatTemplateSource found, SourceFromModelDir(dir));
  return ParseFromFile(found.source, found.path);
}

Result<std::string> ChatTemplate::Render(const boost::json::object& context) const {
  return jinja::RenderTemplate(impl_->body, context);
}

}  // namespace iris::tokenizer

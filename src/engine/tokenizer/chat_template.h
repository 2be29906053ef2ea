// Renders a checkpoint's own Jinja chat template (chat_template.json or the chat_template
// field of tokenizer_config.json) with a small Jinja interpreter that covers what Hugging
// Face chat templates use.
#pragma once

#include <boost/json.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace iris::tokenizer {

// A template's text and the file it came from.
struct ChatTemplateSource {
  std::string source;
  std::string path;
};

class ChatTemplate {
 public:
  // Compiles template source. Syntax errors and unsupported constructs give an
  // InvalidArgument naming the line (and column) of the construct.
  static Result<ChatTemplate> Parse(std::string_view source);

  // Finds the template of a model directory: chat_template.json ({"chat_template": ...}),
  // else chat_template.jinja, else tokenizer_config.json's "chat_template" (a string, or a
  // list of {name, template} where "default" is taken).
  static Result<ChatTemplate> FromModelDir(const std::string& dir);
  // The source FromModelDir parses (NotFound when the directory has none).
  static Result<ChatTemplateSource> SourceFromModelDir(const std::string& dir);

  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ~ChatTemplate();

  // Renders with `context` as the global variables, typically
  // {"messages": [...], "add_generation_prompt": true, "bos_token": ..., "eos_token": ...}.
  // Runtime errors (undefined filter, wrong types, raise_exception) name the line.
  // Thread-safe.
  Result<std::string> Render(const boost::json::object& context) const;

 private:
  struct Impl;
  explicit ChatTemplate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace iris::tokenizer

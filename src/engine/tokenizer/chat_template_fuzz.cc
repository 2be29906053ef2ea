// Fuzz harness: bytes as Jinja chat template source through ChatTemplate::Parse and, when it
// compiles, Render with a fixed conversation (content as SmolVLM2's part lists or as plain
// strings, chosen by the input's length). Errors must carry a message. Templates over 4 KiB
// are skipped so each run stays short. Seeds in tests/data/fuzz/chat_template_corpus/;
// ctest fuzz_chat_template, or libFuzzer with -DIRIS_BUILD_FUZZ=ON.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "engine/tokenizer/chat_template.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

boost::json::object Context(bool parts) {
  const char* messages =
      parts ? R"([{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                  {"role": "user", "content": [{"type": "image"}, {"type": "text",
                   "text": "What is in this image?"}]},
                  {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
                  {"role": "user", "content": [{"type": "video"}, {"type": "text",
                   "text": "And here? \u00e9\ud83d\ude00"}]}])"
            : R"([{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Hi {{ there }}"},
                  {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
                   "function": {"name": "get", "arguments": {"city": "Paris"}}}]},
                  {"role": "tool", "content": "{\"temp\": 21}", "name": "get"},
                  {"role": "user", "content": "Thanks"}])";
  boost::json::object context;
  context["messages"] = boost::json::parse(messages);
  context["add_generation_prompt"] = true;
  context["bos_token"] = "<|im_start|>";
  context["eos_token"] = "<end_of_utterance>";
  context["tools"] = boost::json::parse(
      R"([{"type": "function", "function": {"name": "get", "description": "Weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])");
  return context;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using iris::tokenizer::ChatTemplate;
  if (size > 4096) return 0;
  static const boost::json::object kParts = Context(true);
  static const boost::json::object kStrings = Context(false);
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  iris::Result<ChatTemplate> chat_template = ChatTemplate::Parse(source);
  if (!chat_template.ok()) {
    Check(!chat_template.status().message().empty());
    return 0;
  }
  iris::Result<std::string> text = chat_template->Render(size % 2 == 0 ? kParts : kStrings);
  if (!text.ok()) Check(!text.status().message().empty());
  return 0;
}

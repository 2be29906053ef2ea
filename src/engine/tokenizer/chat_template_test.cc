// Tests for the chat template interpreter: the SmolVLM2 fixture template against the Hugging
// Face goldens, a ChatML template with tools, every supported Jinja feature (expected values
// were produced by jinja2 3.1 configured as transformers configures it), and the errors.
#include "engine/tokenizer/chat_template.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/json.h"

namespace iris::tokenizer {
namespace {

const std::string kSmolVlmDir = std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-256m-style";

boost::json::object ParseObject(std::string_view json) {
  Result<boost::json::value> v = ParseJson(json, "test context");
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  if (!v.ok() || !v->is_object()) return {};
  return v->as_object();
}

Result<std::string> RenderString(std::string_view source, std::string_view context_json) {
  IRIS_ASSIGN_OR_RETURN(ChatTemplate chat_template, ChatTemplate::Parse(source));
  return chat_template.Render(ParseObject(context_json));
}

// A template, its context as JSON, and what it must render to.
struct RenderCase {
  const char* source;
  const char* context;
  const char* expected;
};

void ExpectRender(const RenderCase& c) {
  SCOPED_TRACE(c.source);
  Result<std::string> rendered = RenderString(c.source, c.context);
  ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
  EXPECT_EQ(*rendered, c.expected);
}

// The error of parsing and rendering `source`, which must fail.
Status RenderError(std::string_view source, std::string_view context_json = "{}") {
  Result<std::string> rendered = RenderString(source, context_json);
  EXPECT_FALSE(rendered.ok()) << "rendered: " << *rendered;
  return rendered.ok() ? Internal("rendered") : rendered.status();
}

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// ---- the SmolVLM2 checkpoint's own template ----------------------------------------------

// The user turn of each golden case, as transformers' processor received it.
constexpr std::pair<const char*, const char*> kGoldenMessages[] = {
    {"text_only", R"([{"role": "user", "content": [
         {"type": "text", "text": "What is the capital of France?"}]}])"},
    {"image_nosplit", R"([{"role": "user", "content": [
         {"type": "image"}, {"type": "text", "text": "Can you describe this image?"}]}])"},
    {"image_split", R"([{"role": "user", "content": [
         {"type": "image"}, {"type": "text", "text": "Can you describe this image?"}]}])"},
    {"two_images", R"([{"role": "user", "content": [
         {"type": "text", "text": "Compare "}, {"type": "image"}, {"type": "text", "text": " and "},
         {"type": "image"}, {"type": "text", "text": ". What is different?"}]}])"},
    {"video", R"([{"role": "user", "content": [
         {"type": "video"}, {"type": "text", "text": "Describe this video."}]}])"},
};

boost::json::object ChatContext(const char* messages_json, bool add_generation_prompt) {
  Result<boost::json::value> messages = ParseJson(messages_json, "messages");
  EXPECT_TRUE(messages.ok()) << messages.status().ToString();
  boost::json::object context;
  context["messages"] = messages.ok() ? *messages : boost::json::value();
  context["add_generation_prompt"] = add_generation_prompt;
  return context;
}

TEST(ChatTemplateSmolVlm2Test, FixtureTemplateMatchesGoldenPrompts) {
  Result<ChatTemplate> chat_template = ChatTemplate::FromModelDir(kSmolVlmDir);
  ASSERT_TRUE(chat_template.ok()) << chat_template.status().ToString();
  Result<boost::json::value> goldens = ReadJsonFile(kSmolVlmDir + "/goldens.json");
  ASSERT_TRUE(goldens.ok()) << goldens.status().ToString();
  const boost::json::object& cases = goldens->at("cases").as_object();
  ASSERT_EQ(cases.size(), std::size(kGoldenMessages));
  for (const auto& [name, messages] : kGoldenMessages) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(cases.contains(name));
    Result<std::string> prompt = chat_template->Render(ChatContext(messages, true));
    ASSERT_TRUE(prompt.ok()) << prompt.status().ToString();
    EXPECT_EQ(*prompt, std::string(cases.at(name).at("prompt").as_string()));
  }
}

TEST(ChatTemplateSmolVlm2Test, FixtureTemplateSpellsOutEachCase) {
  Result<ChatTemplate> chat_template = ChatTemplate::FromModelDir(kSmolVlmDir);
  ASSERT_TRUE(chat_template.ok()) << chat_template.status().ToString();
  struct {
    const char* messages;
    bool add_generation_prompt;
    const char* expected;
  } const kCases[] = {
      {kGoldenMessages[1].second, true,
       "<|im_start|>User:<image>Can you describe this image?<end_of_utterance>\nAssistant:"},
      {kGoldenMessages[4].second, true,
       "<|im_start|>User: <video>Describe this video.<end_of_utterance>\nAssistant:"},
      {kGoldenMessages[0].second, false,
       "<|im_start|>User: What is the capital of France?<end_of_utterance>\n"},
      // The multi-turn example of the reference (smolvlm2.md section 7.1).
      {R"([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q1"}]},
           {"role": "assistant", "content": [{"type": "text", "text": "A1"}]},
           {"role": "user", "content": [{"type": "text", "text": "Q2"}]}])",
       true,
       "<|im_start|>User:<image>Q1<end_of_utterance>\nAssistant: A1<end_of_utterance>\n"
       "User: Q2<end_of_utterance>\nAssistant:"},
      {R"([{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
           {"role": "user", "content": [{"type": "text", "text": "Hi"}]}])",
       true,
       "<|im_start|>System: Be brief.<end_of_utterance>\nUser: Hi<end_of_utterance>\n"
       "Assistant:"},
      {"[]", true, "<|im_start|>Assistant:"},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.messages);
    Result<std::string> prompt =
        chat_template->Render(ChatContext(c.messages, c.add_generation_prompt));
    ASSERT_TRUE(prompt.ok()) << prompt.status().ToString();
    EXPECT_EQ(*prompt, c.expected);
  }
}

// The hub's chat_template.json for the image-only processor (smolvlm2.md section 7.1),
// which has no video branch.
constexpr const char kHubTemplate[] =
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if "
    "message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line "
    "in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}{% elif "
    "line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% "
    "endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

TEST(ChatTemplateHubTest, ImageOnlyTemplateMatchesGoldenPrompts) {
  Result<ChatTemplate> chat_template = ChatTemplate::Parse(kHubTemplate);
  ASSERT_TRUE(chat_template.ok()) << chat_template.status().ToString();
  Result<boost::json::value> goldens = ReadJsonFile(kSmolVlmDir + "/goldens.json");
  ASSERT_TRUE(goldens.ok()) << goldens.status().ToString();
  const boost::json::object& cases = goldens->at("cases").as_object();
  for (const auto& [name, messages] : kGoldenMessages) {
    if (std::string_view(name) == "video") continue;
    SCOPED_TRACE(name);
    Result<std::string> prompt = chat_template->Render(ChatContext(messages, true));
    ASSERT_TRUE(prompt.ok()) << prompt.status().ToString();
    EXPECT_EQ(*prompt, std::string(cases.at(name).at("prompt").as_string()));
  }
  // Without a video branch a video item renders as nothing.
  Result<std::string> video = chat_template->Render(ChatContext(kGoldenMessages[4].second, true));
  ASSERT_TRUE(video.ok()) << video.status().ToString();
  EXPECT_EQ(*video, "<|im_start|>User: Describe this video.<end_of_utterance>\nAssistant:");
}

// ---- a ChatML template with a system prompt, tools and validation -------------------------

constexpr const char kChatMlTemplate[] =
    R"jinja({#- ChatML with tools, like SmolLM2 and Qwen2.5. -#}
{%- set ns = namespace(
        system='You are a helpful AI assistant named SmolLM, trained by Hugging Face',
        last_user=-1) %}
{%- if messages and messages[0].role == 'system' %}
    {%- set ns.system = messages[0].content | trim %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- for message in loop_messages %}
    {%- if message.role == 'user' %}
        {%- set ns.last_user = loop.index0 %}
    {%- endif %}
{%- endfor %}
{{- '<|im_start|>system\n' + ns.system }}
{%- if tools %}
    {{- '\n\n# Tools\n\nYou may call one or more functions. Signatures:\n<tools>' }}
    {%- for tool in tools %}
        {{- '\n' + tool | tojson }}
    {%- endfor %}
    {{- '\n</tools>' }}
{%- endif %}
{{- '<|im_end|>\n' }}
{%- for message in loop_messages %}
    {%- if message.role not in ['user', 'assistant', 'tool'] %}
        {{- raise_exception('Unexpected role "' ~ message.role ~ '" at message ' ~ loop.index) }}
    {%- endif %}
    {{- '<|im_start|>' + message.role + '\n' }}
    {%- if message.content is string %}
        {{- message.content.strip() }}
    {%- endif %}
    {%- for call in message.tool_calls | default([]) %}
        {{- '<tool_call>\n' + call.function | tojson + '\n</tool_call>' }}
        {%- if not loop.last %}{{ '\n' }}{% endif %}
    {%- endfor %}
    {{- '<|im_end|>\n' }}
{%- endfor %}
{%- if add_generation_prompt and ns.last_user == loop_messages | length - 1 %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %})jinja";

TEST(ChatTemplateChatMlTest, RendersConversations) {
  const RenderCase kCases[] = {
      // No system message: the template's default system prompt.
      {kChatMlTemplate,
       R"({"messages": [{"role": "user", "content": "  Hi there!\n"}],
           "add_generation_prompt": true})",
       "<|im_start|>system\n"
       "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
       "<|im_start|>user\n"
       "Hi there!<|im_end|>\n"
       "<|im_start|>assistant\n"},
      // The caller's system message replaces it, trimmed; history follows.
      {kChatMlTemplate,
       R"({"messages": [{"role": "system", "content": " Be terse. "},
                        {"role": "user", "content": "2+2?"},
                        {"role": "assistant", "content": "4"},
                        {"role": "user", "content": "3+3?"}],
           "add_generation_prompt": true})",
       "<|im_start|>system\n"
       "Be terse.<|im_end|>\n"
       "<|im_start|>user\n"
       "2+2?<|im_end|>\n"
       "<|im_start|>assistant\n"
       "4<|im_end|>\n"
       "<|im_start|>user\n"
       "3+3?<|im_end|>\n"
       "<|im_start|>assistant\n"},
      // No generation prompt after an assistant turn.
      {kChatMlTemplate,
       R"({"messages": [{"role": "user", "content": "Hi"},
                        {"role": "assistant", "content": "Hello"}],
           "add_generation_prompt": true})",
       "<|im_start|>system\n"
       "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
       "<|im_start|>user\n"
       "Hi<|im_end|>\n"
       "<|im_start|>assistant\n"
       "Hello<|im_end|>\n"},
      // Tools in the system prompt and tool calls as JSON.
      {kChatMlTemplate,
       R"({"messages": [
             {"role": "user", "content": "Weather in Paris?"},
             {"role": "assistant", "tool_calls": [
               {"type": "function",
                "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}},
               {"type": "function", "function": {"name": "get_time", "arguments": {}}}]},
             {"role": "tool", "content": "20 C"}],
           "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {
             "type": "object", "properties": {"city": {"type": "string"}}}}}],
           "add_generation_prompt": false})",
       "<|im_start|>system\n"
       "You are a helpful AI assistant named SmolLM, trained by Hugging Face\n"
       "\n"
       "# Tools\n"
       "\n"
       "You may call one or more functions. Signatures:\n"
       "<tools>\n"
       "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": "
       "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}}\n"
       "</tools><|im_end|>\n"
       "<|im_start|>user\n"
       "Weather in Paris?<|im_end|>\n"
       "<|im_start|>assistant\n"
       "<tool_call>\n"
       "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"C\"}}\n"
       "</tool_call>\n"
       "<tool_call>\n"
       "{\"name\": \"get_time\", \"arguments\": {}}\n"
       "</tool_call><|im_end|>\n"
       "<|im_start|>tool\n"
       "20 C<|im_end|>\n"},
  };
  for (const RenderCase& c : kCases) ExpectRender(c);
}

TEST(ChatTemplateChatMlTest, RaiseExceptionRejectsUnknownRole) {
  Status status = RenderError(
      kChatMlTemplate,
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "narrator", "content": "b"}]})");
  EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "Unexpected role \"narrator\" at message 2"))
      << status.message();
  EXPECT_TRUE(Contains(status.message(), "chat template line 27:")) << status.message();
}

TEST(ChatTemplateChatMlTest, ConcurrentRendersAgree) {
  Result<ChatTemplate> chat_template = ChatTemplate::Parse(kChatMlTemplate);
  ASSERT_TRUE(chat_template.ok()) << chat_template.status().ToString();
  boost::json::object context = ParseObject(
      R"({"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": true})");
  Result<std::string> expected = chat_template->Render(context);
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < mismatches.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        Result<std::string> r = chat_template->Render(context);
        if (!r.ok() || *r != *expected) ++mismatches[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

// ---- finding the template of a model directory --------------------------------------------

// A fresh directory under the system temp dir, removed with its files at the end.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ =
        std::filesystem::temp_directory_path() /
        ("iris_chat_template_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string path() const { return path_.string(); }
  void Write(const std::string& name, std::string_view content) const {
    std::ofstream(path_ / name, std::ios::binary) << content;
  }

 private:
  std::filesystem::path path_;
};

std::string RenderDir(const std::string& dir) {
  Result<ChatTemplate> chat_template = ChatTemplate::FromModelDir(dir);
  if (!chat_template.ok()) return "error: " + chat_template.status().ToString();
  Result<std::string> rendered = chat_template->Render(ParseObject(R"({"x": "X"})"));
  if (!rendered.ok()) return "error: " + rendered.status().ToString();
  return *rendered;
}

TEST(ChatTemplateFromModelDirTest, PrefersChatTemplateJson) {
  TempDir dir;
  dir.Write("chat_template.json", R"({"chat_template": "json {{ x }}"})");
  dir.Write("chat_template.jinja", "jinja {{ x }}");
  dir.Write("tokenizer_config.json", R"({"chat_template": "config {{ x }}"})");
  EXPECT_EQ(RenderDir(dir.path()), "json X");
}

TEST(ChatTemplateFromModelDirTest, ThenChatTemplateJinja) {
  TempDir dir;
  // Jinja drops one trailing newline of a template file.
  dir.Write("chat_template.jinja", "jinja {{ x }}\n");
  dir.Write("tokenizer_config.json", R"({"chat_template": "config {{ x }}"})");
  EXPECT_EQ(RenderDir(dir.path()), "jinja X");
}

TEST(ChatTemplateFromModelDirTest, ThenTokenizerConfigString) {
  TempDir dir;
  dir.Write("tokenizer_config.json", R"({"bos_token": "<s>", "chat_template": "config {{ x }}"})");
  EXPECT_EQ(RenderDir(dir.path()), "config X");
}

TEST(ChatTemplateFromModelDirTest, TokenizerConfigListTakesDefault) {
  TempDir dir;
  dir.Write("tokenizer_config.json", R"({"chat_template": [
      {"name": "tool_use", "template": "tools {{ x }}"},
      {"name": "default", "template": "default {{ x }}"}]})");
  EXPECT_EQ(RenderDir(dir.path()), "default X");
}

TEST(ChatTemplateFromModelDirTest, TokenizerConfigListWithoutDefaultIsNotFound) {
  TempDir dir;
  dir.Write("tokenizer_config.json",
            R"({"chat_template": [{"name": "tool_use", "template": "tools"}]})");
  Result<ChatTemplate> chat_template = ChatTemplate::FromModelDir(dir.path());
  ASSERT_FALSE(chat_template.ok());
  EXPECT_EQ(chat_template.status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(Contains(chat_template.status().message(), "default"));
}

TEST(ChatTemplateFromModelDirTest, MissingTemplateIsNotFoundNamingTheDirectory) {
  TempDir dir;
  dir.Write("tokenizer_config.json", R"({"bos_token": "<s>"})");
  Result<ChatTemplate> chat_template = ChatTemplate::FromModelDir(dir.path());
  ASSERT_FALSE(chat_template.ok());
  EXPECT_EQ(chat_template.status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(Contains(chat_template.status().message(), dir.path()))
      << chat_template.status().message();

  Result<ChatTemplate> missing_dir = ChatTemplate::FromModelDir(dir.path() + "/nope");
  ASSERT_FALSE(missing_dir.ok());
  EXPECT_EQ(missing_dir.status().code(), ErrorCode::kNotFound);
}

TEST(ChatTemplateFromModelDirTest, BadFilesAreInvalidArgument) {
  TempDir dir;
  dir.Write("chat_template.json", R"({"template": "misnamed"})");
  Result<ChatTemplate> wrong_key = ChatTemplate::FromModelDir(dir.path());
  ASSERT_FALSE(wrong_key.ok());
  EXPECT_EQ(wrong_key.status().code(), ErrorCode::kInvalidArgument);

  TempDir syntax;
  syntax.Write("chat_template.jinja", "ok\n{% for x in y %}");
  Result<ChatTemplate> unclosed = ChatTemplate::FromModelDir(syntax.path());
  ASSERT_FALSE(unclosed.ok());
  EXPECT_EQ(unclosed.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(unclosed.status().message(), "chat_template.jinja: chat template line 2"))
      << unclosed.status().message();
}

// ---- errors -------------------------------------------------------------------------------

TEST(JinjaErrorTest, SyntaxErrorsNameLineAndColumn) {
  struct {
    const char* source;
    const char* message;
  } const kCases[] = {
      {"line1\n{{ x", "chat template line 2, column 1: unclosed '{{' tag"},
      {"a\n {% if x %}\n",
       "chat template line 2, column 5: unclosed 'if' block (missing 'elif' or "
       "'else' or 'endif')"},
      {"{# never closed", "chat template line 1, column 1: unclosed comment"},
      {"{{ 'abc }}", "chat template line 1, column 4: unterminated string literal"},
      {"a\n\n{% include 'other.jinja' %}",
       "chat template line 3, column 4: unsupported tag 'include'"},
      {"{% extends 'base' %}", "chat template line 1, column 4: unsupported tag 'extends'"},
      {"{% frobnicate %}", "chat template line 1, column 4: unknown tag 'frobnicate'"},
      {"\n{{ x | shout }}", "chat template line 2, column 8: unknown filter 'shout'"},
      {"{{ x is loud }}", "chat template line 1, column 9: unknown test 'loud'"},
      {"{% endif %}", "chat template line 1, column 4: unexpected 'endif'"},
      {"{% for x in y %}{% endif %}", "chat template line 1, column 20: unexpected 'endif'"},
      {"{% break %}", "chat template line 1, column 4: 'break' outside of a loop"},
      {"{{ 1 +* 2 }}", "chat template line 1, column 7: unexpected '*'"},
      {"{{ a b }}", "chat template line 1, column 6: expected '}}', got 'b'"},
      {"{{ f(a=1, 2) }}",
       "chat template line 1, column 11: positional argument follows keyword argument"},
      {"{{ 'a' @ 'b' }}", "chat template line 1, column 8: unexpected character '@'"},
      {"{% for x in y recursive %}{% endfor %}",
       "chat template line 1, column 15: unsupported: recursive for loops"},
      {"{% call m() %}{% endcall %}", "chat template line 1, column 4: unsupported tag 'call'"},
      {"{{ x \u2603 y }}", "chat template line 1, column 6: unexpected character '\u2603'"},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.source);
    Result<ChatTemplate> parsed = ChatTemplate::Parse(c.source);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().message(), c.message);
  }
}

TEST(JinjaErrorTest, RuntimeErrorsNameTheLine) {
  struct {
    const char* source;
    const char* message;
  } const kCases[] = {
      {"{{ raise_exception('Conversation roles must alternate') }}",
       "chat template line 1: Conversation roles must alternate"},
      {"ok\n{% if true %}\n  {{ raise_exception('bad ' ~ 42) }}\n{% endif %}",
       "chat template line 3: bad 42"},
      {"a\n\n{{ 1 + 'a' }}",
       "chat template line 3: unsupported operand type(s) for +: 'int' and 'str'"},
      {"{{ 1 / 0 }}", "chat template line 1: division by zero"},
      {"{{ 1 // 0 }}", "chat template line 1: integer division or modulo by zero"},
      {"{{ missing_function() }}", "chat template line 1: unknown function 'missing_function'"},
      {"{{ none|length }}", "chat template line 1: object of type 'NoneType' has no len()"},
      {"{% for x in 5 %}{% endfor %}", "chat template line 1: 'int' object is not iterable"},
      {"{{ 'a' < 1 }}",
       "chat template line 1: '<' not supported between instances of 'str' and 'int'"},
      {"{% set x = 1 %}{% set x.y = 2 %}",
       "chat template line 1: cannot set attribute 'y' on 'x', which is not a namespace()"},
      {"{{ undefined_var + 1 }}", "chat template line 1: 'undefined_var' is undefined"},
      {"{{ [1, 2][::0] }}", "chat template line 1: slice step cannot be zero"},
      {"{{ 'x'.shout() }}", "chat template line 1: 'str' object has no method 'shout'"},
      {"{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}",
       "chat template line 1: macro 'm' takes 1 arguments, got 2"},
      {"{% macro m(a) %}{% endmacro %}{{ m(b=1) }}",
       "chat template line 1: macro 'm' has no parameter 'b'"},
      {"{% for a, b in [[1, 2, 3]] %}{% endfor %}",
       "chat template line 1: cannot unpack 3 values into 2 names"},
      {"{{ 9223372036854775807 + 1 }}", "chat template line 1: integer overflow"},
      {"{{ x|tojson }}", "chat template line 1: Object of type Undefined is not JSON serializable"},
      {"{{ [1]|map('nope')|list }}", "chat template line 1: unknown filter 'nope'"},
      {"{{ '%s' % 1 }}",
       "chat template line 1: printf-style string formatting ('%') is not supported"},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.source);
    Status status = RenderError(c.source);
    EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(status.message(), c.message);
  }
}

TEST(JinjaErrorTest, RunawayTemplatesFailInsteadOfHanging) {
  Status recursion = RenderError("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}");
  EXPECT_TRUE(Contains(recursion.message(), "nested more than")) << recursion.message();
  Status range = RenderError("{% for i in range(100000000) %}{% endfor %}");
  EXPECT_EQ(range.code(), ErrorCode::kResourceExhausted) << range.message();
  Status repeat = RenderError("{{ 'x' * 1000000000000 }}");
  EXPECT_TRUE(Contains(repeat.message(), "too large")) << repeat.message();
  // Values that double at every step: repeated tojson (its escapes double the backslashes),
  // a list added to itself, a list nested in itself printed whole. Each is refused when a value
  // would pass its bound (64 MiB of text, 4,194,304 list items), naming the line. `+` and `~` check
  // the size of their result before making it; tojson and printing stop past the bound. The whole
  // test takes seconds (5 s in Release here), the time to build values up to the bounds.
  std::string tojson =
      "{% set ns = namespace(s='\\\"') %}\n{% for i in range(60) %}"
      "{% set ns.s = ns.s | tojson %}{% endfor %}";
  Status json = RenderError(tojson);
  EXPECT_EQ(json.code(), ErrorCode::kResourceExhausted) << json.message();
  EXPECT_TRUE(Contains(json.message(), "line 2")) << json.message();
  Status doubled = RenderError(
      "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}"
      "{% endfor %}");
  EXPECT_EQ(doubled.code(), ErrorCode::kResourceExhausted) << doubled.message();
  Status nested = RenderError(
      "{% set ns = namespace(l=['abc']) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
      "{% endfor %}{{ ns.l }}");
  EXPECT_EQ(nested.code(), ErrorCode::kResourceExhausted) << nested.message();
  Status nested_json = RenderError(
      "{% set ns = namespace(l=['abc']) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
      "{% endfor %}{{ ns.l | tojson }}");
  EXPECT_EQ(nested_json.code(), ErrorCode::kResourceExhausted) << nested_json.message();
  std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  Result<ChatTemplate> parsed = ChatTemplate::Parse(deep);
  ASSERT_FALSE(parsed.ok());
  EXPECT_TRUE(Contains(parsed.status().message(), "nested too deeply"))
      << parsed.status().message();
}

// A namespace that holds itself (directly, in a list, or through another namespace) is freed
// when the render ends (LeakSanitizer checks this in the asan-ubsan preset).
TEST(JinjaNamespaceTest, CyclesRenderAndAreFreed) {
  Result<std::string> out = RenderString(
      "{% set ns = namespace(a=1) %}{% set other = namespace(peer=ns) %}{% set ns.self = ns %}"
      "{% set ns.list = [ns, other] %}{% set ns.peer = other %}"
      "{% for i in range(3) %}{% set n = namespace() %}{% set n.me = n %}{% endfor %}"
      "{{ ns.self.self.a }} {{ ns.list[1].peer.a }} {{ ns.self is sameas ns }}",
      "{}");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, "1 1 True");
}

// ---- what transformers adds to Jinja ---------------------------------------------------------

TEST(JinjaTransformersExtensionsTest, GenerationTagStrftimeNowAndLoopControls) {
  const RenderCase kCases[] = {
      // AssistantTracker's {% generation %} only marks text; it renders its body in place.
      {"{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}[{{ m.content }}]"
       "{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}",
       R"({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})",
       "q[a]"},
      {"{{ strftime_now('%Y') | length }} {{ strftime_now is defined }}", "{}", "4 True"},
      {"{% for x in [1, 2, 3, 4] %}{% if x is even %}{% continue %}{% endif %}{{ x }}"
       "{% if x >= 3 %}{% break %}{% endif %}{% endfor %}",
       "{}", "13"},
  };
  for (const RenderCase& c : kCases) ExpectRender(c);
}

// ---- lenient Undefined, as chosen for iris ------------------------------------------------

TEST(JinjaUndefinedTest, UndefinedIsEmptyFalsyAndLenient) {
  const RenderCase kCases[] = {
      {"[{{ missing }}]", "{}", "[]"},
      {"{% if missing %}yes{% else %}no{% endif %}", "{}", "no"},
      {"{% for x in missing %}x{% else %}empty{% endfor %}", "{}", "empty"},
      {"[{{ missing.attr.deeper }}][{{ missing['k'][0] }}][{{ messages[5].content }}]",
       R"({"messages": []})", "[][][]"},
      {"{{ missing.attr is defined }} {{ missing|length }} {{ missing|default('d') }}", "{}",
       "False 0 d"},
      {"[{{ missing.strip() }}]", "{}", "[]"},
      {"{{ missing == missing }} {{ missing == none }}", "{}", "True False"},
  };
  for (const RenderCase& c : kCases) ExpectRender(c);
}

// ---- every feature, checked against jinja2 --------------------------------------------------

TEST(JinjaWhitespaceTest, MatchesJinja2) {
  const RenderCase kCases[] = {
      {"a\n"
       "  {% if true %}\n"
       "  x\n"
       "  {% endif %}\n"
       "b",
       "{}",
       "a\n"
       "  x\n"
       "b"},
      {"a  {% if true %}x{% endif %}", "{}", "a  x"},
      {"  {# c #}\n"
       "x",
       "{}", "x"},
      {"{{ 1 }}  {% if true %}x{% endif %}", "{}", "1  x"},
      {"x\n"
       "  {%+ if true %}y{% endif %}",
       "{}",
       "x\n"
       "  y"},
      {"{% if true +%}\n"
       "x{% endif %}",
       "{}",
       "\n"
       "x"},
      {"{{- ' a ' -}}   \n"
       "  {{- 'b' }}  {{ 'c' -}}\n"
       "\n"
       " d",
       "{}", " a b  cd"},
      {"  {{ 'a' }}\n"
       "  {%- if true %} b{% endif %}",
       "{}", "  a b"},
      {"{# comment {{ x }} #}a{#- trimmed -#}  b {#+ plus +#}\n"
       "c",
       "{}",
       "ab \n"
       "c"},
      {"{{ 'a' }}{# x #}\n"
       "{{ 'b' }}",
       "{}", "ab"},
      {"line1\n"
       "{% if true -%}\n"
       "   trimmed\n"
       "{%- endif %}\n"
       "line3",
       "{}",
       "line1\n"
       "trimmedline3"},
      {"{% if true %}\n"
       "  {% if true %}\n"
       "    deep\n"
       "  {% endif %}\n"
       "{% endif %}\n"
       "end",
       "{}",
       "    deep\n"
       "end"},
      {"<a>\n"
       "    {%- for x in [1,2] %}\n"
       "    <b>{{ x }}</b>\n"
       "    {%- endfor %}\n"
       "</a>",
       "{}", "<a>    <b>1</b>    <b>2</b></a>"},
      {"{% for m in ['u', 'a'] %}\n"
       "{% if m == 'u' %}\n"
       "  U\n"
       "{% endif %}\n"
       "{% endfor %}\n"
       "end",
       "{}",
       "  U\n"
       "end"},
      {"{{ x }}\n"
       "{{ y }}\n",
       "{\"x\": 1, \"y\": 2}",
       "1\n"
       "2"},
      {"a\r\n"
       "b{{ 'c\r\n"
       "d' }}",
       "{}",
       "a\n"
       "bc\n"
       "d"},
      {"{% raw %}\n"
       "{{ x }}{% endraw %}\n"
       "z",
       "{}",
       "\n"
       "{{ x }}z"},
      {"{%- raw -%}  {% if %}  {%- endraw %}|", "{}", "{% if %}|"},
  };
  for (const RenderCase& c : kCases) ExpectRender(c);
}

TEST(JinjaLiteralsTest, MatchesJinja2) {
  const RenderCase kCases[] = {
      {"{{ 'single' }} {{ \"double\" }} {{ 'it\\'s' }} {{ \"say \\\"hi\\"
       "\"\" }} {{ 'tab\\tnl\\n' }} {{ '\\u00e9\\x41' }} {{ 'a\\\\b' }} "
       "{{ 'keep\\q' }}",
       "{}",
       "single double it's say \"hi\" tab\tnl\n"
       " éA a\\b keep\\q"},
      {"{{ 42 }} {{ -7 }} {{ 1_000 }} {{ 3.5 }} {{ 1e3 }} {{ 1.5e-7 }} {"
       "{ 1e16 }} {{ 1e15 }} {{ 0.1 + 0.2 }} {{ 100.0 }}",
       "{}",
       "42 -7 1000 3.5 1000.0 1.5e-07 1e+16 1000000000000000.0 0.3000000"
       "0000000004 100.0"},
      {"{{ true }} {{ True }} {{ false }} {{ False }} {{ none }} {{ None"
       " }}",
       "{}", "True True False False None None"},
      {"{{ [1, 'a', none, true, {'k': 'v'}, 1.0] }} {{ {'a': [1]} }} {{ "
       "\"it's\" }} {{ [] }} {{ {} }}",
       "{}", "[1, 'a', None, True, {'k': 'v'}, 1.0] {'a': [1]} it's [] {}"},
      {"{{ (1, 2) }} {{ (1,) }} {{ () }} {{ 'a' 'b' }} {{ {'a': {'b': 1}"
       "} }}",
       "{}", "(1, 2) (1,) () ab {'a': {'b': 1}}"},
      {"{% set d = {'a': 1, 'b': x} %}{{ d.b }} {{ d|length }} {% set l "
       "= [1, 2, x] %}{{ l[2] }}",
       "{\"x\": \"X\"}", "X 2 X"},
  };
  for (const RenderCase& c : kCases) ExpectRender(c);
}

TEST(JinjaExpressionsTest, MatchesJinja2) {
  const RenderCase kCases[] = {
      {"{{ 7 + 3 }} {{ 7 - 10 }} {{ 7 * 3 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ "
       "7 // 2 }} {{ 7 % 3 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 8 }} {{"
       " 1.5 * 2 }}",
       "{}", "10 -3 21 3.5 2.0 3 1 -4 2 256 3.0"},
      {"{{ 10.0 // 4 }} {{ 10 % -4 }} {{ 5.5 % 2 }} {{ 2 ** -1 }}", "{}", "2.0 -2 1.5 0.5"},
      {"{{ 'a' ~ 1 ~ none ~ 1.0 ~ true }} {{ 'ab' + 'cd' }} {{ [1] + [2]"
       " }} {{ 'ab' * 3 }} {{ 3 * 'ab' }} {{ 'abc' * -1 }}|",
       "{}", "a1None1.0True abcd [1, 2] ababab ababab |"},
      {"{{ -x }} {{ +x }} {{ -1.5 }} {{ - 2 ** 2 }} {{ 2 + 3 * 4 }} {{ ("
       "2 + 3) * 4 }} {{ 10 - 2 - 3 }} {{ 2 ** 3 ** 2 }} {{ 'a' ~ 2 * 3 "
       "}}",
       "{\"x\": 3}", "-3 3 -1.5 4 14 20 5 64 a6"},
      {"{{ 1 == 1.0 }} {{ 1 != 2 }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ '"
       "a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 2 >= 2 }} {{ 2 <= 1 }} {{ t"
       "rue == 1 }} {{ none == none }} {{ 'a' == 'a' }} {{ [1, {'a': 2}]"
       " == [1, {'a': 2}] }}",
       "{}", "True True True False True True True False True True True True"},
      {"{{ true and false }} {{ true or false }} {{ not true }} {{ none "
       "or 'x' }} {{ 'a' and 'b' }} {{ 0 or [] }}|{{ not false and true "
       "}}",
       "{}", "False True False x b []|True"},
      {"{{ 'a' in 'cat' }} {{ 'x' not in 'cat' }} {{ 2 in [1, 2] }} {{ '"
       "k' in {'k': 1} }} {{ not 'a' in 'b' }} {{ 'z' in missing }}",
       "{}", "True True True True True False"},
      {"{{ 'yes' if x else 'no' }} {{ 'yes' if y else 'no' }} [{{ 'a' if"
       " false }}] {{ 1 if true else 2 if false else 3 }} {{ 'a' if none"
       " else 'b' if 0 else 'c' }}",
       "{\"x\": 1}", "yes no [] 1 c"},
      {"{{ messages[0]['content'] }}|{{ messages[-1].content }}|{{ messa"
       "ges[1]['role'] }}|{{ messages.0.role }}",
       "{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}, {\"r"
       "ole\": \"user\", \"content\": \"U\"}]}",
       "S|U|user|system"},
      {"{{ x['a']['b'] }}|{{ x.a.b }}|{{ x['a'].c is defined }}|{{ x.a['"
       "b'][0] }}|{{ x.a['b'][-1] }}",
       "{\"x\": {\"a\": {\"b\": \"deep\"}}}", "deep|deep|False|d|p"},
      // Lenient where Jinja raises: attributes of undefined are undefined.
      {"[{{ missing }}][{{ missing.attr }}][{{ missing['k'] }}][{{ d.nok"
       "ey }}][{{ d.a.nokey.deeper }}][{{ [1, 2][5] }}][{{ 'ab'[9] }}]",
       "{\"d\": {\"a\": {}}}", "[][][][][][][]"},
  };
  for (const RenderCase& c : kCases) ExpectRender(c);
}

TEST(JinjaSlicesTest, MatchesJinja2) {
  const RenderCase kCases[] = {
      {"{{ m[1:] }} {{ m[:-1] }} {{ m[:] }} {{ m[::2] }} {{ m[::-1] }} {"
       "{ m[-2::-2] }} {{ m[1:3] }} {{ m[5:] }} {{ m[-9:1] }}",
       "{\"m\": [1, 2, 3, 4, 5]}",
       "[2, 3, 4, 5] [1, 2, 3, 4] [1, 2, 3, 4, 5] [1, 3, 5] [5, 4, 3, 2,"
       " 1] [4, 2] [2, 3] [] [1]"},
      {"{{ 'abcdef'[1:4] }} {{ 'abcdef'[-2:] }} {{ 'abcdef'[::-1] }} {{ "
       "'abc'[0] }} {{ 'abc'[-1] }} {{ 'hello'[1:-1] }}",
       "{}", "bcd ef fedcba a c ell"},
      {"{{ x[0] }}{{ x[-1] }}{{ x[1:] }}{{ x|first }}{{ x|last }}{{ x|le"
       "ngth }}{{ x|reverse }}",
       "{\"x\": \"日本語\"}", "日語本語日語3語本日"},
      {"{% for m in messages[1:] %}{{ m.role }};{% endfor %}{{ (messages"
       "[1:]|length) }}",
       "{\"messages\": [{\"role\": \"system\"}, {\"role\": \"user\"}, {\""
       "role\": \"assistant\"}]}",
       "user;assistant;2"},
  };
  for (const RenderCase& c : kCases) ExpectRender(c);
}

TEST(JinjaFiltersTest, MatchesJinja2) {
  const RenderCase kCases[] = {
      {"{{ 'hello WORLD'|capitalize }} {{ '  pad  '|trim }}| {{ 'xxhixx'"
       "|trim('x') }} {{ 'ABC'|lower }} {{ 'abc'|upper }} {{ 'hello big-"
       "world (x)'|title }}",
       "{}", "Hello world pad| hi abc ABC Hello Big-World (X)"},
      {"{{ 'abc'|length }} {{ [1, 2]|count }} {{ {'a': 1}|length }} {{ m"
       "issing|length }} {{ 'héllo'|length }}",
       "{}", "3 2 1 0 5"},
      {"{{ [3, 1, 2]|first }} {{ [3, 1, 2]|last }} {{ 'abc'|first }} {{ "
       "{'k': 1}|first }} [{{ []|first }}]",
       "{}", "3 2 a k []"},
      {"{{ [1, 2, 3]|join('-') }} {{ [1, 2, 3]|join }} {{ msgs|join(', '"
       ", attribute='role') }}",
       "{\"msgs\": [{\"role\": \"user\"}, {\"role\": \"assistant\"}]}",
       "1-2-3 123 user, assistant"},
      {"{{ x|default('d') }} {{ ''|default('d') }} {{ ''|default('d', tr"
       "ue) }} {{ none|default('d') }} {{ 0|d('z', boolean=true) }} {{ m"
       "issing|default }}|",
       "{}", "d  d None z |"},
      {"{{ 42|string }}{{ '42'|int + 1 }} {{ '3.7'|int }} {{ 'abc'|int }"
       "} {{ 'abc'|int(7) }} {{ 3.9|int }} {{ ' 12 '|int }} {{ '2.5'|flo"
       "at }} {{ 'x'|float }} {{ 3|float }} {{ true|int }}",
       "{}", "4243 3 0 7 3 12 2.5 0.0 3.0 1"},
      {"{{ 'ab'|list }} {{ {'a': 1}|items|list }} {{ {'a': 1}|list }} {{"
       " missing|items|list }} {{ (1, 2)|list }}",
       "{}", "['a', 'b'] [('a', 1)] ['a'] [] [1, 2]"},
      {"{{ 'a-b-c'|replace('-', '+') }} {{ 'aaa'|replace('a', 'b', 2) }}"
       " {{ 'ab'|replace('', '.') }}",
       "{}", "a+b+c bba .a.b."},
      {"{{ 2.5|round }} {{ 3.5|round }} {{ 3|round }} {{ 3.14159|round(2"
       ") }} {{ 2.675|round(2) }} {{ 2.5|round(0, 'ceil') }} {{ 2.7|roun"
       "d(0, 'floor') }} {{ 2.7|round|int }}",
       "{}", "2.0 4.0 3 3.14 2.67 3.0 2.0 3"},
      {"{{ -3|abs }} {{ (-3)|abs }} {{ -2.5|abs }} {{ '<b>'|safe }} {{ '"
       "<a href=\"x\">&'|e }} {{ 'x'|escape }}",
       "{}", "3 3 2.5 <b> &lt;a href=&#34;x&#34;&gt;&amp; x"},
      {"{{ [1, 2, 1, 3, 2]|unique|list }} {{ ['A', 'a', 'b']|unique|list"
       " }} {{ ['A', 'a']|unique(case_sensitive=true)|list }}",
       "{}", "[1, 2, 3] ['A', 'b'] ['A', 'a']"},
      {"{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='con"
       "tent')|join(',') }} {{ msgs|rejectattr('role', 'eq', 'user')|lis"
       "t|length }} {{ msgs|selectattr('tool')|map(attribute='role')|lis"
       "t }} {{ msgs|rejectattr('tool')|list|length }}",
       "{\"msgs\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\":"
       " \"assistant\", \"content\": \"b\", \"tool\": true}, {\"role\": "
       "\"user\", \"content\": \"c\"}]}",
       "a,c 1 ['assistant'] 2"},
      {"{{ msgs|map(attribute='role')|list }} {{ msgs|map(attribute='con"
       "tent', default='?')|join(',') }} {{ [1, 2, 3]|map('string')|join"
       " }} {{ ['a', 'b']|map('upper')|list }} {{ ['x-y']|map('replace',"
       " '-', '+')|first }}",
       "{\"msgs\": [{\"role\": \"user\", \"content\": \"c\"}, {\"role\":"
       " \"assistant\"}]}",
       "['user', 'assistant'] c,? 123 ['A', 'B'] x+y"},
      {"{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3, 4]|reject('od"
       "d')|list }} {{ [0, 1, '', 'a']|select|list }} {{ [1, 5, 9]|selec"
       "t('gt', 4)|list }}",
       "{}", "[1, 3] [2, 4] [1, 'a'] [5, 9]"},
      {"{{ x|tojson }}|{{ x|tojson(indent=2) }}|{{ [1, [2, []], {}]|tojs"
       "on(indent=4) }}",
       "{\"x\": {\"a\": [1, 2.5, null, true, \"s\\n\\\"\\\\\"], \"b\": {"
       "}}}",
       "{\"a\": [1, 2.5, null, true, \"s\\n\\\"\\\\\"], \"b\": {}}|{\n"
       "  \"a\": [\n"
       "    1,\n"
       "    2.5,\n"
       "    null,\n"
       "    true,\n"
       "    \"s\\n\\\"\\\\\"\n"
       "  ],\n"
       "  \"b\": {}\n"
       "}|[\n"
       "    1,\n"
       "    [\n"
       "        2,\n"
       "        []\n"
       "    ],\n"
       "    {}\n"
       "]"},
      {"{{ 'é<>&\"'|tojson }}|{{ {'b': 1, 'a': 2}|tojson(sort_keys=true)"
       " }}|{{ 'é☃😀'|tojson(ensure_ascii=true) }}|{{ [1, 2]|tojson(separ"
       "ators=[',', ':']) }}|{{ 'ctrl\001'|tojson }}|{{ 1e20|tojson }}",
       "{}",
       "\"é<>&\\\"\"|{\"a\": 2, \"b\": 1}|\"\\u00e9\\u2603\\ud83d\\ude00"
       "\"|[1,2]|\"ctrl\\u0001\"|1e+20"},
      {"{{ [3, 1, 2]|sort }} {{ [3, 1, 2]|sort(reverse=true) }} {{ ['b',"
       " 'A', 'c']|sort }} {{ msgs|sort(attribute='n')|map(attribute='n'"
       ")|join(',') }}",
       "{\"msgs\": [{\"n\": 2}, {\"n\": 1}, {\"n\": 3}]}",
       "[1, 2, 3] [3, 2, 1] ['A', 'b', 'c'] 1,2,3"},
      {"{{ [1, 2, 3]|sum }} {{ [1, 5, 3]|max }} {{ [4, 2, 8]|min }} {{ ["
       "1, 2, 3]|reverse|list }} {{ 'abc'|reverse }} {{ {'b': 2, 'a': 1}"
       "|dictsort }}",
       "{}", "6 5 2 [3, 2, 1] cba [('a', 1), ('b', 2)]"},
      {"{{ 'a\n"
       "b\n"
       "\n"
       "c'|indent(2) }}|{{ 'a\n"
       "b'|indent(2, true) }}|{{ 'a\n"
       "\n"
       "b'|indent(4, blank=true) }}|{{ 'x\n"
       "y'|indent }}",
       "{}",
       "a\n"
       "  b\n"
       "\n"
       "  c|  a\n"
       "  b|a\n"
       "    \n"
       "    b|x\n"
       "    y"},
      {"{% filter upper %}hello {{ 'x' }}{% endfilter %} {% filter repla"
       "ce('a', 'o')|title %}banana split{% endfilter %}",
       "{}", "HELLO X Bonono Split"},
  };
  for (const RenderCase& c : kCases) ExpectRender(c);
}

TEST(JinjaTestsTest, MatchesJinja2) {
  const RenderCase kCases[] = {
      {"{{ x is defined }} {{ y is not defined }} {{ y is undefined }} {"
       "{ none is none }} {{ x is not none }}",
       "{\"x\": 1}", "True True True True True"},
      {"{{ 'a' is string }} {{ 1 is string }} {{ {} is mapping }} {{ [] "
       "is mapping }} {{ [] is iterable }} {{ 'x' is iterable }} {{ 1 is"
       " iterable }} {{ [] is sequence }}",
       "{}", "True False True False True True False True"},
      {"{{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ 'x"
       "' is number }} {{ 1 is integer }} {{ true is integer }} {{ 1.5 i"
       "s float }} {{ true is boolean }} {{ false is false }} {{ true is"
       " true }} {{ 1 is true }}",
       "{}", "True True True False True False True True True True False"},
      {"{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is "
       "divisibleby(4) }} {{ 'ab' is lower }} {{ 'AB' is upper }} {{ 'Ab"
       "' is lower }}",
       "{}", "True True True False True True False"},
      {"{{ 1 is sameas 1 }} {{ none is sameas none }} {{ 1 is eq 1 }} {{"
       " 1 is equalto 2 }} {{ 2 is gt 1 }} {{ 2 is lt 1 }} {{ 2 is ge 2 "
       "}} {{ 2 is le 1 }} {{ 1 is ne 2 }} {{ 'a' is in 'abc' }} {{ 3 is"
       " in [1, 2] }}",
       "{}", "True True True False True False True False True True False"},
      {"{{ raise_exception is callable }} {{ 1 is callable }} {{ 'upper'"
       " is filter }} {{ 'odd' is test }} {{ 'nope' is filter }}",
       "{}", "True False True True False"},
      {"{{ 'x' if a is defined and a else 'y' }}{{ a is defined and a.b "
       "is defined }}{{ not a is defined }}{{ (a is defined) or true }}",
       "{}", "yFalseTrueTrue"},
      {"{% if enable_thinking is defined and enable_thinking is false %}"
       "off{% else %}on{% endif %}",
       "{\"enable_thinking\": false}", "off"},
      {"{% if content is string %}S{% elif content is iterable %}I{% els"
       "e %}N{% endif %}",
       "{\"content\": [{\"type\": \"text\"}]}", "I"},
  };
  for (const RenderCase& c : kCases) ExpectRender(c);
}

TEST(JinjaLoopsTest, MatchesJinja2) {
  const RenderCase kCases[] = {
      {"{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop."
       "revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{"
       " loop.length }}|{% endfor %}",
       "{\"messages\": [\"a\", \"b\", \"c\"]}", "1032TrueFalse3|2121FalseFalse3|3210FalseTrue3|"},
      {"{% for m in messages %}{{ loop.previtem if loop.previtem is defi"
       "ned else '-' }}>{{ loop.nextitem if loop.nextitem else '-' }};{%"
       " endfor %}",
       "{\"messages\": [\"a\", \"b\", \"c\"]}", "->b;a>c;b>-;"},
      {"{% for m in messages if m.role != 'system' %}{{ loop.index }}:{{"
       " m.role }}{{ ',' if not loop.last }}{% endfor %}",
       "{\"messages\": [{\"role\": \"system\"}, {\"role\": \"user\"}, {\""
       "role\": \"assistant\"}]}",
       "1:user,2:assistant"},
      {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k "
       "in d %}{{ k }}{% endfor %}{% for k, v in d|items %}{{ v }}{% end"
       "for %}",
       "{\"d\": {\"b\": 1, \"a\": 2}}", "b=1;a=2;ba12"},
      {"{% for c in 'héllo' %}[{{ c }}]{% endfor %}", "{}", "[h][é][l][l][o]"},
      {"{% for x in [] %}x{% else %}empty{% endfor %} {% for x in missin"
       "g %}x{% else %}none{% endfor %}",
       "{}", "empty none"},
      {"{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}"
       "{% if x > 5 %}{% break %}{% endif %}{{ x }}{% endfor %}",
       "{}", "01345"},
      {"{% for a, b in [[1, 2], [3, 4]] %}{{ a * b }},{% endfor %}", "{}", "2,12,"},
      {"{% for i in range(3) %}{% for j in range(2) %}{{ loop.index }}{{"
       " i }}{% endfor %}{{ loop.index }};{% endfor %}",
       "{}", "10201;11212;12223;"},
      {"{% for i in range(3) %}{{ loop.cycle('a', 'b') }}{% endfor %} {{"
       " range(2, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ range(0)|"
       "list }}",
       "{}", "aba [2, 5, 8] [5, 3, 1] []"},
      {"{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{%"
       " endfor %}|{{ x }}",
       "{}", "23|1"},
      {"{{ loop is defined }}{% for x in [1] %}{{ loop is defined }}{% e"
       "ndfor %}",
       "{}", "FalseTrue"},
      {"{%- for m in msgs -%}{{ m }}{%- if not loop.last -%}, {% endif -"
       "%}{%- endfor -%}",
       "{\"msgs\": [1, 2, 3]}", "1, 2, 3"},
  };
  for (const RenderCase& c : kCases) ExpectRender(c);
}

TEST(JinjaAssignmentsTest, MatchesJinja2) {
  const RenderCase kCases[] = {
      {"{% set ns = namespace(found=false, n=0) %}{% for m in messages %"
       "}{% if m == 'u' %}{% set ns.found = true %}{% set ns.n = ns.n + "
       "1 %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.n }}",
       "{\"messages\": [\"s\", \"u\", \"a\", \"u\"]}", "True 2"},
      {"{% set ns = namespace() %}{% set ns.items = [] %}{% for x in [1,"
       " 2] %}{% set ns.items = ns.items + [x * 2] %}{% endfor %}{{ ns.i"
       "tems }} {{ ns.nothing is defined }}",
       "{}", "[2, 4] False"},
      {"{% set y = namespace({'k': 1}, j=2) %}{{ y.k }}{{ y.j }} {% set "
       "d = dict(a=1, b='x') %}{{ d.b }}{{ d|length }}",
       "{}", "12 x2"},
      {"{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = [3, 4] %}{% set d,"
       " e = c %}{{ d }}{{ e }}{% set t = 5, 6 %}{{ t }}",
       "{}", "1234(5, 6)"},
      {"{% set block %}hello {{ 'world' }}{% endset %}{{ block | upper }"
       "}",
       "{}", "HELLO WORLD"},
      {"{% if true %}{% set inside_if = 'visible' %}{% endif %}{{ inside"
       "_if }}",
       "{}", "visible"},
      {"{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", "{}", "3[]"},
      {"{% set messages = messages[1:] if messages[0].role == 'system' e"
       "lse messages %}{{ messages|length }}",
       "{\"messages\": [{\"role\": \"system\"}, {\"role\": \"user\"}]}", "1"},
  };
  for (const RenderCase& c : kCases) ExpectRender(c);
}

TEST(JinjaMacrosTest, MatchesJinja2) {
  const RenderCase kCases[] = {
      {"{% macro greet(name, greeting='Hi') %}{{ greeting }}, {{ name }}"
       "!{% endmacro %}{{ greet('Bob') }} {{ greet('Al', greeting='Yo') "
       "}} {{ greet(name='Z') }} {{ greet() }}",
       "{}", "Hi, Bob! Yo, Al! Hi, Z! Hi, !"},
      {"{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{%"
       " endmacro %}{{ f(3) }}",
       "{}", "321"},
      {"{% macro render(m) %}\n"
       "<{{ m.role }}>{{ m.content | trim }}\n"
       "{% endmacro %}\n"
       "{% for m in messages %}{{ render(m) }}{% endfor %}",
       "{\"messages\": [{\"role\": \"user\", \"content\": \" hi \"}, {\""
       "role\": \"assistant\", \"content\": \"yo\"}]}",
       "<user>hi\n"
       "<assistant>yo\n"},
      {"{% set prefix = 'P:' %}{% macro p(x) %}{{ prefix }}{{ x }}{% end"
       "macro %}{{ p(1) }}{{ p(x=2)|length }}",
       "{}", "P:13"},
  };
  for (const RenderCase& c : kCases) ExpectRender(c);
}

TEST(JinjaMethodsTest, MatchesJinja2) {
  const RenderCase kCases[] = {
      {"{{ '  a b  '.strip() }}|{{ '  a b  '.lstrip() }}|{{ '  a b  '.rs"
       "trip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\nx\\n'.strip('\\n') "
       "}}|{{ 'éaé'.strip('é') }}",
       "{}", "a b|a b  |  a b|a|x|a"},
      {"{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith('bc') }}{{ 'abc'.s"
       "tartswith(('x', 'a')) }}{{ 'abc'.endswith('x') }}",
       "{}", "TrueTrueTrueFalse"},
      {"{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.spli"
       "t(' ', 1) }}|{{ 'a b'.split(none, 1) }}|{{ 'x</think>y'.split('<"
       "/think>')[-1] }}",
       "{}", "['a', 'b', '', 'c']|['a', 'b']|['a', 'b c']|['a', 'b']|y"},
      {"{{ 'aBc'.upper() }}{{ 'aBc'.lower() }}|{{ 'hello world'.title() "
       "}}|{{ 'hELLO'.capitalize() }}|{{ 'aaa'.replace('a', 'b') }}|{{ '"
       "aaa'.replace('a', 'b', 1) }}",
       "{}", "ABCabc|Hello World|Hello|bbb|baa"},
      {"{{ 'abcabc'.find('c') }} {{ 'abc'.find('z') }} {{ 'abcabc'.count"
       "('b') }} {{ '-'.join(['a', 'b']) }} {{ '12'.isdigit() }} {{ 'a\\"
       "nb'.splitlines() }}",
       "{}", "2 -1 2 a-b True ['a', 'b']"},
      {"{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 'dflt') }} {{ d."
       "items()|list }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.a"
       " }} {{ d['b'] }}",
       "{\"d\": {\"a\": 1, \"b\": [1, 2]}}",
       "1 None dflt [('a', 1), ('b', [1, 2])] ['a', 'b'] [1, [1, 2]] 1 ["
       "1, 2]"},
      {"{{ message.content.split('</think>')[0].rstrip('\\n').split('<th"
       "ink>')[-1].lstrip('\\n') }}",
       "{\"message\": {\"content\": \"<think>\\nreason\\n</think>\\n\\na"
       "nswer\"}}",
       "reason"},
  };
  for (const RenderCase& c : kCases) ExpectRender(c);
}
}  // namespace
}  // namespace iris::tokenizer

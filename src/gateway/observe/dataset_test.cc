#include "gateway/observe/dataset.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>

#include "gateway/observe/store_test_util.h"

namespace iris::gateway::observe {
namespace {

namespace json = boost::json;

StoredExchange Exchange(std::string request, std::string response) {
  StoredExchange e;
  e.request_id = "req_1";
  e.start_unix_ms = 1795564800000;
  e.alias = "vision";
  e.requested_model = "vision";
  e.provider = "openai";
  e.model = "gpt-4o-mini";
  e.request_body = std::move(request);
  e.response_body = std::move(response);
  return e;
}

std::string Answer(std::string_view text, std::string_view finish = "stop") {
  json::object message{{"role", "assistant"}, {"content", text}};
  json::object choice{{"index", 0}, {"message", message}, {"finish_reason", finish}};
  return json::serialize(
      json::object{{"object", "chat.completion"}, {"choices", json::array{choice}}});
}

constexpr std::string_view kPng =
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE"
    "hQGAhKmMIQAAAABJRU5ErkJggg==";

TEST(DatasetTest, AnExchangeBecomesAConversationEndingInTheAnswer) {
  const std::string request =
      std::string(R"({"model":"vision","max_completion_tokens":100,"messages":[)") +
      R"({"role":"developer","content":"Be brief."},)" +
      R"({"role":"user","content":[{"type":"text","text":"What is this?"},)" +
      R"({"type":"image_url","image_url":{"url":")" + std::string(kPng) + R"("}}]},)" +
      R"({"role":"assistant","content":"A pixel."},)" +
      R"({"role":"user","content":"Which colour?"}]})";
  DatasetExportCounts counts;
  std::string line;
  ASSERT_EQ(TrainingExample(Exchange(request, Answer("Red.")), {}, line, counts),
            ExampleVerdict::kWritten);
  const json::value v = json::parse(line);
  EXPECT_EQ(v.at("id"), "req_1");
  const json::array& m = v.at("messages").as_array();
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0].at("role"), "system");  // (developer: the system turn of newer models)
  EXPECT_EQ(m[1].at("content").as_array()[1].at("image_url").at("url").as_string(), kPng);
  EXPECT_EQ(m[2].at("content"), "A pixel.");
  EXPECT_EQ(m[4].at("role"), "assistant");
  EXPECT_EQ(m[4].at("content"), "Red.");
  EXPECT_EQ(counts.images, 1);
  EXPECT_EQ(counts.image_urls, 0);
}

TEST(DatasetTest, WhatCannotTeachTheLocalModelIsSkippedWithItsReason) {
  const std::string user = R"({"messages":[{"role":"user","content":"hi"}]})";
  DatasetExportCounts counts;
  std::string line;
  struct Case {
    std::string request, response;
    ExampleVerdict verdict;
  };
  const Case cases[] = {
      {R"({"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function"}]})",
       Answer("x"), ExampleVerdict::kTools},
      {R"({"messages":[{"role":"assistant","content":null,"tool_calls":[]},)"
       R"({"role":"tool","tool_call_id":"c","content":"42"}]})",
       Answer("x"), ExampleVerdict::kTools},
      {user, Answer("", "tool_calls"), ExampleVerdict::kTools},
      {user, Answer("half an ans", "length"), ExampleVerdict::kCut},
      {user, Answer("", "content_filter"), ExampleVerdict::kCut},
      {user, Answer(""), ExampleVerdict::kEmpty},
      {"not json", Answer("x"), ExampleVerdict::kUnreadable},
      {user, "[]", ExampleVerdict::kUnreadable},
      {R"({"messages":[{"role":"critic","content":"x"}]})", Answer("x"),
       ExampleVerdict::kUnreadable},
      {R"({"messages":[{"content":"x"}]})", Answer("x"), ExampleVerdict::kUnreadable},
      {user, Answer("fine"), ExampleVerdict::kWritten},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(TrainingExample(Exchange(c.request, c.response), {}, line, counts), c.verdict)
        << c.request << " / " << c.response;
  }
}

TEST(DatasetTest, AnImageUrlThatWasNotFetchedIsCounted) {
  const std::string request =
      R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":)"
      R"({"url":"https://example.com/cat.png"}}]}]})";
  DatasetExportCounts counts;
  std::string line;
  ASSERT_EQ(TrainingExample(Exchange(request, Answer("A cat.")), {}, line, counts),
            ExampleVerdict::kWritten);
  EXPECT_EQ(counts.image_urls, 1);
  EXPECT_NE(DescribeExport(counts, "openai/gpt-4o-mini").find("image URLs"), std::string::npos);
}

TEST(DatasetTest, AnsweredByMatchesProviderSlashModelOrTheBareId) {
  const StoredExchange e = Exchange("{}", "{}");
  EXPECT_TRUE(AnsweredBy(e, "openai/gpt-4o-mini"));
  EXPECT_TRUE(AnsweredBy(e, "gpt-4o-mini"));
  EXPECT_FALSE(AnsweredBy(e, "openai/gpt-4o"));
  EXPECT_FALSE(AnsweredBy(e, "azure/gpt-4o-mini"));
  EXPECT_FALSE(AnsweredBy(e, "openaiXgpt-4o-mini"));
  EXPECT_FALSE(AnsweredBy(e, "vision"));  // the route is not the teacher
  EXPECT_FALSE(AnsweredBy(e, ""));
}

TEST(DatasetTest, RedactSecretsScrubsKeyShapesAndTheOperatorsOwnKeys) {
  struct Case {
    std::string in, out;
  };
  const Case cases[] = {
      {"my key is sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123 ok", "my key is [REDACTED] ok"},
      {"sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz_-0123", "[REDACTED]"},
      {"use sk-iris-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg.", "use [REDACTED]."},
      {"AIzaSyAbCdEfGhIjKlMnOpQrStUvWxYz0123456", "[REDACTED]"},
      {"AKIAIOSFODNN7EXAMPLE is aws", "[REDACTED] is aws"},
      {"token ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "token [REDACTED]"},
      {"hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "[REDACTED]"},
      {"xoxb-1234567890-abcdefghij", "[REDACTED]"},
      {"Authorization: Bearer abc.DEF-ghi_jkl~mno+pqr/stu=", "Authorization: Bearer [REDACTED]"},
      {"jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFU",
       "jwt [REDACTED]"},
      {"-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc\n-----END RSA PRIVATE KEY-----\nbye",
       "[REDACTED]\nbye"},
      {"my-operator-key-123 twice my-operator-key-123", "[REDACTED] twice [REDACTED]"},
      // Not keys: ordinary words and short runs stay.
      {"ask-me-anything, task-force, sk-short, Bearer token",
       "ask-me-anything, task-force, "
       "sk-short, Bearer token"},
      {"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
       "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
      {"", ""},
  };
  const std::vector<std::string> exact = {"my-operator-key-123", "short"};
  for (const Case& c : cases) {
    std::string s = c.in;
    RedactSecrets(s, exact);
    EXPECT_EQ(s, c.out) << c.in;
  }
  // The operator's keys go whole before any shape can cut one: an AKIA-shaped prefix of a
  // longer key, and a short key inside a longer one.
  std::string nested = "k=AKIAABCDEFGHIJKLMNOP-tail-of-the-key and k2=inner-key-1234-outer";
  RedactSecrets(nested,
                {"inner-key-1234", "AKIAABCDEFGHIJKLMNOP-tail-of-the-key", "inner-key-1234-outer"});
  EXPECT_EQ(nested, "k=[REDACTED] and k2=[REDACTED]");
  std::string many = "sk-AAAAAAAAAAAAAAAAAAAAAAAA sk-BBBBBBBBBBBBBBBBBBBBBBBB";
  EXPECT_EQ(RedactSecrets(many, {}), 2);
}

TEST(DatasetTest, RedactionReachesEveryTextOfTheConversation) {
  const std::string request =
      R"({"messages":[{"role":"system","content":"key sk-AAAAAAAAAAAAAAAAAAAAAAAAAA"},)"
      R"({"role":"user","content":[{"type":"text","text":"and OPERATOR-SECRET-1"}]}]})";
  DatasetExportOptions options;
  options.redact_keys = true;
  options.secrets = {"OPERATOR-SECRET-1"};
  DatasetExportCounts counts;
  std::string line;
  ASSERT_EQ(TrainingExample(Exchange(request, Answer("it was sk-BBBBBBBBBBBBBBBBBBBBBBBBBB")),
                            options, line, counts),
            ExampleVerdict::kWritten);
  EXPECT_EQ(line.find("sk-A"), std::string::npos) << line;
  EXPECT_EQ(line.find("sk-B"), std::string::npos) << line;
  EXPECT_EQ(line.find("OPERATOR-SECRET"), std::string::npos) << line;
  EXPECT_EQ(counts.redactions, 3);
  // A signed image URL that stayed a URL is scrubbed too; inline data is left as it is.
  const std::string signed_url =
      R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":)"
      R"("https://b.s3.amazonaws.com/x.png?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F1"}}]}]})";
  DatasetExportCounts scrubbed;
  ASSERT_EQ(TrainingExample(Exchange(signed_url, Answer("x")), options, line, scrubbed),
            ExampleVerdict::kWritten);
  EXPECT_EQ(line.find("AKIA"), std::string::npos) << line;
  EXPECT_EQ(scrubbed.redactions, 1);
  // Without the flag nothing is touched.
  DatasetExportCounts plain;
  ASSERT_EQ(TrainingExample(Exchange(request, Answer("x")), {}, line, plain),
            ExampleVerdict::kWritten);
  EXPECT_NE(line.find("OPERATOR-SECRET-1"), std::string::npos);
}

TEST(DatasetTest, ExportWalksTheStoreAndCountsEachSkip) {
  testing::TempDir dir;
  auto store = OpenStore("sqlite:" + dir.path() + "/log.db");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::vector<RequestSummary> batch;
  auto add = [&](const std::string& id, const std::string& provider, const std::string& model,
                 std::string response) {
    RequestSummary r = testing::MakeRecord(id, 1795564800000 + static_cast<int64_t>(batch.size()));
    r.provider = provider;
    r.model = model;
    r.request_body = R"({"messages":[{"role":"user","content":"q )" + id + R"("}]})";
    r.response_body = std::move(response);
    batch.push_back(r);
  };
  add("a", "openai", "gpt-4o-mini", Answer("one"));
  add("b", "local", "smolvlm2", Answer("not the teacher"));
  add("c", "openai", "gpt-4o-mini", Answer("cut", "length"));
  add("d", "openai", "gpt-4o-mini", Answer("two"));
  ASSERT_TRUE((*store)->Insert(batch).ok());
  const std::string path = dir.path() + "/out.jsonl";
  std::FILE* out = std::fopen(path.c_str(), "wb");
  ASSERT_NE(out, nullptr);
  DatasetExportOptions options;
  options.model = "openai/gpt-4o-mini";
  options.until_unix_ms = int64_t{1} << 62;
  DatasetExportCounts counts;
  ASSERT_TRUE(ExportDataset(**store, options, out, counts).ok());
  std::fclose(out);
  EXPECT_EQ(counts.stored, 4);
  EXPECT_EQ(counts.matched, 3);
  EXPECT_EQ(counts.written, 2);
  EXPECT_EQ(counts.cut, 1);
  std::FILE* in = std::fopen(path.c_str(), "rb");
  char buf[4096];
  std::string text(buf, std::fread(buf, 1, sizeof(buf), in));
  std::fclose(in);
  EXPECT_EQ(
      text,
      R"({"messages":[{"role":"user","content":"q a"},{"role":"assistant","content":"one"}],"id":"a"})"
      "\n"
      R"({"messages":[{"role":"user","content":"q d"},{"role":"assistant","content":"two"}],"id":"d"})"
      "\n");
  EXPECT_EQ(DescribeExport(counts, "openai/gpt-4o-mini"),
            "2 examples (0 images) from 3 stored answers of openai/gpt-4o-mini; skipped 1 cut by "
            "max_tokens or a filter");
}

}  // namespace
}  // namespace iris::gateway::observe

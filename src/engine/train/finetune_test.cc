// Fine-tuning end to end on the tiny checkpoint: the data turns into labels on the answers
// only, bad lines are named by number, a few hundred steps learn a small synthetic task (and
// the adapter they write answers through the inference path), and a run stopped halfway and
// resumed ends bit for bit where an uninterrupted run ends.
#include "engine/train/finetune.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/base64.h"
#include "base/json.h"
#include "base/test_data.h"
#include "engine/formats/safetensors.h"

namespace iris::train {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

class FinetuneTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    runtime::EngineOptions eo;
    eo.threads = 2;
    auto e = runtime::Engine::Load(TestData("smolvlm2/tiny-256m-style"), eo);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = e->release();
  }
  static void TearDownTestSuite() { delete engine_; }
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("iris_finetune_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  // 24 questions about boxes, each with a colour (box i is colour i mod 4).
  std::string Boxes(const std::string& name, int from, int to) {
    static const char* kColours[] = {"red", "green", "blue", "black"};
    std::string s;
    for (int i = from; i < to; ++i) {
      s += R"({"messages": [{"role": "user", "content": "Which colour is box )" +
           std::to_string(i) + R"(?"}, {"role": "assistant", "content": "Box )" +
           std::to_string(i) + " is " + kColours[i % 4] + ".\"}]}\n";
    }
    return Write(name, s);
  }

  static runtime::Engine* engine_;
  fs::path dir_;
};
runtime::Engine* FinetuneTest::engine_ = nullptr;

TEST(CosineLrTest, WarmsUpThenDecaysToZero) {
  EXPECT_DOUBLE_EQ(CosineLr(1.0, 0, 10, 110), 0.0);
  EXPECT_DOUBLE_EQ(CosineLr(1.0, 5, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(CosineLr(1.0, 10, 10, 110), 1.0);
  EXPECT_NEAR(CosineLr(1.0, 60, 10, 110), 0.5, 1e-12);
  EXPECT_NEAR(CosineLr(1.0, 110, 10, 110), 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(CosineLr(2.0, 0, 0, 10), 2.0);
}

TEST_F(FinetuneTest, LabelsAreTheAnswersOnly) {
  auto line = ParseJson(
      R"({"messages": [{"role": "system", "content": "Be brief."},
                       {"role": "user", "content": "Hi"},
                       {"role": "assistant", "content": "Hello there."},
                       {"role": "user", "content": [{"type": "text", "text": "And?"}]},
                       {"role": "assistant", "content": [{"type": "text", "text": "Bye."}]}]})",
      "test");
  ASSERT_TRUE(line.ok());
  auto ex = MakeExample(*line, *engine_, {}, dir_.string());
  ASSERT_TRUE(ex.ok()) << ex.status().ToString();
  ASSERT_EQ(ex->labels.size(), ex->ids.size());
  // The labelled tokens, in order, are the two answers as the template ends them.
  std::vector<int32_t> learned;
  for (size_t t = 0; t < ex->labels.size(); ++t) {
    if (ex->labels[t] >= 0) {
      EXPECT_EQ(ex->labels[t], ex->ids[t + 1]);
      learned.push_back(ex->labels[t]);
    }
  }
  EXPECT_EQ(ex->labelled, learned.size());
  auto text = engine_->tokenizer().Decode(learned, /*skip_special=*/false);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, " Hello there.<end_of_utterance>\n Bye.<end_of_utterance>\n");
  // The whole conversation tokenizes as its rendering does.
  json::array msgs = line->as_object().at("messages").as_array();
  for (auto& m : msgs) {
    if (m.as_object().at("content").is_string()) {
      m.as_object()["content"] = json::array{
          json::object{{"type", "text"}, {"text", m.as_object().at("content").as_string()}}};
    }
  }
  auto rendered = engine_->RenderChat(msgs, false);
  ASSERT_TRUE(rendered.ok());
  EXPECT_EQ(ex->ids, engine_->tokenizer().Encode(*rendered));
}

TEST_F(FinetuneTest, ImagesComeFromPathsAndDataUrls) {
  fs::copy_file(TestData("smolvlm2/images/small.png"), dir_ / "small.png");
  std::ifstream in(TestData("smolvlm2/images/small.png"), std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  const std::string data_url = "data:image/png;base64," + Base64Encode(bytes.str());
  const std::string path = Write(
      "images.jsonl",
      R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "small.png"}}, {"type": "text", "text": "What?"}]}, {"role": "assistant", "content": "A test."}]})"
      "\n"
      R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": ")" +
          data_url +
          R"("}}, {"type": "text", "text": "What?"}]}, {"role": "assistant", "content": "A test."}]})"
          "\n");
  {  // http(s) URLs: refused, saying why, without a fetcher; read through it with one.
    const std::string url_line =
        R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://img.example.com/cat.png"}}, {"type": "text", "text": "What?"}]}, {"role": "assistant", "content": "A test."}]})"
        "\n";
    const std::string urls = Write(
        "urls.jsonl",
        R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "small.png"}}, {"type": "text", "text": "What?"}]}, {"role": "assistant", "content": "A test."}]})"
        "\n" +
            url_line + url_line);
    DatasetOptions no_fetch;
    no_fetch.no_fetch_reason = "image URLs are not fetched: image_fetch.enabled is off";
    auto refused = LoadDataset(urls, *engine_, no_fetch);
    ASSERT_TRUE(refused.ok());
    ASSERT_EQ(refused->problems.size(), 2u);
    EXPECT_EQ(refused->problems[0].line, 2u);
    EXPECT_NE(refused->problems[0].message.find(
                  "image_fetch.enabled is off (https://img.example.com/cat.png)"),
              std::string::npos)
        << refused->problems[0].message;
    DatasetOptions fetching;
    std::vector<std::string> asked;
    fetching.fetch_url = [&](const std::string& url) -> Result<std::string> {
      asked.push_back(url);
      if (asked.size() == 2) return NotFound("fetching the image at img.example.com: HTTP 404");
      return bytes.str();
    };
    auto fetched = LoadDataset(urls, *engine_, fetching);
    ASSERT_TRUE(fetched.ok());
    EXPECT_EQ(asked, std::vector<std::string>(2, "https://img.example.com/cat.png"));
    ASSERT_EQ(fetched->examples.size(), 2u);
    EXPECT_EQ(fetched->examples[1].ids, fetched->examples[0].ids);  // the same picture
    ASSERT_EQ(fetched->problems.size(), 1u);
    EXPECT_EQ(fetched->problems[0].line, 3u);
    EXPECT_NE(fetched->problems[0].message.find("HTTP 404"), std::string::npos);
    // A URL that failed is not asked for again in the same load.
    const std::string dead = Write("dead.jsonl", url_line + url_line + url_line);
    asked.clear();
    fetching.fetch_url = [&](const std::string& url) -> Result<std::string> {
      asked.push_back(url);
      return Status(ErrorCode::kDeadlineExceeded, "too slow");
    };
    auto slow = LoadDataset(dead, *engine_, fetching);
    ASSERT_TRUE(slow.ok());
    EXPECT_EQ(slow->problems.size(), 3u);
    EXPECT_EQ(asked.size(), 1u);
    // A stop request ends the load (a cancelled job).
    fetching.stop = [] { return true; };
    EXPECT_EQ(LoadDataset(dead, *engine_, fetching).status().code(), ErrorCode::kUnavailable);
  }
  auto d = LoadDataset(path, *engine_, {});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(d->problems.empty()) << d->problems[0].message;
  ASSERT_EQ(d->examples.size(), 2u);
  EXPECT_EQ(d->examples[0].ids, d->examples[1].ids);  // the same picture either way
  EXPECT_EQ(d->examples[0].visuals.size(), 1u);
  // A step runs through the vision tower once per image.
  FinetuneOptions o;
  o.max_steps = 2;
  auto run = Finetune::Create(*engine_, std::move(d).value(), std::nullopt, o,
                              (dir_ / "out").string(), false);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  std::vector<double> losses;
  ASSERT_TRUE(run->Run([&](const StepReport& r) { losses.push_back(r.loss); }).ok());
  EXPECT_EQ(losses.size(), 2u);
}

TEST_F(FinetuneTest, BadLinesAreNamedByLineNumber) {
  const std::string path = Write(
      "bad.jsonl",
      R"({"messages": [{"role": "user", "content": "ok"}, {"role": "assistant", "content": "fine"}]})"
      "\n"
      "{not json\n"
      "\n"
      R"({"messages": [{"content": "who?"}, {"role": "assistant", "content": "x"}]})"
      "\n"
      R"({"messages": [{"role": "user", "content": "no answer"}]})"
      "\n"
      R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "missing.png"}}]}, {"role": "assistant", "content": "x"}]})"
      "\n"
      R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "x"}], "extra": 1})"
      "\n"
      R"({"messages": [{"role": "user", "content": "a b c d e f g h i j k l m n o p q r s t u v w x y z"}, {"role": "assistant", "content": "x"}]})"
      "\n");
  DatasetOptions opt;
  opt.max_tokens = 30;
  auto d = LoadDataset(path, *engine_, opt);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->examples.size(), 2u);  // lines 1 and 7
  ASSERT_EQ(d->problems.size(), 5u);
  EXPECT_EQ(d->problems[0].line, 2u);
  EXPECT_NE(d->problems[0].message.find("not JSON"), std::string::npos);
  EXPECT_EQ(d->problems[1].line, 4u);
  EXPECT_EQ(d->problems[1].message, "message 1 has no role");
  EXPECT_EQ(d->problems[2].line, 5u);
  EXPECT_EQ(d->problems[2].message, "no assistant message to learn from");
  EXPECT_EQ(d->problems[3].line, 6u);
  EXPECT_NE(d->problems[3].message.find("image 1: "), std::string::npos);
  EXPECT_EQ(d->problems[4].line, 8u);
  EXPECT_NE(d->problems[4].message.find("longer than --max-seq-tokens (30)"), std::string::npos);
  EXPECT_EQ(LoadDataset((dir_ / "nope.jsonl").string(), *engine_, {}).status().code(),
            ErrorCode::kNotFound);
}

// The task: 24 answers of a fixed form. From ln(576) ≈ 6.4 nats the loss falls below 1.2
// within 240 steps, the held-out loss falls too, and the adapter, loaded as any PEFT adapter,
// answers in the learned form.
TEST_F(FinetuneTest, ASyntheticTaskIsLearned) {
  auto train = LoadDataset(Boxes("train.jsonl", 0, 24), *engine_, {});
  auto eval = LoadDataset(Boxes("eval.jsonl", 24, 28), *engine_, {});
  ASSERT_TRUE(train.ok() && eval.ok());
  FinetuneOptions o;
  o.lora.rank = 8;
  o.lora.alpha = 16;
  o.lr = 5e-3;
  o.epochs = 30;
  o.batch_tokens = 128;
  o.seed = 1;
  o.eval_every = 60;
  const std::string out = (dir_ / "out").string();
  auto run =
      Finetune::Create(*engine_, std::move(train).value(), std::move(eval).value(), o, out, false);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_EQ(run->total_steps(), 240);
  std::vector<StepReport> reports;
  ASSERT_TRUE(run->Run([&](const StepReport& r) { reports.push_back(r); }).ok());
  ASSERT_EQ(reports.size(), 240u);
  EXPECT_GT(reports.front().loss, 5.5);
  double last = 0;
  for (size_t i = reports.size() - 24; i < reports.size(); ++i) last += reports[i].loss / 24;
  EXPECT_LT(last, 1.2);
  ASSERT_TRUE(reports[59].eval_loss && reports.back().eval_loss);
  EXPECT_LT(*reports.back().eval_loss, *reports[59].eval_loss);
  EXPECT_LT(*reports.back().eval_loss, 2.0);
  // The log has a line per step.
  std::ifstream log(out + "/train_log.jsonl");
  size_t lines = 0;
  for (std::string l; std::getline(log, l);) ++lines;
  EXPECT_EQ(lines, 240u);

  auto adapter = engine_->LoadAdapter(out);
  ASSERT_TRUE(adapter.ok()) << adapter.status().ToString();
  EXPECT_EQ((*adapter)->linears().size(), 14u);
  auto ids = engine_->TokenizePrompt(
      "<|im_start|>User: Which colour is box 25?<end_of_utterance>\nAssistant:", {});
  ASSERT_TRUE(ids.ok());
  runtime::GenerateOptions g;
  g.max_tokens = 8;
  g.adapter = *adapter;
  auto answer = engine_->Generate(*ids, g);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->text.substr(0, 5), " Box ") << answer->text;  // the form (box 25 is held out)
}

TEST_F(FinetuneTest, AStoppedRunResumesBitForBit) {
  const std::string data = Boxes("train.jsonl", 0, 12);
  FinetuneOptions o;
  o.epochs = 3;
  o.batch_tokens = 64;
  o.lr = 1e-2;
  o.save_every = 0;
  auto load = [&] { return std::move(LoadDataset(data, *engine_, {})).value(); };
  const std::string whole = (dir_ / "whole").string(), halves = (dir_ / "halves").string();
  auto a = Finetune::Create(*engine_, load(), std::nullopt, o, whole, false);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(a->Run({}).ok());
  const int64_t total = a->total_steps();
  ASSERT_GT(total, 6);

  std::atomic<bool> stop{false};
  auto b = Finetune::Create(*engine_, load(), std::nullopt, o, halves, false);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->Run([&](const StepReport& r) { stop = r.step == 5; }, &stop).ok());
  EXPECT_EQ(b->step(), 5);
  // Other options cannot resume it.
  FinetuneOptions other = o;
  other.lr = 2e-2;
  auto wrong = Finetune::Create(*engine_, load(), std::nullopt, other, halves, true);
  EXPECT_EQ(wrong.status().code(), ErrorCode::kFailedPrecondition);
  auto c = Finetune::Create(*engine_, load(), std::nullopt, o, halves, true);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->step(), 5);
  ASSERT_TRUE(c->Run({}).ok());
  EXPECT_EQ(c->step(), total);
  auto read = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  const std::string x = read(whole + "/adapter_model.safetensors");
  EXPECT_FALSE(x.empty());
  EXPECT_EQ(x, read(halves + "/adapter_model.safetensors"));
  EXPECT_EQ(read(whole + "/checkpoint/state.safetensors"),
            read(halves + "/checkpoint/state.safetensors"));
  // The log has every step once, as if the run had never stopped (a crash past the
  // checkpoint leaves lines that the resumed run drops and writes again).
  std::ofstream(halves + "/train_log.jsonl", std::ios::app) << "{\"step\": 999}\n";
  auto again = Finetune::Create(*engine_, load(), std::nullopt, o, halves, true);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(again->Run({}).ok());
  std::ifstream log(halves + "/train_log.jsonl");
  int64_t expected = 1;
  for (std::string line; std::getline(log, line); ++expected) {
    EXPECT_EQ(line.find("{\"step\":" + std::to_string(expected) + ","), 0u) << line;
  }
  EXPECT_EQ(expected, total + 1);
}

}  // namespace
}  // namespace iris::train

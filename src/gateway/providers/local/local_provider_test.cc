#include "gateway/providers/local/local_provider.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <thread>

#include "base/base64.h"
#include "base/mapped_file.h"
#include "engine/runtime/engine.h"

namespace iris::gateway::providers {
namespace {

const std::string kModel = std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-256m-style";

std::unique_ptr<LocalProvider> MakeProvider(size_t max_queue = 16, size_t max_batch = 8) {
  runtime::EngineOptions eo;
  eo.threads = 1;
  auto engine = runtime::Engine::Load(kModel, eo);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  LocalOptions o;
  o.max_queue = max_queue;
  o.max_batch = max_batch;
  o.default_max_tokens = 8;
  return std::make_unique<LocalProvider>(std::move(engine).value(), o);
}

ChatRequest TextRequest(std::string text) {
  ChatRequest r;
  Message m;
  m.content.push_back(ContentPart::Text(std::move(text)));
  r.messages.push_back(m);
  return r;
}

struct Collected {
  std::vector<StreamEvent> events;
  Status status;
};

Collected RunToEnd(LocalProvider& p, ChatRequest r, int stop_after = -1) {
  auto events = std::make_shared<std::vector<StreamEvent>>();
  std::promise<Status> done;
  auto fut = done.get_future();
  Status s =
      p.Submit(std::move(r), LocalSink{[events, stop_after](const StreamEvent& e) {
                                         events->push_back(e);
                                         return stop_after < 0 ||
                                                static_cast<int>(events->size()) < stop_after;
                                       },
                                       [&done](const Status& st) { done.set_value(st); },
                                       {}});
  if (!s.ok()) return {{}, s};
  Status st = fut.get();
  return {*events, st};
}

TEST(LocalProvider, StreamsStartTextFinishAndUsage) {
  auto p = MakeProvider();
  Collected c = RunToEnd(*p, TextRequest("Hello"));
  ASSERT_TRUE(c.status.ok()) << c.status.ToString();
  ASSERT_GE(c.events.size(), 3u);
  EXPECT_EQ(c.events.front().type, StreamEvent::Type::kStart);
  EXPECT_EQ(c.events.back().type, StreamEvent::Type::kUsage);
  EXPECT_GT(c.events.back().usage.input_tokens, 0);
  EXPECT_GT(c.events.back().usage.output_tokens, 0);
  EXPECT_LE(c.events.back().usage.output_tokens, 8);
  EXPECT_EQ(c.events[c.events.size() - 2].type, StreamEvent::Type::kFinish);
}

TEST(LocalProvider, GreedyIsDeterministic) {
  auto p = MakeProvider();
  auto text = [&] {
    std::string t;
    for (const auto& e : RunToEnd(*p, TextRequest("Describe")).events) {
      if (e.type == StreamEvent::Type::kTextDelta) t += e.text;
    }
    return t;
  };
  EXPECT_EQ(text(), text());
}

TEST(LocalProvider, CallerCanStopTheGeneration) {
  auto p = MakeProvider();
  ChatRequest r = TextRequest("Hello");
  r.max_tokens = 64;
  Collected c = RunToEnd(*p, r, /*stop_after=*/2);
  EXPECT_TRUE(c.status.ok());
  EXPECT_EQ(c.events.size(), 2u);  // start + one piece, then nothing
}

TEST(LocalProvider, RefusesWhatItCannotTakeWithReasons) {
  auto p = MakeProvider();
  ChatRequest tools = TextRequest("x");
  tools.tools.push_back(Tool{"f", "", {}, false, std::nullopt});
  EXPECT_EQ(p->Submit(tools, {}).code(), ErrorCode::kUnimplemented);
  ChatRequest url = TextRequest("x");
  ContentPart img;
  img.type = ContentPart::Type::kImage;
  img.url = "https://example.com/cat.png";
  url.messages[0].content.push_back(img);
  Status s = p->Submit(url, {});
  EXPECT_EQ(s.code(), ErrorCode::kUnimplemented);
  EXPECT_NE(s.message().find("example.com"), std::string::npos);
}

// A chat template that fails on a conversation (here one that runs past the renderer's bounds,
// a ResourceExhausted inside) is the request's error (400), not a retryable 429/503.
TEST(LocalProvider, AChatTemplateThatFailsIsNotRetryable) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("iris-template-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  for (const auto& entry : std::filesystem::directory_iterator(kModel)) {
    if (entry.path().filename() == "chat_template.json") continue;
    std::filesystem::create_symlink(entry.path(), dir / entry.path().filename());
  }
  {
    std::ofstream t(dir / "chat_template.json");
    t << R"({"chat_template": "{% for i in range(100000000) %}{% endfor %}"})";
  }
  runtime::EngineOptions eo;
  eo.threads = 1;
  auto engine = runtime::Engine::Load(dir.string(), eo);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  LocalProvider p(std::move(engine).value(), LocalOptions{});
  Collected c = RunToEnd(p, TextRequest("hello"));
  std::filesystem::remove_all(dir);
  EXPECT_EQ(c.status.code(), ErrorCode::kInvalidArgument) << c.status.ToString();
  EXPECT_NE(c.status.message().find("chat template"), std::string::npos) << c.status.message();
}

TEST(LocalProvider, CorruptImageEndsWithAClearError) {
  auto p = MakeProvider();
  ChatRequest r = TextRequest("What is this?");
  ContentPart img;
  img.type = ContentPart::Type::kImage;
  img.data_base64 = Base64Encode("\x89PNG\r\n\x1a\n not really");
  r.messages[0].content.insert(r.messages[0].content.begin(), img);
  Collected c = RunToEnd(*p, r);
  EXPECT_FALSE(c.status.ok());
  EXPECT_NE(c.status.message().find("image 1"), std::string::npos) << c.status.message();
}

TEST(LocalProvider, AnswersAnInlineImage) {
  auto p = MakeProvider();
  auto png = ReadFileToString(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/images/small.png");
  ASSERT_TRUE(png.ok());
  ChatRequest r = TextRequest("What colour?");
  ContentPart img;
  img.type = ContentPart::Type::kImage;
  img.data_base64 = Base64Encode(*png);
  r.messages[0].content.insert(r.messages[0].content.begin(), img);
  Collected c = RunToEnd(*p, r);
  EXPECT_TRUE(c.status.ok()) << c.status.ToString();
}

// Many tiny images are refused before any is decoded or preprocessed; an image too large to
// decode is the caller's error (InvalidArgument, a 400), never a retryable one.
TEST(LocalProvider, BoundsImagesBeforeWorkingOnThem) {
  auto p = MakeProvider();
  auto png = ReadFileToString(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/images/small.png");
  ASSERT_TRUE(png.ok());
  ChatRequest r = TextRequest("What are these?");
  ContentPart img;
  img.type = ContentPart::Type::kImage;
  img.data_base64 = Base64Encode(*png);
  for (int i = 0; i < 100; ++i) r.messages[0].content.push_back(img);
  Status s = p->Submit(r, {});
  EXPECT_EQ(s.code(), ErrorCode::kUnimplemented);
  EXPECT_NE(s.message().find("at most 8 images"), std::string::npos) << s.message();

  // A 20000 x 20000 PNG header: over max_image_pixels, refused from the header alone.
  std::string huge = *png;
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) huge[at + i] = static_cast<char>((v >> (24 - 8 * i)) & 0xff);
  };
  put32(16, 20000);
  put32(20, 20000);
  ChatRequest big = TextRequest("What is this?");
  img.data_base64 = Base64Encode(huge);
  big.messages[0].content.insert(big.messages[0].content.begin(), img);
  Collected c = RunToEnd(*p, big);
  EXPECT_EQ(c.status.code(), ErrorCode::kInvalidArgument) << c.status.ToString();
  EXPECT_NE(c.status.message().find("image 1"), std::string::npos);
}

TEST(LocalProvider, StartCarriesARealCreatedTime) {
  auto p = MakeProvider();
  Collected c = RunToEnd(*p, TextRequest("hi"));
  ASSERT_TRUE(c.status.ok());
  ASSERT_FALSE(c.events.empty());
  EXPECT_EQ(c.events[0].type, StreamEvent::Type::kStart);
  EXPECT_GT(c.events[0].created, 1700000000);
}

// Submits `r` with a sink whose first event holds the engine thread until the returned
// promise is set, and returns once the engine thread is held (null if Submit refused).
std::shared_ptr<std::promise<void>> HoldEngineThread(LocalProvider& p, const ChatRequest& r) {
  auto release = std::make_shared<std::promise<void>>();
  auto started = std::make_shared<std::promise<void>>();
  auto started_f = started->get_future();
  auto released = release->get_future().share();
  auto first = std::make_shared<bool>(true);
  const Status submitted = p.Submit(r, LocalSink{[first, started, released](const StreamEvent&) {
                                                   if (*first) {
                                                     *first = false;
                                                     started->set_value();
                                                     released.wait();
                                                   }
                                                   return true;
                                                 },
                                                 [](const Status&) {},
                                                 {}});
  if (!submitted.ok()) return nullptr;
  started_f.wait();
  return release;
}

TEST(LocalProvider, FullQueueIsResourceExhausted) {
  auto p = MakeProvider(/*max_queue=*/1, /*max_batch=*/1);
  // One running (blocked in its sink until released) and one queued fill it.
  ChatRequest slow = TextRequest("a");
  slow.max_tokens = 4;
  auto release = HoldEngineThread(*p, slow);
  ASSERT_NE(release, nullptr);
  ASSERT_TRUE(
      p->Submit(slow, LocalSink{[](const StreamEvent&) { return true; }, [](const Status&) {}, {}})
          .ok());
  EXPECT_EQ(p->Submit(slow, {}).code(), ErrorCode::kResourceExhausted);
  release->set_value();
}

std::string Text(const Collected& c) {
  std::string text;
  for (const StreamEvent& e : c.events) {
    if (e.type == StreamEvent::Type::kTextDelta) text += e.text;
  }
  return text;
}

TEST(LocalProvider, ConcurrentRequestsAreSteppedTogetherAndAnswerAsAlone) {
  const auto test_start = std::chrono::steady_clock::now();
  auto p = MakeProvider(/*max_queue=*/16, /*max_batch=*/4);
  ChatRequest r = TextRequest("Tell me about the sea, the waves, the tides and the wind.");
  r.max_tokens = 24;
  const Collected alone = RunToEnd(*p, r);
  ASSERT_TRUE(alone.status.ok()) << alone.status.ToString();
  // Hold the engine thread in a first request's sink while six more arrive, so they start
  // together.
  ChatRequest hold = TextRequest("a");
  hold.max_tokens = 2;
  auto release = HoldEngineThread(*p, hold);
  ASSERT_NE(release, nullptr);
  std::vector<std::future<Collected>> many;
  std::atomic<int> submitted{0};
  for (int i = 0; i < 6; ++i) {
    many.push_back(std::async(std::launch::async, [&p, &submitted, r] {
      ++submitted;
      return RunToEnd(*p, r);
    }));
  }
  while (submitted.load() < 6 || p->stats().queued.load() < 6) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  release->set_value();
  for (auto& f : many) {
    const Collected c = f.get();
    ASSERT_TRUE(c.status.ok()) << c.status.ToString();
    EXPECT_EQ(Text(c), Text(alone));
    EXPECT_EQ(c.events.back().usage.output_tokens, alone.events.back().usage.output_tokens);
  }
  const LocalStats& st = p->stats();
  // The stats are published after each step, and a step's last token reaches its caller
  // before that: wait (bounded) for the step that finished the last generation.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (st.running.load() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Some steps ran several sequences, none more than max_batch.
  uint64_t batched = 0;
  for (size_t n = 2; n <= 4; ++n) batched += st.steps_by_sequences[n].load();
  for (size_t n = 5; n < st.steps_by_sequences.size(); ++n) {
    EXPECT_EQ(st.steps_by_sequences[n].load(), 0u) << n;
  }
  EXPECT_GT(batched, 0u);
  // Every step is counted by its time too, and their times add up to less than the test's.
  uint64_t timed = 0;
  for (const auto& n : st.steps_by_ms) timed += n.load();
  EXPECT_EQ(timed, static_cast<uint64_t>(st.steps.load()));
  EXPECT_GT(st.step_seconds.load(), 0.0);
  EXPECT_LT(st.step_seconds.load(),
            std::chrono::duration<double>(std::chrono::steady_clock::now() - test_start).count());
  EXPECT_EQ(st.running.load(), 0);
  EXPECT_EQ(st.kv_blocks_in_use.load() > 0, true);  // the shared prompt prefix stays cached
  EXPECT_GT(st.prefix_hit_tokens.load(), 0);
}

}  // namespace
}  // namespace iris::gateway::providers

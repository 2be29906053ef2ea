// Generation on the tiny fixture model: streaming, stop strings, max tokens, cancellation,
// bad input.
#include "engine/runtime/engine.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/json.h"
#include "engine/kernels/kernels.h"

namespace iris::runtime {
namespace {

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EngineOptions o;
    o.threads = 2;
    auto e = Engine::Load(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-256m-style", o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e).release();
  }
  static void TearDownTestSuite() { delete engine_; }

  std::vector<int32_t> Prompt() {
    boost::json::array messages{boost::json::object{
        {"role", "user"},
        {"content", boost::json::array{boost::json::object{
                        {"type", "text"}, {"text", "What is the capital of France?"}}}}}};
    auto text = engine_->RenderChat(messages);
    EXPECT_TRUE(text.ok()) << text.status().ToString();
    EXPECT_EQ(*text,
              "<|im_start|>User: What is the capital of France?<end_of_utterance>\nAssistant:");
    return engine_->tokenizer().Encode(*text);
  }

  static Engine* engine_;
};
Engine* EngineTest::engine_ = nullptr;

TEST_F(EngineTest, GreedyMatchesGoldenTokensAndStreamsTheSameText) {
  GenerateOptions o;
  o.max_tokens = 8;
  o.stop_at_eos = false;
  std::string streamed;
  auto r = engine_->Generate(Prompt(), o, [&](std::string_view s) {
    streamed += s;
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tokens, (std::vector<int32_t>{139, 19, 34, 371, 386, 151, 173, 530}));
  EXPECT_EQ(r->finish_reason, "length");
  EXPECT_EQ(streamed, r->text);
  EXPECT_EQ(r->prompt_tokens, 15u);
}

TEST_F(EngineTest, StopStringCutsTheAnswerAndIsNeverStreamed) {
  GenerateOptions o;
  o.max_tokens = 8;
  o.stop_at_eos = false;
  auto full = engine_->Generate(Prompt(), o);
  ASSERT_TRUE(full.ok());
  ASSERT_GT(full->text.size(), 4u);
  // Stop on a piece from the middle of the full answer.
  const std::string stop = full->text.substr(2, 2);
  o.stop = {stop};
  std::string streamed;
  auto r = engine_->Generate(Prompt(), o, [&](std::string_view s) {
    streamed += s;
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish_reason, "stop");
  EXPECT_EQ(r->text, full->text.substr(0, full->text.find(stop)));
  EXPECT_EQ(streamed, r->text);
}

TEST_F(EngineTest, MaxTokensAndCancellation) {
  GenerateOptions o;
  o.max_tokens = 3;
  o.stop_at_eos = false;
  auto r = engine_->Generate(Prompt(), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tokens.size(), 3u);
  o.max_tokens = 0;
  auto none = engine_->Generate(Prompt(), o);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->tokens.empty());
  o.max_tokens = 50;
  int calls = 0;
  auto cancelled = engine_->Generate(Prompt(), o, [&](std::string_view) { return ++calls < 2; });
  ASSERT_TRUE(cancelled.ok());
  EXPECT_LT(cancelled->tokens.size(), 50u);
}

// --compute: exact or bf16 (where the CPU has AVX512-BF16; said plainly where it has not).
// The bf16 engine answers the fixture's greedy tokens (its error is measured by iris verify).
TEST(EngineComputeTest, Bf16IsOptInAndRefusedWhereTheCpuLacksIt) {
  const std::string dir = std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-256m-style";
  EngineOptions o;
  o.threads = 2;
  o.compute = "fp8";
  auto bad = Engine::Load(dir, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("exact or bf16"), std::string::npos);
  o.compute = "bf16";
  auto e = Engine::Load(dir, o);
  if (!kernels::Bf16ProductsAvailable()) {
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.status().message().find("AVX512-BF16"), std::string::npos);
    return;
  }
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_TRUE((*e)->compute().bf16);
  // Its matrices are packed for the bf16 products at load, the output layer included.
  for (const model::TextModel::Layer& l : (*e)->text_model().layers()) {
    for (const tensor::TensorView* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
      EXPECT_EQ(w->dtype, tensor::DType::kBF16p);
    }
  }
  EXPECT_EQ((*e)->text_model().lm_head().dtype, tensor::DType::kBF16p);
}

// The embeddings of n token ids spread over the tiny model's vocabulary from `first`.
std::vector<float> SpreadEmbeds(const model::TextModel& text, size_t n, int32_t first) {
  std::vector<int32_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = (first + static_cast<int32_t>(7 * i)) % 500;
  std::vector<float> out(n * static_cast<size_t>(text.model_dim()));
  text.Embed(ids, out.data());
  return out;
}

// A decoding token gets the same logits, bit for bit, alone and in a step beside an 80-token
// prompt chunk (81 rows: past where products switch from tiles to panels), and so does the
// chunk's last token, on the exact path and under bf16: the model's matrices are packed at load and
// every number of rows sums through the same panels. (With rows instead the exact case fails; bf16
// sums of this tiny model's short rows are mostly exact in f32 in any order, so for bf16 the
// kernels' tests are the proof.)
TEST(EngineComputeTest, ADecodingTokenGetsTheSameBitsAloneAndBesideAPromptChunk) {
  const std::string dir = std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-256m-style";
  for (const std::string compute : {"exact", "bf16"}) {
    if (compute == "bf16" && !kernels::Bf16ProductsAvailable()) continue;
    EngineOptions o;
    o.threads = 2;
    o.compute = compute;
    auto e = Engine::Load(dir, o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    const model::TextModel& text = (*e)->text_model();
    ops::ComputeContext& ctx = (*e)->compute();
    auto embeds = [&](size_t n, int32_t first) { return SpreadEmbeds(text, n, first); };
    const std::vector<float> prompt = embeds(20, 3), next = embeds(1, 11), other = embeds(80, 5);
    model::KvCache alone_cache = text.NewCache(), shared_cache = text.NewCache(),
                   other_cache = text.NewCache();
    std::vector<float> logits;
    ASSERT_TRUE(text.Forward(ctx, prompt.data(), 20, alone_cache, false, &logits).ok());
    ASSERT_TRUE(text.Forward(ctx, prompt.data(), 20, shared_cache, false, &logits).ok());
    std::vector<float> alone, together;
    ASSERT_TRUE(alone_cache.Reserve(21) && shared_cache.Reserve(21) && other_cache.Reserve(80));
    const model::ForwardChunk one[] = {{next.data(), 1, &alone_cache}};
    text.ForwardBatch(ctx, one, &alone);
    const model::ForwardChunk two[] = {{next.data(), 1, &shared_cache},
                                       {other.data(), 80, &other_cache}};
    text.ForwardBatch(ctx, two, &together);
    const size_t vocab = static_cast<size_t>(text.vocab_size());
    ASSERT_EQ(alone.size(), vocab);
    ASSERT_EQ(together.size(), 2 * vocab);
    EXPECT_EQ(std::memcmp(alone.data(), together.data(), vocab * sizeof(float)), 0) << compute;
    // And the prompt chunk's last token gets the bits it gets alone: the batch's row-wise steps
    // (norms, RoPE, cache writes, adds) split across threads by rows, across the two chunks.
    model::KvCache other_alone_cache = text.NewCache();
    ASSERT_TRUE(other_alone_cache.Reserve(80));
    std::vector<float> other_alone;
    const model::ForwardChunk other_one[] = {{other.data(), 80, &other_alone_cache}};
    text.ForwardBatch(ctx, other_one, &other_alone);
    ASSERT_EQ(other_alone.size(), vocab);
    EXPECT_EQ(std::memcmp(other_alone.data(), together.data() + vocab, vocab * sizeof(float)), 0)
        << compute;
  }
}

// The row-wise steps of a batched step (norms, RoPE and cache writes, residual adds, SiluMul)
// split across the pool by rows: every row of a decoding token beside a 300-token prompt chunk
// (SiluMul's 301 × 160 values split too) gets the bits the same step gives on one thread.
TEST(EngineComputeTest, ABatchedStepGetsTheSameBitsOnThePoolAsOnOneThread) {
  const std::string dir = std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-256m-style";
  EngineOptions o;
  o.threads = 2;
  auto e = Engine::Load(dir, o);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  const model::TextModel& text = (*e)->text_model();
  ops::ComputeContext& pooled = (*e)->compute();
  ASSERT_NE(pooled.pool, nullptr);
  ops::ComputeContext serial = pooled;
  serial.pool = nullptr;
  auto embeds = [&](size_t n, int32_t first) { return SpreadEmbeds(text, n, first); };
  const std::vector<float> prompt = embeds(20, 3), next = embeds(1, 11), other = embeds(300, 5);
  std::vector<float> logits[2];
  int run = 0;
  for (ops::ComputeContext* ctx : {&serial, &pooled}) {
    model::KvCache decoding = text.NewCache(), prompting = text.NewCache();
    std::vector<float> ignored;
    ASSERT_TRUE(text.Forward(*ctx, prompt.data(), 20, decoding, false, &ignored).ok());
    ASSERT_TRUE(decoding.Reserve(21) && prompting.Reserve(300));
    model::ForwardChunk chunks[] = {{next.data(), 1, &decoding}, {other.data(), 300, &prompting}};
    chunks[1].logits = model::ForwardChunk::Logits::kAll;
    text.ForwardBatch(*ctx, chunks, &logits[run++]);
  }
  const size_t vocab = static_cast<size_t>(text.vocab_size());
  ASSERT_EQ(logits[0].size(), 301 * vocab);
  ASSERT_EQ(logits[1].size(), logits[0].size());
  for (size_t row = 0; row < 301; ++row) {
    ASSERT_EQ(std::memcmp(logits[0].data() + row * vocab, logits[1].data() + row * vocab,
                          vocab * sizeof(float)),
              0)
        << "row " << row;
  }
}

// A tied checkpoint's embedding table is read by rows and the output layer is a packed copy
// of it, with its values: on the exact path (by default) and under bf16.
TEST(EngineComputeTest, ATiedEmbeddingTableGetsAPackedCopyForTheOutputLayer) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("iris-tied-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::copy(std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-256m-style", dir,
           fs::copy_options::recursive);
  {
    auto config = ReadJsonFile((dir / "config.json").string());
    ASSERT_TRUE(config.ok());
    config->as_object()["tie_word_embeddings"] = true;
    std::ofstream(dir / "config.json") << boost::json::serialize(*config);
  }
  for (const std::string compute : {"exact", "bf16"}) {
    if (compute == "bf16" && !kernels::Bf16ProductsAvailable()) continue;
    EngineOptions o;
    o.threads = 2;
    o.compute = compute;
    auto e = Engine::Load(dir.string(), o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    const model::TextModel& text = (*e)->text_model();
    const tensor::TensorView& head = text.lm_head();
    ASSERT_EQ(head.dtype, tensor::DType::kBF16p) << compute;
    const size_t vocab = static_cast<size_t>(head.shape[0]);
    const size_t dim = static_cast<size_t>(head.shape[1]);
    std::vector<int32_t> ids(vocab);
    for (size_t i = 0; i < vocab; ++i) ids[i] = static_cast<int32_t>(i);
    std::vector<float> rows(vocab * dim);
    text.Embed(ids, rows.data());
    for (size_t i = 0; i < rows.size(); ++i) {
      ASSERT_EQ(head.GetF32(static_cast<int64_t>(i)), tensor::Bf16ToF32(tensor::F32ToBf16(rows[i])))
          << compute << " " << i;
    }
  }
  fs::remove_all(dir);
}

// --kv-cache-dtype: f32 (the default) or f16, anything else refused by name; an f16 engine's
// Generate keeps its cache in f16 and still answers the fixture's greedy tokens.
TEST(EngineKvCacheTest, F16IsOptInAndAnythingElseIsRefused) {
  const std::string dir = std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-256m-style";
  EngineOptions o;
  o.threads = 2;
  o.kv_cache_dtype = "q8_0";
  auto bad = Engine::Load(dir, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("f32 or f16"), std::string::npos);
  o.kv_cache_dtype = "f16";
  auto e = Engine::Load(dir, o);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ((*e)->kv_dtype(), tensor::DType::kF16);
  EXPECT_EQ((*e)->NewKvPool()->dtype(), tensor::DType::kF16);
  EXPECT_EQ((*e)->generate_kv_pool().dtype(), tensor::DType::kF16);
  o.kv_cache_dtype = "";
  auto exact = Engine::Load(dir, o);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ((*exact)->kv_dtype(), tensor::DType::kF32);
  EXPECT_EQ((*exact)->generate_kv_pool().dtype(), tensor::DType::kF32);
  // The same answer from both to the fixture's text question (8 greedy tokens; iris verify
  // --kv-cache-dtype f16 finds every golden case's greedy tokens unchanged).
  GenerateOptions g;
  g.max_tokens = 8;
  g.stop_at_eos = false;
  boost::json::array messages{boost::json::object{
      {"role", "user"},
      {"content", boost::json::array{boost::json::object{
                      {"type", "text"}, {"text", "What is the capital of France?"}}}}}};
  auto text = (*e)->RenderChat(messages);
  ASSERT_TRUE(text.ok());
  const std::vector<int32_t> prompt = (*e)->tokenizer().Encode(*text);
  auto a = (*e)->Generate(prompt, g);
  auto b = (*exact)->Generate(prompt, g);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->tokens, b->tokens);
}

// A forward pass whose keys and values the machine will not hold (a new slab refused) is an
// error that appends nothing, not the end of the process; with the memory back, the same
// cache goes on.
TEST_F(EngineTest, AForwardPassTheMachineHasNoMemoryForIsAnError) {
  const model::TextModel& text = engine_->text_model();
  const std::vector<int32_t> ids = Prompt();
  std::vector<float> embeds(ids.size() * static_cast<size_t>(text.model_dim()));
  text.Embed(ids, embeds.data());
  auto pool = text.NewPool();
  pool->set_slab_limit_for_testing(0);
  model::KvCache cache(pool);
  std::vector<float> logits;
  const Status refused =
      text.Forward(engine_->compute(), embeds.data(), ids.size(), cache, false, &logits);
  EXPECT_EQ(refused.code(), ErrorCode::kResourceExhausted) << refused.ToString();
  EXPECT_NE(refused.message().find("no memory"), std::string::npos) << refused.ToString();
  EXPECT_EQ(cache.length(), 0u);
  EXPECT_TRUE(logits.empty());
  pool->set_slab_limit_for_testing(1);
  ASSERT_TRUE(
      text.Forward(engine_->compute(), embeds.data(), ids.size(), cache, false, &logits).ok());
  EXPECT_EQ(cache.length(), ids.size());
  EXPECT_EQ(logits.size(), static_cast<size_t>(text.vocab_size()));
}

TEST_F(EngineTest, BadInputIsAnError) {
  GenerateOptions o;
  EXPECT_FALSE(engine_->Generate({}, o).ok());
  std::vector<int32_t> bad = {1, 100000};
  auto r = engine_->Generate(bad, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("100000"), std::string::npos);
  o.sampling.temperature = -1;
  EXPECT_FALSE(engine_->Generate(Prompt(), o).ok());
  std::vector<int32_t> too_long(9000, 5);
  GenerateOptions ok_opts;
  auto lr = engine_->Generate(too_long, ok_opts);
  ASSERT_FALSE(lr.ok());
  EXPECT_EQ(lr.status().code(), ErrorCode::kOutOfRange);
}

TEST_F(EngineTest, ImagesAndVideosShareAPromptInPlaceholderOrder) {
  const media::ImageProcessorConfig* config = engine_->image_config();
  ASSERT_NE(config, nullptr);
  media::Image image;
  image.width = 40;
  image.height = 30;
  image.rgb.assign(40 * 30 * 3, 128);
  auto pixels = engine_->PreprocessImage(image);
  ASSERT_TRUE(pixels.ok()) << pixels.status().ToString();
  Visual picture;
  picture.pixels = *pixels;
  Visual clip;
  clip.is_video = true;
  auto frames = media::PreprocessVideoFrames({image, image}, *config);
  ASSERT_TRUE(frames.ok()) << frames.status().ToString();
  clip.pixels = *frames;
  clip.frame_indices = {0, 1};
  clip.fps = 1.0;
  clip.duration = 2.0;
  const int n = engine_->vision_model()->tokens_per_tile();
  const std::string text = "<|im_start|>User: <video>and<image>?<end_of_utterance>\nAssistant:";
  std::vector<Visual> visuals = {clip, picture};
  auto ids = engine_->TokenizePrompt(text, visuals);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  const std::string want = "<|im_start|>User: " + media::ExpandVideoPrompt({0, 1}, 1.0, 2.0, n) +
                           "and" +
                           media::ExpandImagePrompt(picture.pixels.rows, picture.pixels.cols, n) +
                           "?<end_of_utterance>\nAssistant:";
  EXPECT_EQ(*ids, engine_->tokenizer().Encode(want));
  GenerateOptions o;
  o.max_tokens = 2;
  auto r = engine_->Generate(*ids, o, {}, visuals);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->image_tiles, 2u + static_cast<size_t>(picture.pixels.num_tiles));
  // Placeholders and visuals must agree in kind and number.
  std::vector<Visual> swapped = {picture, clip};
  EXPECT_FALSE(engine_->TokenizePrompt(text, swapped).ok());
  std::vector<Visual> one = {clip};
  EXPECT_FALSE(engine_->TokenizePrompt(text, one).ok());
  EXPECT_FALSE(engine_->Generate(*ids, o, {}, one).ok());  // <image> tokens without features
}

TEST(EngineLoadTest, MissingDirectory) {
  auto e = Engine::Load("/nonexistent/dir", {});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace iris::runtime

// Continuous batching on the tiny fixture model: every golden case (text, one image, a split
// image, two images, a video) run together, in odd prefill chunks, with shared prefixes and
// cached image features, gives the tokens it gives alone and logits within 1e-5; alone, the
// golden tokens and logits of Hugging Face. Plus the step budget (prompts and image tiles in
// slices while others decode), the KV pool's budget, the queue bound,
// cancellation and the caches' counters.
#include "engine/runtime/scheduler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>

#include "base/json.h"
#include "engine/formats/safetensors.h"
#include "engine/kernels/kernels.h"

namespace iris::runtime {
namespace {

const std::string kModel = std::string(IRIS_TEST_DATA_DIR) + "/smolvlm2/tiny-256m-style";

struct Case {
  std::string name;
  std::vector<int32_t> prompt;
  std::vector<Visual> visuals;
  std::vector<int32_t> golden_tokens;
  std::vector<float> golden_step_logits;  // [tokens, vocab]
};

std::vector<int32_t> Ids(const tensor::TensorView& v) {
  std::vector<int32_t> ids(static_cast<size_t>(v.num_elements()));
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<int32_t>(static_cast<const int64_t*>(v.data)[i]);
  }
  return ids;
}

struct Outcome {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;  // per sampled token
  std::string text, streamed;
  std::string finish_reason;
  Status status;
  bool done = false;
};

class SchedulerTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    EngineOptions o;
    o.threads = 2;
    auto e = Engine::Load(kModel, o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e).release();
    auto goldens = formats::WeightStore::OpenFiles({kModel + "/goldens.safetensors"});
    ASSERT_TRUE(goldens.ok());
    auto meta = ReadJsonFile(kModel + "/goldens.json");
    ASSERT_TRUE(meta.ok());
    cases_ = new std::vector<Case>();
    for (const auto& [key, value] : meta->as_object().at("cases").as_object()) {
      (void)value;
      Case c;
      c.name = std::string(key);
      c.prompt = Ids(goldens->Get(c.name + ".input_ids")->view);
      c.golden_tokens = Ids(goldens->Get(c.name + ".generated_ids")->view);
      const tensor::TensorView sl = goldens->Get(c.name + ".generation_step_logits")->view;
      c.golden_step_logits.resize(static_cast<size_t>(sl.num_elements()));
      for (size_t i = 0; i < c.golden_step_logits.size(); ++i) {
        c.golden_step_logits[i] = sl.GetF32(static_cast<int64_t>(i));
      }
      if (goldens->Has(c.name + ".pixel_values")) {
        // All of a case's tiles as one visual: the features fill its image tokens in order.
        const tensor::TensorView pv = goldens->Get(c.name + ".pixel_values")->view;
        Visual v;
        v.pixels.num_tiles = static_cast<int>(pv.shape[1]);
        v.pixels.tile_size = static_cast<int>(pv.shape[3]);
        const auto* p = static_cast<const float*>(pv.data);
        v.pixels.pixel_values.assign(p, p + pv.num_elements());
        c.visuals.push_back(std::move(v));
      }
      cases_->push_back(std::move(c));
    }
    ASSERT_EQ(cases_->size(), 5u);
  }
  static void TearDownTestSuite() {
    delete engine_;
    delete cases_;
  }

  // A request for `c` whose outcome lands in `out`.
  static SequenceRequest Request(const Case& c, Outcome& out, size_t max_tokens = 0) {
    SequenceRequest r;
    r.prompt = c.prompt;
    r.visuals = c.visuals;
    r.options.max_tokens = static_cast<int>(max_tokens ? max_tokens : c.golden_tokens.size());
    r.options.stop_at_eos = false;
    r.on_text = [&out](std::string_view s) {
      out.streamed += s;
      return true;
    };
    r.on_logits = [&out](std::span<const float> l) { out.logits.emplace_back(l.begin(), l.end()); };
    r.on_done = [&out](Result<GenerateResult> res) {
      out.done = true;
      if (!res.ok()) {
        out.status = res.status();
        return;
      }
      out.tokens = res->tokens;
      out.text = res->text;
      out.finish_reason = res->finish_reason;
    };
    return r;
  }

  static void RunToEnd(Scheduler& s) {
    for (int guard = 0; !s.idle(); ++guard) {
      ASSERT_LT(guard, 100000);
      s.Step();
    }
  }

  static Engine* engine_;
  static std::vector<Case>* cases_;
};
Engine* SchedulerTest::engine_ = nullptr;
std::vector<Case>* SchedulerTest::cases_ = nullptr;

// max |a - b| / max |a| over two logits rows.
double RelativeError(const std::vector<float>& a, const std::vector<float>& b) {
  double scale = 0, err = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::fabs(static_cast<double>(a[i])));
    err = std::max(err, std::fabs(static_cast<double>(a[i]) - b[i]));
  }
  return err / scale;
}

// Every case alone, then all together twice (sharing prefixes and image features, prompts in
// chunks that interleave with decoding), with keys and values kept as `kv_dtype`: together
// gives what alone gives. Alone is held to Hugging Face's logits within `golden_tolerance`
// (relative to the largest golden logit), and to its greedy tokens when `exact_tokens`.
void CheckMixedBatch(Engine& engine, const std::vector<Case>& cases, tensor::DType kv_dtype,
                     double golden_tolerance, bool exact_tokens, size_t prefill_chunk = 7) {
  auto pool = [&] { return engine.text_model().NewPool(0, kv_dtype); };
  // Alone: one sequence at a time, the whole prompt in one chunk, no caches.
  std::map<std::string, Outcome> alone;
  {
    SchedulerOptions o;
    o.max_batch = 1;
    o.prefill_chunk = SIZE_MAX;
    o.prefix_cache = false;
    o.image_cache_bytes = 0;
    Scheduler s(engine, pool(), o);
    for (const Case& c : cases) {
      ASSERT_TRUE(s.Add(SchedulerTest::Request(c, alone[c.name])).ok());
      SchedulerTest::RunToEnd(s);
    }
  }
  const size_t vocab = static_cast<size_t>(engine.text_model().vocab_size());
  for (const Case& c : cases) {
    const Outcome& a = alone[c.name];
    ASSERT_TRUE(a.done && a.status.ok()) << c.name << ": " << a.status.ToString();
    if (exact_tokens) {
      EXPECT_EQ(a.tokens, c.golden_tokens) << c.name;  // Hugging Face's greedy tokens
    }
    ASSERT_EQ(a.logits.size(), c.golden_tokens.size());
    double max_golden = 0, max_err = 0;
    // Logits are compared while the answer follows the golden one (after a different token
    // the rows are not comparable).
    for (size_t t = 0; t < a.logits.size(); ++t) {
      for (size_t i = 0; i < vocab; ++i) {
        const double g = c.golden_step_logits[t * vocab + i];
        max_golden = std::max(max_golden, std::fabs(g));
        max_err = std::max(max_err, std::fabs(g - a.logits[t][i]));
      }
      if (a.tokens[t] != c.golden_tokens[t]) break;
    }
    EXPECT_LE(max_err, golden_tolerance * max_golden) << c.name;
    EXPECT_EQ(a.streamed, a.text) << c.name;
  }

  // Together: every case twice (the second shares the first's prefix and image features),
  // prompts in chunks (of 7) so prefills interleave with decoding.
  SchedulerOptions o;
  o.max_batch = 8;
  o.prefill_chunk = prefill_chunk;
  Scheduler s(engine, pool(), o);
  std::map<std::string, Outcome> first, second;
  for (const Case& c : cases) ASSERT_TRUE(s.Add(SchedulerTest::Request(c, first[c.name])).ok());
  // Let the first copies start before the second ones arrive.
  for (int i = 0; i < 40; ++i) s.Step();
  for (const Case& c : cases) ASSERT_TRUE(s.Add(SchedulerTest::Request(c, second[c.name])).ok());
  SchedulerTest::RunToEnd(s);
  for (const Case& c : cases) {
    for (const Outcome* b : {&first[c.name], &second[c.name]}) {
      ASSERT_TRUE(b->done && b->status.ok()) << c.name << ": " << b->status.ToString();
      EXPECT_EQ(b->tokens, alone[c.name].tokens) << c.name;
      EXPECT_EQ(b->text, alone[c.name].text) << c.name;
      ASSERT_EQ(b->logits.size(), alone[c.name].logits.size());
      for (size_t t = 0; t < b->logits.size(); ++t) {
        EXPECT_LE(RelativeError(alone[c.name].logits[t], b->logits[t]), 1e-5)
            << c.name << " token " << t;
      }
    }
  }
  const SchedulerStats st = s.stats();
  EXPECT_GT(st.prefix_hit_tokens, 0);
  EXPECT_GE(st.image_cache_hits, 1);
  EXPECT_EQ(st.running, 0u);
}

TEST_F(SchedulerTest, AMixedBatchGivesWhatEachRequestGivesAlone) {
  CheckMixedBatch(*engine_, *cases_, tensor::DType::kF32, 1e-4, true);
}

TEST_F(SchedulerTest, AnF16CacheStaysNearTheGoldensAndBatchesAsExactlyAsF32) {
  // Keys and values rounded to f16 (11 significant bits) move the logits by 3–7e-4, about
  // 2e-4 of the largest golden logit here (iris verify --kv-cache-dtype f16); batching must
  // still change nothing beyond f32 rounding.
  CheckMixedBatch(*engine_, *cases_, tensor::DType::kF16, 2e-3, false);
}

TEST_F(SchedulerTest, Bf16ProductsBatchAsExactlyAsF32) {
  // `--compute bf16` moves the logits by about 1e-2 (iris verify --compute bf16) and can turn
  // a near tie; its matrices, packed at load, sum alike in steps of any size, so together still
  // gives what alone gives. Chunks of 40 make steps of fewer and of more than 32 rows.
  if (!kernels::Bf16ProductsAvailable()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
  EngineOptions options;
  options.threads = 2;
  options.compute = "bf16";
  auto e = Engine::Load(kModel, options);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  CheckMixedBatch(**e, *cases_, tensor::DType::kF32, 5e-3, false, 40);
}

TEST_F(SchedulerTest, ABudgetedPoolQueuesWhatDoesNotFitAndRefusesWhatNeverWill) {
  const Case* plain = nullptr;
  for (const Case& c : *cases_) {
    if (c.visuals.empty()) plain = &c;
  }
  ASSERT_NE(plain, nullptr);
  // Room for one sequence of prompt + 8 tokens at a time, no cached prefixes.
  const size_t blocks =
      (plain->prompt.size() + 8 + model::KvPool::kBlockTokens - 1) / model::KvPool::kBlockTokens;
  auto pool = engine_->text_model().NewPool(blocks);
  SchedulerOptions o;
  o.max_batch = 4;
  o.max_queue = 2;
  o.prefix_cache = false;
  Scheduler s(*engine_, pool, o);
  Outcome a, b, c;
  ASSERT_TRUE(s.Add(Request(*plain, a, 8)).ok());
  ASSERT_TRUE(s.Add(Request(*plain, b, 8)).ok());
  Outcome full;
  // The queue holds two; a third waiting request is refused.
  Status refused = s.Add(Request(*plain, full, 8));
  EXPECT_EQ(refused.code(), ErrorCode::kResourceExhausted) << refused.ToString();
  s.Step();
  EXPECT_EQ(s.stats().running, 1u);  // the second waits for the first's blocks
  EXPECT_EQ(s.stats().waiting, 1u);
  ASSERT_TRUE(s.Add(Request(*plain, c, 8)).ok());
  RunToEnd(s);
  for (const Outcome* x : {&a, &b, &c}) {
    ASSERT_TRUE(x->done && x->status.ok()) << x->status.ToString();
    EXPECT_EQ(x->tokens, a.tokens);
  }
  EXPECT_EQ(pool->in_use(), 0u);
  // A prompt longer than the whole pool can never run.
  SequenceRequest huge;
  huge.prompt.assign(blocks * model::KvPool::kBlockTokens + 1, 5);
  EXPECT_EQ(s.Add(std::move(huge)).code(), ErrorCode::kOutOfRange);
  // A long answer is cut to the room the pool has.
  Outcome cut;
  ASSERT_TRUE(s.Add(Request(*plain, cut, 1000)).ok());
  RunToEnd(s);
  EXPECT_EQ(cut.finish_reason, "length");
  EXPECT_EQ(cut.tokens.size(), blocks * model::KvPool::kBlockTokens - plain->prompt.size());
}

// When the machine gives no memory for the keys and values (a new slab refused) a request
// waits while others run and will free theirs, and is refused (unavailable) when none run;
// the process and the other requests go on.
TEST_F(SchedulerTest, MemoryThatCannotBeHadQueuesOrRefusesARequest) {
  const Case* plain = nullptr;
  for (const Case& c : *cases_) {
    if (c.visuals.empty()) plain = &c;
  }
  ASSERT_NE(plain, nullptr);
  auto pool = engine_->text_model().NewPool();  // no budget: only the memory limits it
  pool->set_slab_limit_for_testing(0);
  SchedulerOptions o;
  o.prefix_cache = false;
  Scheduler s(*engine_, pool, o);
  Outcome none;
  ASSERT_TRUE(s.Add(Request(*plain, none, 8)).ok());
  RunToEnd(s);
  ASSERT_TRUE(none.done);
  EXPECT_EQ(none.status.code(), ErrorCode::kUnavailable) << none.status.ToString();
  EXPECT_NE(none.status.message().find("no memory"), std::string::npos);
  // One slab: the first request fits, the second needs more than the rest of it.
  pool->set_slab_limit_for_testing(1);
  const size_t per_slab = model::KvPool::SlabBlocks(pool->block_bytes());
  const size_t first =
      (plain->prompt.size() + 8 + model::KvPool::kBlockTokens - 1) / model::KvPool::kBlockTokens;
  const size_t second_tokens =
      (per_slab - first + 1) * model::KvPool::kBlockTokens - plain->prompt.size();
  Outcome a, b;
  ASSERT_TRUE(s.Add(Request(*plain, a, 8)).ok());
  ASSERT_TRUE(s.Add(Request(*plain, b, second_tokens)).ok());
  s.Step();
  EXPECT_EQ(s.stats().running, 1u);  // the second waits for the first's blocks
  EXPECT_EQ(s.stats().waiting, 1u);
  RunToEnd(s);
  ASSERT_TRUE(a.done && a.status.ok()) << a.status.ToString();
  ASSERT_TRUE(b.done && b.status.ok()) << b.status.ToString();
  EXPECT_EQ(b.tokens.size(), second_tokens);
  EXPECT_EQ(pool->in_use(), 0u);
}

// With the prefix cache on, the blocks it keeps give way before a request is refused.
TEST_F(SchedulerTest, MemoryThatCannotBeHadTakesBackCachedPrefixesFirst) {
  const Case* longest = &(*cases_)[0];
  const Case* plain = nullptr;
  for (const Case& c : *cases_) {
    if (c.prompt.size() > longest->prompt.size()) longest = &c;
    if (c.visuals.empty()) plain = &c;
  }
  ASSERT_NE(plain, nullptr);
  ASSERT_LT(plain->prompt.size(), model::KvPool::kBlockTokens);  // shares no block
  auto pool = engine_->text_model().NewPool();
  pool->set_slab_limit_for_testing(1);
  SchedulerOptions o;
  Scheduler s(*engine_, pool, o);
  Outcome a;
  ASSERT_TRUE(s.Add(Request(*longest, a, 8)).ok());
  RunToEnd(s);
  ASSERT_TRUE(a.done && a.status.ok()) << a.status.ToString();
  const size_t cached = pool->in_use();  // the prompt's full blocks, kept for reuse
  ASSERT_GT(cached, 0u);
  // A request that needs one block more than the slab has free.
  const size_t per_slab = model::KvPool::SlabBlocks(pool->block_bytes());
  const size_t answer =
      (per_slab - cached + 1) * model::KvPool::kBlockTokens - plain->prompt.size();
  Outcome b;
  ASSERT_TRUE(s.Add(Request(*plain, b, answer)).ok());
  RunToEnd(s);
  ASSERT_TRUE(b.done && b.status.ok()) << b.status.ToString();
  EXPECT_EQ(b.tokens.size(), answer);
  EXPECT_LT(pool->in_use(), cached);  // what was evicted is gone from the cache
}

TEST_F(SchedulerTest, ACallerThatLeavesFreesItsBlocksAtTheNextStep) {
  const Case& c = (*cases_)[0];
  auto pool = engine_->text_model().NewPool();
  SchedulerOptions o;
  o.prefix_cache = false;
  Scheduler s(*engine_, pool, o);
  Outcome gone, stays;
  bool left = false;
  SequenceRequest r = Request(c, gone, 50);
  r.cancelled = [&left] { return left; };
  ASSERT_TRUE(s.Add(std::move(r)).ok());
  ASSERT_TRUE(s.Add(Request(c, stays, 50)).ok());
  while (gone.tokens.empty() && gone.logits.size() < 3) s.Step();
  const size_t held = pool->in_use();
  left = true;
  s.Step();
  EXPECT_TRUE(gone.done);
  EXPECT_LT(pool->in_use(), held);
  EXPECT_FALSE(stays.done);
  RunToEnd(s);
  EXPECT_EQ(stays.tokens.size(), 50u);
  EXPECT_EQ(pool->in_use(), 0u);
  // A stream callback that returns false ends the sequence too.
  Outcome stop;
  SequenceRequest r2 = Request(c, stop, 50);
  int pieces = 0;
  r2.on_text = [&pieces](std::string_view) { return ++pieces < 2; };
  ASSERT_TRUE(s.Add(std::move(r2)).ok());
  RunToEnd(s);
  EXPECT_LT(stop.tokens.size(), 50u);
  EXPECT_EQ(pool->in_use(), 0u);
}

TEST_F(SchedulerTest, ALongPromptPrefillsInSlicesWhileOthersDecode) {
  const Case& c = (*cases_)[0];
  SchedulerOptions o;
  o.prefix_cache = false;
  o.step_tokens = 12;
  o.min_prefill = 4;
  Scheduler s(*engine_, engine_->text_model().NewPool(), o);
  Outcome first, second;
  ASSERT_TRUE(s.Add(Request(c, first, 40)).ok());
  // Alone, a prompt is prefilled in one step (up to prefill_chunk).
  EXPECT_EQ(s.Step(), c.prompt.size());
  ASSERT_EQ(first.logits.size(), 1u);
  Case longer = c;
  while (longer.prompt.size() < 60) {
    longer.prompt.insert(longer.prompt.end(), c.prompt.begin(), c.prompt.end());
  }
  ASSERT_TRUE(s.Add(Request(longer, second, 5)).ok());
  size_t steps = 0, prefilled = 0;
  while (second.logits.empty()) {
    const size_t rows = s.Step();
    ASSERT_LE(rows, o.step_tokens) << "step " << steps;
    ASSERT_GE(rows, 2u) << "step " << steps;  // the decoder and a chunk
    prefilled += rows - 1;
    ++steps;
  }
  EXPECT_EQ(prefilled, longer.prompt.size());
  EXPECT_EQ(steps, (longer.prompt.size() + 10) / 11);  // 11 prompt rows beside one decoder
  EXPECT_EQ(first.logits.size(), 1 + steps);           // the first answer never waited
  RunToEnd(s);
  EXPECT_EQ(first.tokens.size(), 40u);
  EXPECT_EQ(second.tokens.size(), 5u);
}

TEST_F(SchedulerTest, AnImageGoesThroughTheTowerALayerAtATimeWhileOthersDecode) {
  const Case* text = nullptr;
  const Case* image = nullptr;
  for (const Case& c : *cases_) {
    if (c.visuals.empty() && !text) text = &c;
    if (c.visuals.size() == 1 && !image) image = &c;
  }
  ASSERT_TRUE(text && image);
  const size_t layers = engine_->vision_model()->num_layers();
  const size_t tiles = static_cast<size_t>(image->visuals[0].pixels.num_tiles);
  SchedulerOptions o;
  o.prefix_cache = false;
  o.image_cache_bytes = 0;
  Scheduler s(*engine_, engine_->text_model().NewPool(), o);
  Outcome decoding, looking, alone;
  ASSERT_TRUE(s.Add(Request(*text, decoding, 500)).ok());
  s.Step();
  ASSERT_TRUE(s.Add(Request(*image, looking, 3)).ok());
  size_t steps = 0;
  while (looking.logits.empty()) {
    s.Step();
    ++steps;
    ASSERT_LT(steps, 100000u);
  }
  // One layer per step: the tower's work spread over tiles × layers steps, each of which
  // also gave the text answer its next token; then the image prompt's prefill in chunks that
  // fill the step beside the one decoder (the first in the step that finishes the tower).
  const size_t room = o.step_tokens - 1;
  EXPECT_EQ(steps, tiles * layers + (image->prompt.size() + room - 1) / room - 1);
  EXPECT_EQ(decoding.logits.size(), 1 + steps);
  RunToEnd(s);
  // The image answer is the one it gives alone (whole tiles at once).
  Scheduler solo(*engine_, engine_->text_model().NewPool(), o);
  ASSERT_TRUE(solo.Add(Request(*image, alone, 3)).ok());
  RunToEnd(solo);
  EXPECT_EQ(looking.tokens, alone.tokens);
  ASSERT_EQ(looking.logits.size(), alone.logits.size());
  for (size_t i = 0; i < alone.logits.size(); ++i) {
    EXPECT_LT(RelativeError(looking.logits[i], alone.logits[i]), 1e-5) << "token " << i;
  }
}

TEST_F(SchedulerTest, BadRequestsAreRefusedBeforeTheyQueue) {
  Scheduler s(*engine_, engine_->text_model().NewPool(), {});
  SequenceRequest empty;
  EXPECT_EQ(s.Add(std::move(empty)).code(), ErrorCode::kInvalidArgument);
  SequenceRequest bad_id;
  bad_id.prompt = {1, 100000};
  EXPECT_EQ(s.Add(std::move(bad_id)).code(), ErrorCode::kInvalidArgument);
  // Image tokens without features, and features without image tokens.
  const Case* image = nullptr;
  for (const Case& c : *cases_) {
    if (!c.visuals.empty()) image = &c;
  }
  ASSERT_NE(image, nullptr);
  SequenceRequest no_pixels;
  no_pixels.prompt = image->prompt;
  EXPECT_EQ(s.Add(std::move(no_pixels)).code(), ErrorCode::kInvalidArgument);
  SequenceRequest no_tokens;
  no_tokens.prompt = {1, 2, 3};
  no_tokens.visuals = image->visuals;
  EXPECT_EQ(s.Add(std::move(no_tokens)).code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(s.idle());
}

TEST(KvPoolTest, SlabsFillTheirHugePagesAndHoldEveryBlockApart) {
  // 256M's shape (30 layers, 3 kv heads of 64, f32): 720 KiB blocks, 34 to a 24 MiB slab.
  const size_t bytes = model::KvPool::BlockBytes(30, 3 * 64, tensor::DType::kF32);
  EXPECT_EQ(bytes, 720u << 10);
  EXPECT_EQ(model::KvPool::SlabBlocks(bytes), 34u);
  EXPECT_EQ(model::KvPool::SlabBlocks(6u << 20), 32u);   // 2.2B's: 192 MiB, whole pages
  EXPECT_EQ(model::KvPool::SlabBlocks(32u << 10), 64u);  // small blocks: one 2 MiB page
  EXPECT_EQ(model::KvPool::SlabBlocks(3u << 20), 32u);
  model::KvPool pool(30, 3, 64, 0);
  ASSERT_EQ(pool.block_bytes(), bytes);
  // Three slabs' worth: every block's bytes get their own value, and keep it.
  std::vector<int32_t> blocks;
  for (int i = 0; i < 70; ++i) {
    auto b = pool.Allocate();
    ASSERT_TRUE(b.has_value());
    blocks.push_back(*b);
    std::memset(pool.keys(*b, 0), i + 1, bytes);
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    const auto* p = static_cast<const unsigned char*>(pool.keys(blocks[i], 0));
    ASSERT_EQ(p[0], i + 1) << "block " << i;
    ASSERT_EQ(p[bytes - 1], i + 1) << "block " << i;
    // Layer 29's values end the block.
    EXPECT_EQ(static_cast<const unsigned char*>(pool.values(blocks[i], 29)) +
                  model::KvPool::kBlockTokens * 3 * 64 * sizeof(float),
              p + bytes);
    if (blocks[i] % 34 == 0) {  // a slab's first block starts a huge page
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (2u << 20), 0u) << "block " << blocks[i];
    }
  }
}

TEST(KvPoolTest, SharedBlocksAreCopiedBeforeTheyAreWritten) {
  for (const tensor::DType dtype : {tensor::DType::kF32, tensor::DType::kF16}) {
    SCOPED_TRACE(std::string(tensor::DTypeName(dtype)));
    // Two layers of 2 kv heads × 2 dims: a row's value 2 is head 1's first.
    auto pool = std::make_shared<model::KvPool>(2, 2, 2, 3, dtype);
    EXPECT_EQ(pool->block_bytes(),
              2 * 2 * model::KvPool::kBlockTokens * 4 * tensor::DTypeSize(dtype));
    auto row = [](float x) { return std::vector<float>{0, 0, x, 0}; };
    model::KvCache a(pool);
    ASSERT_TRUE(a.Reserve(model::KvPool::kBlockTokens));
    ASSERT_TRUE(a.PrepareAppend(model::KvPool::kBlockTokens));
    for (size_t p = 0; p < model::KvPool::kBlockTokens; ++p) {
      a.Write(1, p, row(static_cast<float>(p)).data(), row(100.0f + static_cast<float>(p)).data());
    }
    a.set_length(model::KvPool::kBlockTokens);
    model::KvCache b(pool);
    b.AdoptPrefix(a.blocks());
    EXPECT_EQ(pool->in_use(), 1u);
    EXPECT_EQ(b.length(), model::KvPool::kBlockTokens);
    b.Truncate(4);  // b rewrites positions 4.. of the shared block: it gets its own copy
    ASSERT_TRUE(b.PrepareAppend(2));
    EXPECT_EQ(pool->in_use(), 2u);
    EXPECT_NE(a.blocks()[0], b.blocks()[0]);
    b.Write(1, 4, row(-1).data(), row(-2).data());
    // Value i of layer 1's position p, in the block layout: head by head, 16 rows of 2 each
    // (f16 values widened; these are exact in f16).
    auto at = [&](const void* block, size_t p, size_t i) {
      const size_t k = i / 2 * model::KvPool::kBlockTokens * 2 + p * 2 + i % 2;
      return dtype == tensor::DType::kF16 ? tensor::F16ToF32(static_cast<const uint16_t*>(block)[k])
                                          : static_cast<const float*>(block)[k];
    };
    EXPECT_EQ(at(pool->keys(a.blocks()[0], 1), 4, 2), 4.0f);
    std::vector<const void*> kb, vb;
    b.BlockRows(1, 5, kb, vb);  // in place: b's own block
    ASSERT_EQ(kb.size(), 1u);
    EXPECT_EQ(kb[0], pool->keys(b.blocks()[0], 1));
    EXPECT_EQ(vb[0], pool->values(b.blocks()[0], 1));
    EXPECT_EQ(at(kb[0], 3, 2), 3.0f);  // the copy kept what came before
    EXPECT_EQ(at(vb[0], 3, 2), 103.0f);
    EXPECT_EQ(at(kb[0], 4, 2), -1.0f);
    EXPECT_EQ(at(vb[0], 4, 2), -2.0f);
    EXPECT_EQ(at(kb[0], 4, 0), 0.0f);
    // The budget: three blocks in all.
    model::KvCache c(pool);
    EXPECT_TRUE(c.Reserve(model::KvPool::kBlockTokens));
    EXPECT_FALSE(c.Reserve(2 * model::KvPool::kBlockTokens));
    EXPECT_EQ(pool->available(), 0u);
    c.Clear();
    b = model::KvCache(pool);
    EXPECT_EQ(pool->in_use(), 1u);
  }
}

// Memory the machine will not give (mmap refused) is a block the pool does not have: a
// reservation that needs a new slab fails and gives back what it took; the process goes on.
TEST(KvPoolTest, MemoryThatCannotBeHadFailsAReservationAndKeepsWhatIsHeld) {
  auto pool = std::make_shared<model::KvPool>(1, 1, 4, 0);  // unbounded
  const size_t per_slab = model::KvPool::SlabBlocks(pool->block_bytes());
  pool->set_slab_limit_for_testing(1);
  model::KvCache a(pool);
  ASSERT_TRUE(a.Reserve((per_slab - 2) * model::KvPool::kBlockTokens));
  model::KvCache b(pool);
  EXPECT_FALSE(b.Reserve(3 * model::KvPool::kBlockTokens));  // two left, three wanted
  EXPECT_EQ(pool->in_use(), per_slab - 2);
  EXPECT_TRUE(b.blocks().empty());
  EXPECT_TRUE(b.Reserve(2 * model::KvPool::kBlockTokens));
  a.Clear();  // freed blocks are memory the pool has
  EXPECT_TRUE(b.Reserve(per_slab * model::KvPool::kBlockTokens));
  EXPECT_EQ(pool->in_use(), per_slab);
}

// The same with the kernel's own refusal: a slab larger than this machine's memory (skipped
// where the kernel maps whatever is asked, vm.overcommit_memory = 1).
TEST(KvPoolTest, ASlabTheKernelRefusesIsNoBlock) {
  std::ifstream overcommit("/proc/sys/vm/overcommit_memory");
  int mode = -1;
  overcommit >> mode;
  if (mode == 1) GTEST_SKIP() << "the kernel maps any size here";
  // One block of 1 layer × 1 head × 2^31 dims is 256 GiB; a slab of 32 of them, 8 TiB.
  model::KvPool pool(1, 1, size_t{1} << 31, 0);
  EXPECT_FALSE(pool.Allocate().has_value());
  EXPECT_EQ(pool.in_use(), 0u);
}

}  // namespace
}  // namespace iris::runtime

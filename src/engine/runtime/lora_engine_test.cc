// LoRA adapters on the golden tiny checkpoints: an adapter applied on the fly gives the logits
// of the checkpoint with the adapter merged into its weights (MergeLora), for text, single and
// split images and two images, at several ranks; sequences with different adapters (and none)
// batched together give what each gives alone; a damaged or foreign adapter is refused by name.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "base/json.h"
#include "base/test_data.h"
#include "engine/formats/safetensors.h"
#include "engine/model/lora.h"
#include "engine/runtime/engine.h"
#include "engine/runtime/scheduler.h"

// (Designated initializers name only what a case changes; GCC 12 warns about the rest.)
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace iris::runtime {
namespace {

namespace fs = std::filesystem;

struct AdapterSpec {
  int rank = 4;
  double alpha = 8;
  bool rslora = false;
  uint32_t seed = 1;
  bool vision = true;          // also adapt the tower and connector
  bool embeddings = false;     // lora_embedding_A/B on embed_tokens
  bool whole_lm_head = false;  // modules_to_save: lm_head
  bool lm_head = true;         // LoRA on lm_head
  tensor::DType dtype = tensor::DType::kF32;
  std::string extra_config;  // more adapter_config.json members (",\"k\": v")
};

std::string Bytes(const std::vector<float>& v, tensor::DType dtype) {
  std::string out;
  if (dtype == tensor::DType::kF32) {
    out.assign(reinterpret_cast<const char*>(v.data()), v.size() * 4);
    return out;
  }
  for (float f : v) {  // bf16, rounded to nearest even
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1);
    const uint16_t h = static_cast<uint16_t>(u >> 16);
    out.append(reinterpret_cast<const char*>(&h), 2);
  }
  return out;
}

// A random adapter of every adaptable layer of `model_dir`, named as PEFT saves them.
void WriteAdapter(const std::string& model_dir, const std::string& dir, const AdapterSpec& spec) {
  auto store = formats::WeightStore::OpenDir(model_dir);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::mt19937 rng(spec.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<formats::TensorToWrite> tensors;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float stddev) {
    std::vector<float> v(static_cast<size_t>(shape[0] * shape[1]));
    for (float& x : v) x = normal(rng) * stddev;
    tensors.push_back({name, spec.dtype, std::move(shape), Bytes(v, spec.dtype)});
  };
  const int64_t r = spec.rank;
  for (const auto& [name, entry] : store->entries()) {
    model::LoraModule where;
    if (!model::FindLoraModule(name, &where)) continue;
    const bool vision =
        where.site >= model::LoraSite::kVisionQ && where.site <= model::LoraSite::kConnector;
    if (vision && !spec.vision) continue;
    const std::string module = "base_model.model." + name.substr(0, name.size() - 7);
    const int64_t out = entry.view.shape[0], in = entry.view.shape[1];
    if (where.site == model::LoraSite::kEmbed) {
      if (!spec.embeddings) continue;
      // [vocab, dim]: A [r, vocab], B [dim, r].
      add(module + ".lora_embedding_A", {r, out}, 1.0f);
      add(module + ".lora_embedding_B", {in, r}, 0.02f);
      continue;
    }
    if (where.site == model::LoraSite::kLmHead && !spec.lm_head && !spec.whole_lm_head) continue;
    if (where.site == model::LoraSite::kLmHead && spec.whole_lm_head) {
      add(module + ".weight", {out, in}, 0.05f);
      continue;
    }
    add(module + ".lora_A.weight", {r, in}, 1.0f / std::sqrt(static_cast<float>(in)));
    add(module + ".lora_B.weight", {out, r}, 0.05f);
  }
  fs::create_directories(dir);
  ASSERT_TRUE(formats::WriteSafetensors(dir + "/adapter_model.safetensors", tensors).ok());
  std::ofstream(dir + "/adapter_config.json")
      << "{\"peft_type\": \"LORA\", \"r\": " << spec.rank << ", \"lora_alpha\": " << spec.alpha
      << ", \"use_rslora\": " << (spec.rslora ? "true" : "false")
      << ", \"target_modules\": [\"q_proj\", \"k_proj\", \"v_proj\", \"o_proj\"], \"bias\": "
         "\"none\", \"use_dora\": false"
      << spec.extra_config << "}";
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("iris-lora-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& rel) const { return (path_ / rel).string(); }

 private:
  fs::path path_;
  static inline int counter_ = 0;
};

struct Prompt {
  std::string name;
  std::vector<int32_t> ids;
  std::vector<Visual> visuals;
};

std::vector<Prompt> Prompts(Engine& e) {
  std::vector<Prompt> out;
  auto image = [&](const char* file) {
    auto v = e.LoadImage(TestData(std::string("smolvlm2/images/") + file));
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return *v;
  };
  auto add = [&](const std::string& name, const std::string& text, std::vector<Visual> visuals) {
    auto ids = e.TokenizePrompt(text, visuals);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    out.push_back({name, *ids, std::move(visuals)});
  };
  add("text", "<|im_start|>User: Name three colours.<end_of_utterance>\nAssistant:", {});
  add("image",
      "<|im_start|>User:<image>What is this?<end_of_utterance>\nAssistant:", {image("small.png")});
  add("split",
      "<|im_start|>User:<image>Describe it.<end_of_utterance>\nAssistant:", {image("split.png")});
  add("two", "<|im_start|>User:<image><image>Same?<end_of_utterance>\nAssistant:",
      {image("two_a.png"), image("two_b.png")});
  return out;
}

// Every logits row a greedy generation samples from (the prompt's last, then each step's).
std::vector<std::vector<float>> Logits(Engine& e, const Prompt& p,
                                       std::shared_ptr<const model::LoraAdapter> adapter,
                                       int tokens = 5) {
  std::vector<std::vector<float>> rows;
  SchedulerOptions so;
  so.prefix_cache = false;
  so.image_cache_bytes = 0;
  Scheduler s(e, e.text_model().NewPool(), so);
  SequenceRequest r;
  r.prompt = p.ids;
  r.visuals = p.visuals;
  r.options.max_tokens = tokens;
  r.options.stop_at_eos = false;
  r.options.adapter = std::move(adapter);
  r.on_logits = [&](std::span<const float> l) { rows.emplace_back(l.begin(), l.end()); };
  bool done = false;
  r.on_done = [&](Result<GenerateResult> res) {
    EXPECT_TRUE(res.ok()) << res.status().ToString();
    done = true;
  };
  EXPECT_TRUE(s.Add(std::move(r)).ok());
  while (!done) s.Step();
  return rows;
}

// max |a - b| / max |b|.
double Relative(const std::vector<float>& a, const std::vector<float>& b) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, static_cast<double>(std::fabs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(b[i])));
  }
  return err / scale;
}

std::unique_ptr<Engine> Load(const std::string& dir) {
  EngineOptions o;
  o.threads = 2;
  auto e = Engine::Load(dir, o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(*e) : nullptr;
}

class LoraGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraGoldenTest, OnTheFlyMatchesTheMergedCheckpoint) {
  const std::string model = TestData("smolvlm2/" + GetParam());
  auto base = Load(model);
  ASSERT_TRUE(base);
  const std::vector<Prompt> prompts = Prompts(*base);
  std::vector<std::vector<std::vector<float>>> plain;
  for (const Prompt& p : prompts) plain.push_back(Logits(*base, p, nullptr));
  const AdapterSpec specs[] = {
      {.rank = 1, .alpha = 2, .seed = 11},
      {.rank = 4, .alpha = 8, .rslora = true, .seed = 12, .embeddings = true},
      {.rank = 16, .alpha = 16, .seed = 13, .whole_lm_head = true, .dtype = tensor::DType::kBF16},
  };
  for (const AdapterSpec& spec : specs) {
    SCOPED_TRACE("rank " + std::to_string(spec.rank));
    TempDir tmp;
    WriteAdapter(model, tmp / "adapter", spec);
    auto adapter = base->LoadAdapter(tmp / "adapter");
    ASSERT_TRUE(adapter.ok()) << adapter.status().ToString();
    ASSERT_TRUE((*adapter)->touches_vision());
    size_t merged_tensors = 0;
    ASSERT_TRUE(model::MergeLora(model, **adapter, tmp / "merged", [&](size_t done, size_t) {
                  merged_tensors = done;
                }).ok());
    EXPECT_GT(merged_tensors, 0u);
    auto merged = Load(tmp / "merged");
    ASSERT_TRUE(merged);
    for (size_t i = 0; i < prompts.size(); ++i) {
      SCOPED_TRACE(prompts[i].name);
      const auto fly = Logits(*base, prompts[i], *adapter);
      const auto want = Logits(*merged, prompts[i], nullptr);
      ASSERT_EQ(fly.size(), want.size());
      for (size_t t = 0; t < fly.size(); ++t) {
        EXPECT_LT(Relative(fly[t], want[t]), 1e-5) << "row " << t;
      }
      // The adapter does change the answer (a no-op adapter would pass the line above).
      EXPECT_GT(Relative(fly[0], plain[i][0]), 1e-3);
    }
  }
}

// Sequences with two adapters and none, batched in one scheduler, each get the logits they
// get alone.
TEST_P(LoraGoldenTest, DifferentAdaptersShareABatch) {
  const std::string model = TestData("smolvlm2/" + GetParam());
  auto e = Load(model);
  ASSERT_TRUE(e);
  TempDir tmp;
  WriteAdapter(model, tmp / "a", {.rank = 2, .seed = 5});
  WriteAdapter(model, tmp / "b", {.rank = 8, .seed = 6, .vision = false, .embeddings = true});
  auto a = e->LoadAdapter(tmp / "a");
  auto b = e->LoadAdapter(tmp / "b");
  ASSERT_TRUE(a.ok() && b.ok());
  const std::vector<Prompt> prompts = Prompts(*e);
  struct Job {
    const Prompt* prompt;
    std::shared_ptr<const model::LoraAdapter> adapter;
    std::vector<std::vector<float>> alone, batched;
    bool done = false;
  };
  std::vector<Job> jobs = {{&prompts[0], *a}, {&prompts[0], nullptr}, {&prompts[0], *b},
                           {&prompts[1], *a}, {&prompts[1], *b},      {&prompts[1], nullptr},
                           {&prompts[3], *a}, {&prompts[3], nullptr}};
  for (Job& j : jobs) j.alone = Logits(*e, *j.prompt, j.adapter);
  SchedulerOptions so;  // prefix and image caches on: they must keep adapters apart
  so.max_batch = 8;
  Scheduler s(*e, e->text_model().NewPool(), so);
  for (Job& j : jobs) {
    SequenceRequest r;
    r.prompt = j.prompt->ids;
    r.visuals = j.prompt->visuals;
    r.options.max_tokens = 5;
    r.options.stop_at_eos = false;
    r.options.adapter = j.adapter;
    r.on_logits = [&j](std::span<const float> l) { j.batched.emplace_back(l.begin(), l.end()); };
    r.on_done = [&j](Result<GenerateResult> res) {
      EXPECT_TRUE(res.ok());
      j.done = true;
    };
    ASSERT_TRUE(s.Add(std::move(r)).ok());
  }
  size_t most = 0;
  while (!s.idle()) {
    s.Step();
    most = std::max(most, s.last_step_sequences());
  }
  EXPECT_GT(most, 2u);
  for (size_t i = 0; i < jobs.size(); ++i) {
    ASSERT_EQ(jobs[i].batched.size(), jobs[i].alone.size()) << i;
    for (size_t t = 0; t < jobs[i].alone.size(); ++t) {
      EXPECT_LT(Relative(jobs[i].batched[t], jobs[i].alone[t]), 1e-5)
          << "job " << i << " row " << t;
    }
  }
  // Against each other: the three forms of prompt 0 differ.
  EXPECT_GT(Relative(jobs[0].alone[0], jobs[1].alone[0]), 1e-3);
  EXPECT_GT(Relative(jobs[2].alone[0], jobs[1].alone[0]), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, LoraGoldenTest,
                         ::testing::Values("tiny-256m-style", "tiny-2.2b-style"),
                         [](const auto& param_info) {
                           std::string s = param_info.param;
                           for (char& c : s) c = (c == '-' || c == '.') ? '_' : c;
                           return s;
                         });

TEST(LoraAdapterTest, ScaleFollowsAlphaRankAndPatterns) {
  const std::string model = TestData("smolvlm2/tiny-256m-style");
  auto e = Load(model);
  ASSERT_TRUE(e);
  TempDir tmp;
  // rank_pattern / alpha_pattern as PEFT matches them: the pattern at the end of the module
  // path, after a dot.
  WriteAdapter(
      model, tmp / "a",
      {.rank = 4,
       .alpha = 8,
       .seed = 3,
       .vision = false,
       .extra_config = ", \"alpha_pattern\": {\"layers\\\\.0\\\\.self_attn\\\\.q_proj\": 2}"});
  auto a = e->LoadAdapter(tmp / "a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_FLOAT_EQ((*a)->Find(model::LoraSite::kTextQ, 0)->scale, 0.5f);
  EXPECT_FLOAT_EQ((*a)->Find(model::LoraSite::kTextQ, 1)->scale, 2.0f);
  EXPECT_FLOAT_EQ((*a)->Find(model::LoraSite::kTextK, 0)->scale, 2.0f);
  EXPECT_EQ((*a)->Find(model::LoraSite::kVisionQ, 0), nullptr);
  EXPECT_FALSE((*a)->touches_vision());
  WriteAdapter(model, tmp / "b", {.rank = 4, .alpha = 8, .rslora = true, .seed = 3});
  auto b = e->LoadAdapter(tmp / "b");
  ASSERT_TRUE(b.ok());
  EXPECT_FLOAT_EQ((*b)->Find(model::LoraSite::kTextUp, 0)->scale, 4.0f);  // 8 / √4
  EXPECT_NE((*b)->Describe().find("rank 4"), std::string::npos);
}

TEST(LoraAdapterTest, DamagedAndForeignAdaptersAreRefusedByName) {
  const std::string model = TestData("smolvlm2/tiny-256m-style");
  auto e = Load(model);
  ASSERT_TRUE(e);
  TempDir tmp;
  auto message = [&](const std::string& dir) {
    auto a = e->LoadAdapter(dir);
    EXPECT_FALSE(a.ok()) << dir;
    return a.ok() ? std::string() : a.status().message();
  };
  EXPECT_NE(message(tmp / "none").find("no adapter_config.json"), std::string::npos);

  WriteAdapter(model, tmp / "good", {.rank = 2, .vision = false});
  auto copy = [&](const std::string& name) {
    fs::copy(tmp / "good", tmp / name, fs::copy_options::recursive);
    return tmp / name;
  };
  auto rewrite_config = [](const std::string& dir, const std::string& text) {
    std::ofstream(dir + "/adapter_config.json") << text;
  };
  auto rewrite_tensors = [](const std::string& dir, std::vector<formats::TensorToWrite> t) {
    ASSERT_TRUE(formats::WriteSafetensors(dir + "/adapter_model.safetensors", t).ok());
  };
  auto f32 = [](std::vector<int64_t> shape, float value = 0.01f) {
    return Bytes(std::vector<float>(static_cast<size_t>(shape[0] * shape[1]), value),
                 tensor::DType::kF32);
  };
  const std::string q = "base_model.model.model.text_model.layers.0.self_attn.q_proj";
  const int64_t d = e->config().text.hidden_size;

  std::string dir = copy("dora");
  rewrite_config(dir, "{\"r\": 2, \"lora_alpha\": 4, \"use_dora\": true}");
  EXPECT_NE(message(dir).find("DoRA"), std::string::npos);

  dir = copy("rank");
  rewrite_config(dir, "{\"r\": 8, \"lora_alpha\": 4}");
  EXPECT_NE(message(dir).find("rank 2 but adapter_config.json says r = 8"), std::string::npos);

  dir = copy("badjson");
  rewrite_config(dir, "{\"r\": ");
  EXPECT_NE(message(dir).find("adapter_config.json"), std::string::npos);

  dir = copy("bin");
  fs::remove(dir + "/adapter_model.safetensors");
  std::ofstream(dir + "/adapter_model.bin") << "pickle";
  EXPECT_NE(message(dir).find("adapter_model.bin"), std::string::npos);

  dir = copy("shape");
  rewrite_tensors(dir, {{q + ".lora_A.weight", tensor::DType::kF32, {2, d + 1}, f32({2, d + 1})},
                        {q + ".lora_B.weight", tensor::DType::kF32, {d, 2}, f32({d, 2})}});
  EXPECT_NE(message(dir).find("this model needs A [r, " + std::to_string(d) + "]"),
            std::string::npos);

  dir = copy("half");
  rewrite_tensors(dir, {{q + ".lora_A.weight", tensor::DType::kF32, {2, d}, f32({2, d})}});
  EXPECT_NE(message(dir).find("has lora_A but no lora_B"), std::string::npos);

  dir = copy("layer");
  const std::string far = "base_model.model.model.text_model.layers.999.self_attn.q_proj";
  rewrite_tensors(dir, {{far + ".lora_A.weight", tensor::DType::kF32, {2, d}, f32({2, d})},
                        {far + ".lora_B.weight", tensor::DType::kF32, {d, 2}, f32({d, 2})}});
  EXPECT_NE(message(dir).find("adapts layer 999"), std::string::npos);

  dir = copy("unknown");
  const std::string norm = "base_model.model.model.text_model.layers.0.input_layernorm";
  rewrite_tensors(dir, {{norm + ".lora_A.weight", tensor::DType::kF32, {2, d}, f32({2, d})}});
  EXPECT_NE(message(dir).find("not a layer of a SmolVLM2 model"), std::string::npos);

  dir = copy("foreign");
  rewrite_tensors(
      dir,
      {{"transformer.h.0.attn.c_attn.lora_A.weight", tensor::DType::kF32, {2, d}, f32({2, d})}});
  EXPECT_NE(message(dir).find("not named as PEFT names"), std::string::npos);

  dir = copy("nan");
  rewrite_tensors(dir, {{q + ".lora_A.weight", tensor::DType::kF32, {2, d}, f32({2, d}, NAN)},
                        {q + ".lora_B.weight", tensor::DType::kF32, {d, 2}, f32({d, 2})}});
  EXPECT_NE(message(dir).find("NaN"), std::string::npos);

  dir = copy("magnitude");
  rewrite_tensors(dir, {{q + ".lora_magnitude_vector", tensor::DType::kF32, {1, d}, f32({1, d})}});
  EXPECT_NE(message(dir).find("DoRA"), std::string::npos);

  dir = copy("whole");
  const std::string o = "base_model.model.model.text_model.layers.0.self_attn.o_proj";
  rewrite_tensors(dir, {{o + ".weight", tensor::DType::kF32, {d, d}, f32({d, d})}});
  EXPECT_NE(message(dir).find("modules_to_save"), std::string::npos);

  dir = copy("regex");
  rewrite_config(dir, "{\"r\": 2, \"lora_alpha\": 4, \"rank_pattern\": {\"(a+)+b\": 2}}");
  EXPECT_NE(message(dir).find("iris reads module paths there"), std::string::npos);

  dir = copy("empty");
  rewrite_tensors(dir, {});
  EXPECT_NE(message(dir).find("holds no LoRA weights"), std::string::npos);
}

// tests/data/lora/generate.py wrote an adapter as PEFT lays it out and, with numpy, values of
// W + (alpha / r)·B·A: the merged checkpoint holds them.
TEST(LoraAdapterTest, MergedWeightsMatchNumpy) {
  const std::string model = TestData("smolvlm2/tiny-256m-style");
  auto e = Load(model);
  ASSERT_TRUE(e);
  auto a = e->LoadAdapter(TestData("lora/tiny-256m-style"));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ((*a)->linears().size(), 27u);
  EXPECT_TRUE((*a)->touches_vision());
  TempDir tmp;
  ASSERT_TRUE(model::MergeLora(model, **a, tmp / "merged").ok());
  auto store = formats::WeightStore::OpenDir(tmp / "merged");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto expected = ReadJsonFile(TestData("lora/expected_merged.json"));
  ASSERT_TRUE(expected.ok());
  size_t checked = 0;
  for (const auto& [name, picks] : expected->as_object()) {
    auto t = store->Get(std::string(name));
    ASSERT_TRUE(t.ok()) << name;
    ASSERT_EQ(t->view.dtype, tensor::DType::kF32) << name;
    const std::vector<float> w = ops::ToF32(t->view);
    const int64_t cols = t->view.shape[1];
    for (const auto& p : picks.as_array()) {
      const auto& v = p.as_array();
      const float want = static_cast<float>(v[2].to_number<double>());
      const float got = w[static_cast<size_t>(v[0].as_int64() * cols + v[1].as_int64())];
      EXPECT_NEAR(got, want, 1e-6f * std::max(1.0f, std::fabs(want))) << name;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 27u * 3u);
  // Everything else is the base's, byte for byte.
  auto base = formats::WeightStore::OpenDir(model);
  ASSERT_TRUE(base.ok());
  for (const auto& [name, entry] : base->entries()) {
    if (expected->as_object().contains(name)) continue;
    auto t = store->Get(name);
    ASSERT_TRUE(t.ok()) << name;
    EXPECT_EQ(t->view.dtype, entry.view.dtype) << name;
    ASSERT_EQ(t->view.num_bytes(), entry.view.num_bytes()) << name;
    EXPECT_EQ(std::memcmp(t->view.data, entry.view.data, entry.view.num_bytes()), 0) << name;
  }
  for (const char* file : {"config.json", "tokenizer.json", "chat_template.json"}) {
    EXPECT_TRUE(fs::exists(tmp / ("merged/" + std::string(file)))) << file;
  }
  EXPECT_FALSE(fs::exists(tmp / "merged/goldens.safetensors"));
}

// A checkpoint whose lm_head is its embedding table cannot take a change to either merged
// (it would change both); on the fly it can.
TEST(LoraAdapterTest, MergeRefusesEmbeddingChangesOnTiedCheckpoints) {
  const std::string model = TestData("smolvlm2/tiny-256m-style");
  TempDir tmp;
  fs::copy(model, tmp / "tied", fs::copy_options::recursive);
  auto config = ReadJsonFile(tmp / "tied/config.json");
  ASSERT_TRUE(config.ok());
  config->as_object()["tie_word_embeddings"] = true;
  std::ofstream(tmp / "tied/config.json") << boost::json::serialize(*config);
  auto e = Load(model);
  ASSERT_TRUE(e);
  WriteAdapter(model, tmp / "a", {.rank = 2, .vision = false, .embeddings = true});
  auto a = e->LoadAdapter(tmp / "a");
  ASSERT_TRUE(a.ok());
  Status s = model::MergeLora(tmp / "tied", **a, tmp / "out");
  EXPECT_EQ(s.code(), ErrorCode::kUnimplemented) << s.ToString();
  EXPECT_NE(s.message().find("ties lm_head to the embeddings"), std::string::npos);
  WriteAdapter(model, tmp / "b", {.rank = 2, .vision = false, .lm_head = false});
  auto b = e->LoadAdapter(tmp / "b");
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(model::MergeLora(tmp / "tied", **b, tmp / "out2").ok());
}

TEST(LoraAdapterTest, MergeRefusesAnOccupiedDirectory) {
  const std::string model = TestData("smolvlm2/tiny-256m-style");
  auto e = Load(model);
  ASSERT_TRUE(e);
  TempDir tmp;
  WriteAdapter(model, tmp / "a", {.rank = 2, .vision = false});
  auto a = e->LoadAdapter(tmp / "a");
  ASSERT_TRUE(a.ok());
  fs::create_directories(tmp / "out");
  std::ofstream(tmp / "out/keep") << "x";
  EXPECT_EQ(model::MergeLora(model, **a, tmp / "out").code(), ErrorCode::kFailedPrecondition);
}

}  // namespace
}  // namespace iris::runtime

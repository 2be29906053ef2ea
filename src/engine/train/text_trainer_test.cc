// The LoRA gradients against PyTorch autograd: tests/data/lora/grad_reference.py wrote, for the
// tiny-256m-style text model with LoRA on all 14 linear layers and two labelled sequences, the
// mean cross-entropy and its gradient with respect to every A and B. The trainer reproduces
// them within 1e-4 of each tensor's largest value.
#include "engine/train/text_trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <tuple>

#include "base/json.h"
#include "base/test_data.h"
#include "engine/formats/safetensors.h"
#include "engine/kernels/kernels.h"
#include "engine/runtime/engine.h"

namespace iris::train {
namespace {

std::vector<float> Tensor(const formats::SafetensorsFile& f, const std::string& name) {
  auto it = f.tensors().find(name);
  EXPECT_NE(it, f.tensors().end()) << name;
  if (it == f.tensors().end()) return {};
  return ops::ToF32(it->second.view);
}

double RelativeError(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, static_cast<double>(std::fabs(got[i] - want[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(want[i])));
  }
  return err / scale;
}

// Runs the reference's labelled sequences forward and backward (gradients into `lora`);
// the summed loss and the number of labelled tokens.
std::pair<double, size_t> RunReference(TextTrainer& trainer, runtime::Engine& engine,
                                       const boost::json::value& meta, LoraParams& lora) {
  const model::TextModel& text = engine.text_model();
  const size_t labelled = static_cast<size_t>(meta.at("labelled").as_int64());
  double loss = 0;
  size_t tokens = 0;
  for (const auto& seq : meta.at("sequences").as_array()) {
    std::vector<int32_t> ids, labels;
    for (const auto& v : seq.at("ids").as_array())
      ids.push_back(static_cast<int32_t>(v.as_int64()));
    for (const auto& v : seq.at("labels").as_array()) {
      labels.push_back(static_cast<int32_t>(v.as_int64()));
    }
    std::vector<float> embeds(ids.size() * static_cast<size_t>(text.model_dim()));
    text.Embed(ids, embeds.data());
    const SequenceLoss l = trainer.Run(engine.compute(), embeds.data(), labels, &lora,
                                       1.0f / static_cast<float>(labelled), /*backward=*/true);
    loss += l.sum;
    tokens += l.tokens;
  }
  return {loss, tokens};
}

class TextTrainerTest : public ::testing::TestWithParam<int> {};

TEST_P(TextTrainerTest, GradientsMatchPyTorchAutograd) {
  runtime::EngineOptions eo;
  eo.threads = GetParam();
  auto engine = runtime::Engine::Load(TestData("smolvlm2/tiny-256m-style"), eo);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto meta = ReadJsonFile(TestData("lora/grad_reference.json"));
  ASSERT_TRUE(meta.ok());
  auto ref = formats::SafetensorsFile::Open(TestData("lora/grad_reference.safetensors"));
  ASSERT_TRUE(ref.ok());
  const model::TextModel& text = (*engine)->text_model();
  LoraShape shape;
  shape.rank = static_cast<int>(meta->at("rank").as_int64());
  shape.alpha = meta->at("alpha").to_number<double>();
  auto lora = LoraParams::Create(text.config(), shape, /*seed=*/1);
  ASSERT_TRUE(lora.ok()) << lora.status().ToString();
  ASSERT_EQ(lora->params().size(), 14u);
  for (LoraParam& p : lora->params()) {
    p.a = Tensor(*ref, p.module + ".lora_A");
    p.b = Tensor(*ref, p.module + ".lora_B");
    ASSERT_EQ(p.a.size(), static_cast<size_t>(p.rank * p.in)) << p.module;
    ASSERT_EQ(p.b.size(), static_cast<size_t>(p.out * p.rank)) << p.module;
  }
  auto trainer = TextTrainer::Create(text, (*engine)->compute());
  ASSERT_TRUE(trainer.ok()) << trainer.status().ToString();
  const size_t labelled = static_cast<size_t>(meta->at("labelled").as_int64());
  const auto [loss, tokens] = RunReference(*trainer, **engine, *meta, *lora);
  EXPECT_EQ(tokens, labelled);
  EXPECT_NEAR(loss / static_cast<double>(tokens), meta->at("loss").to_number<double>(), 1e-5);
  for (const LoraParam& p : lora->params()) {
    EXPECT_LT(RelativeError(p.grad_a, Tensor(*ref, p.module + ".grad_A")), 1e-4) << p.module;
    EXPECT_LT(RelativeError(p.grad_b, Tensor(*ref, p.module + ".grad_B")), 1e-4) << p.module;
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, TextTrainerTest, ::testing::Values(1, 2));

// A base model held in int8 (Q8_0 or Q4_0, from a file or --weights) trains too: its weights go
// backward as their f32 values; and so does one in bf16 panels (--compute bf16), backward as
// bf16 rows. The loss and gradients stay near the exact ones.
TEST(TextTrainerQuantizedTest, Int8AndBf16BaseWeightsTrainNearTheExactGradients) {
  auto meta = ReadJsonFile(TestData("lora/grad_reference.json"));
  ASSERT_TRUE(meta.ok());
  auto ref = formats::SafetensorsFile::Open(TestData("lora/grad_reference.safetensors"));
  ASSERT_TRUE(ref.ok());
  // Measured: q8_0 loss within 0.1 % and every B gradient within 5 % (of its largest value);
  // q4_0 within 0.9 % and 46 % (a random tiny model, 4-bit weights); bf16 products (weights in
  // bf16 panels) within 0.03 % and 1.2 %.
  for (auto [weights, compute, loss_tol, grad_tol] :
       {std::tuple{"q8_0", "", 0.01, 0.1}, {"q4_0", "", 0.03, 0.75}, {"", "bf16", 0.002, 0.05}}) {
    if (std::string(compute) == "bf16" && !kernels::Bf16ProductsAvailable()) continue;
    runtime::EngineOptions eo;
    eo.threads = 2;
    eo.weights = weights;
    eo.compute = compute;
    auto engine = runtime::Engine::Load(TestData("smolvlm2/tiny-256m-style"), eo);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    const model::TextModel& text = (*engine)->text_model();
    LoraShape shape;
    shape.rank = static_cast<int>(meta->at("rank").as_int64());
    shape.alpha = meta->at("alpha").to_number<double>();
    auto lora = LoraParams::Create(text.config(), shape, /*seed=*/1);
    ASSERT_TRUE(lora.ok());
    for (LoraParam& p : lora->params()) {
      p.a = Tensor(*ref, p.module + ".lora_A");
      p.b = Tensor(*ref, p.module + ".lora_B");
    }
    auto trainer = TextTrainer::Create(text, (*engine)->compute());
    ASSERT_TRUE(trainer.ok()) << weights << compute << ": " << trainer.status().ToString();
    const auto [loss, labelled] = RunReference(*trainer, **engine, *meta, *lora);
    const double exact = meta->at("loss").to_number<double>();
    EXPECT_NEAR(loss / static_cast<double>(labelled), exact, loss_tol * exact)
        << weights << compute;
    for (const LoraParam& p : lora->params()) {
      EXPECT_LT(RelativeError(p.grad_b, Tensor(*ref, p.module + ".grad_B")), grad_tol)
          << weights << compute << " " << p.module;
    }
  }
}

// The attention heads go over the pool whole (up to 2048 positions) or one by one with pooled
// products (longer): the loss and every gradient are the same bit for bit with 1 and 2
// threads, on both sides of that line.
TEST(TextTrainerThreadsTest, OneAndTwoThreadsAgreeBitForBitAtEveryLength) {
  struct Out {
    double loss = 0;
    std::vector<std::vector<float>> grads;
  };
  auto run = [](int threads, size_t T) -> Out {
    runtime::EngineOptions eo;
    eo.threads = threads;
    auto engine = runtime::Engine::Load(TestData("smolvlm2/tiny-256m-style"), eo);
    EXPECT_TRUE(engine.ok());
    const model::TextModel& text = (*engine)->text_model();
    auto lora = LoraParams::Create(
        text.config(), {.rank = 2, .alpha = 4, .targets = {"q_proj", "v_proj", "down_proj"}}, 5);
    EXPECT_TRUE(lora.ok());
    for (LoraParam& p : lora->params()) {  // B is zero at init: make the adapter matter
      for (size_t i = 0; i < p.b.size(); ++i) p.b[i] = 0.01f * static_cast<float>(i % 7) - 0.03f;
    }
    auto trainer = TextTrainer::Create(text, (*engine)->compute());
    EXPECT_TRUE(trainer.ok());
    std::vector<int32_t> ids(T), labels(T, -1);
    for (size_t t = 0; t < T; ++t) ids[t] = static_cast<int32_t>((t * 37 + 11) % 500 + 10);
    for (size_t t = T / 2; t + 1 < T; ++t) labels[t] = ids[t + 1];
    std::vector<float> embeds(T * static_cast<size_t>(text.model_dim()));
    text.Embed(ids, embeds.data());
    Out out;
    out.loss = trainer->Run((*engine)->compute(), embeds.data(), labels, &*lora, 0.01f, true).sum;
    for (const LoraParam& p : lora->params()) {
      out.grads.push_back(p.grad_a);
      out.grads.push_back(p.grad_b);
    }
    return out;
  };
  for (size_t T : {size_t{300}, size_t{2100}}) {
    const Out one = run(1, T), two = run(2, T);
    EXPECT_EQ(one.loss, two.loss) << T;
    ASSERT_EQ(one.grads.size(), two.grads.size());
    for (size_t i = 0; i < one.grads.size(); ++i) EXPECT_EQ(one.grads[i], two.grads[i]) << T;
  }
}

TEST(LoraParamsTest, InitialisesAsPeftAndRefusesUnknownTargets) {
  model::TextConfig c;
  c.hidden_size = 64;
  c.intermediate_size = 160;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  auto p = LoraParams::Create(c, {.rank = 4, .alpha = 8, .targets = {"q_proj", "down_proj"}}, 3);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->params().size(), 4u);
  EXPECT_FLOAT_EQ(p->scale(), 2.0f);
  const LoraParam* down = p->Find(model::LoraSite::kTextDown, 1);
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->in, 160);
  EXPECT_EQ(down->out, 64);
  EXPECT_EQ(p->Find(model::LoraSite::kTextK, 0), nullptr);
  const float bound = 1.0f / std::sqrt(160.0f);
  float most = 0;
  for (float a : down->a) most = std::max(most, std::fabs(a));
  EXPECT_LE(most, bound);
  EXPECT_GT(most, bound * 0.9f);
  for (float b : down->b) EXPECT_EQ(b, 0.0f);
  EXPECT_EQ(
      LoraParams::Create(c, {.rank = 4, .alpha = 8, .targets = {"fc1"}}, 3).status().message(),
      "unknown target module 'fc1' (the text model has q_proj, k_proj, v_proj, o_proj, "
      "gate_proj, up_proj, down_proj)");
  EXPECT_FALSE(LoraParams::Create(c, {.rank = 0, .alpha = 1, .targets = {}}, 3).ok());
}

}  // namespace
}  // namespace iris::train

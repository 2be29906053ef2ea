// Helpers for the engine's tests (header-only; test binaries include it).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/runtime/engine.h"

namespace iris::runtime::test_util {

// Logits at every position of a prompt, from the text model alone.
inline std::vector<float> PromptLogits(Engine& e, const std::string& text) {
  const std::vector<int32_t> ids = e.tokenizer().Encode(text);
  const model::TextModel& m = e.text_model();
  std::vector<float> embeds(ids.size() * static_cast<size_t>(m.model_dim()));
  m.Embed(ids, embeds.data());
  model::KvCache cache = m.NewCache();
  std::vector<float> logits;
  const Status s = m.Forward(e.compute(), embeds.data(), ids.size(), cache, true, &logits);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return logits;
}

// The chat prompt of one user turn: an image, then "Why?".
inline boost::json::array AskAboutAnImage() {
  return boost::json::array{boost::json::object{
      {"role", "user"},
      {"content", boost::json::array{boost::json::object{{"type", "image"}},
                                     boost::json::object{{"type", "text"}, {"text", "Why?"}}}}}};
}

// The greedy answer (6 tokens, end ids ignored) to `prompt` about a 300×170 test pattern.
inline std::vector<int32_t> AnswerAboutAPattern(Engine& e, const std::string& prompt) {
  media::Image image;
  image.width = 300;
  image.height = 170;
  image.rgb.resize(300 * 170 * 3);
  for (size_t i = 0; i < image.rgb.size(); ++i) image.rgb[i] = static_cast<uint8_t>(i * 7 % 251);
  GenerateOptions g;
  g.max_tokens = 6;
  g.stop_at_eos = false;
  auto pixels = e.PreprocessImage(image);
  EXPECT_TRUE(pixels.ok()) << pixels.status().ToString();
  if (!pixels.ok()) return {};
  Visual v;
  v.pixels = *pixels;
  std::vector<Visual> visuals = {v};
  auto ids = e.TokenizePrompt(prompt, visuals);
  EXPECT_TRUE(ids.ok()) << ids.status().ToString();
  if (!ids.ok()) return {};
  auto r = e.Generate(*ids, g, {}, visuals);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r->tokens : std::vector<int32_t>{};
}

}  // namespace iris::runtime::test_util

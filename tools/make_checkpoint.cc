// iris-make-checkpoint: writes a random-weight SmolVLM2 checkpoint with the exact shapes and
// config of the published 256M, 500M or 2.2B models, so speed can be measured without
// downloads. Weights are seeded noise (speed does not depend on values).
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "base/mapped_file.h"
#include "engine/tensor/dtype.h"

namespace {
namespace fs = std::filesystem;
namespace json = boost::json;
using iris::tensor::DType;

struct Shape {
  int text_hidden, text_inter, text_layers, text_heads, text_kv_heads;
  double rope_theta;
  int max_pos;
  int vis_hidden, vis_inter, vis_layers, vis_heads, vis_patch, vis_image, scale, longest_edge;
};

// smolvlm2.md §1.1 (the published configs).
Shape ShapeFor(const std::string& size) {
  if (size == "256m")
    return {576, 1536, 30, 9, 3, 100000, 8192, 768, 3072, 12, 12, 16, 512, 4, 2048};
  if (size == "500m")
    return {960, 2560, 32, 15, 5, 100000, 8192, 768, 3072, 12, 12, 16, 512, 4, 2048};
  return {2048, 8192, 24, 32, 32, 273768, 16384, 1152, 4304, 27, 16, 14, 384, 3, 1536};
}

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  float mean, stddev;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Write a random-weight SmolVLM2 checkpoint with the real shapes"};
  std::string size = "256m", out, dtype_name = "bf16", data_dir = IRIS_DATA_DIR;
  uint64_t seed = 1;
  app.add_option("--size", size, "256m, 500m or 2.2b")
      ->check(CLI::IsMember({"256m", "500m", "2.2b"}))
      ->capture_default_str();
  app.add_option("--out", out, "output directory")->required();
  app.add_option("--dtype", dtype_name, "bf16, f16 or f32 (the hub files are f32)")
      ->check(CLI::IsMember({"bf16", "f16", "f32"}))
      ->capture_default_str();
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  app.add_option("--data-dir", data_dir, "where tokenizer/ and smolvlm2/ fixtures live")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const Shape s = ShapeFor(size);
  const DType dtype = dtype_name == "f32"   ? DType::kF32
                      : dtype_name == "f16" ? DType::kF16
                                            : DType::kBF16;
  const int64_t vocab = 49280, head_dim = 64;
  fs::create_directories(out);

  std::vector<Tensor> tensors;
  const int64_t vd = s.vis_hidden,
                patches = (s.vis_image / s.vis_patch) * (s.vis_image / s.vis_patch);
  tensors.push_back({"model.vision_model.embeddings.patch_embedding.weight",
                     {vd, 3, s.vis_patch, s.vis_patch},
                     0,
                     0.02f});
  tensors.push_back({"model.vision_model.embeddings.patch_embedding.bias", {vd}, 0, 0.02f});
  tensors.push_back(
      {"model.vision_model.embeddings.position_embedding.weight", {patches, vd}, 0, 0.02f});
  for (int i = 0; i < s.vis_layers; ++i) {
    const std::string p = "model.vision_model.encoder.layers." + std::to_string(i) + ".";
    for (const char* n : {"layer_norm1", "layer_norm2"}) {
      tensors.push_back({p + n + ".weight", {vd}, 1, 0.1f});
      tensors.push_back({p + n + ".bias", {vd}, 0, 0.1f});
    }
    for (const char* n : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      tensors.push_back({p + "self_attn." + n + ".weight", {vd, vd}, 0, 0.02f});
      tensors.push_back({p + "self_attn." + n + ".bias", {vd}, 0, 0.02f});
    }
    tensors.push_back({p + "mlp.fc1.weight", {s.vis_inter, vd}, 0, 0.02f});
    tensors.push_back({p + "mlp.fc1.bias", {s.vis_inter}, 0, 0.02f});
    tensors.push_back({p + "mlp.fc2.weight", {vd, s.vis_inter}, 0, 0.02f});
    tensors.push_back({p + "mlp.fc2.bias", {vd}, 0, 0.02f});
  }
  tensors.push_back({"model.vision_model.post_layernorm.weight", {vd}, 1, 0.1f});
  tensors.push_back({"model.vision_model.post_layernorm.bias", {vd}, 0, 0.1f});
  const int64_t td = s.text_hidden;
  tensors.push_back(
      {"model.connector.modality_projection.proj.weight", {td, vd * s.scale * s.scale}, 0, 0.02f});
  tensors.push_back({"model.text_model.embed_tokens.weight", {vocab, td}, 0, 0.02f});
  for (int i = 0; i < s.text_layers; ++i) {
    const std::string p = "model.text_model.layers." + std::to_string(i) + ".";
    tensors.push_back({p + "input_layernorm.weight", {td}, 1, 0.1f});
    tensors.push_back({p + "post_attention_layernorm.weight", {td}, 1, 0.1f});
    tensors.push_back({p + "self_attn.q_proj.weight", {s.text_heads * head_dim, td}, 0, 0.02f});
    tensors.push_back({p + "self_attn.k_proj.weight", {s.text_kv_heads * head_dim, td}, 0, 0.02f});
    tensors.push_back({p + "self_attn.v_proj.weight", {s.text_kv_heads * head_dim, td}, 0, 0.02f});
    tensors.push_back({p + "self_attn.o_proj.weight", {td, s.text_heads * head_dim}, 0, 0.02f});
    tensors.push_back({p + "mlp.gate_proj.weight", {s.text_inter, td}, 0, 0.02f});
    tensors.push_back({p + "mlp.up_proj.weight", {s.text_inter, td}, 0, 0.02f});
    tensors.push_back({p + "mlp.down_proj.weight", {td, s.text_inter}, 0, 0.02f});
  }
  tensors.push_back({"model.text_model.norm.weight", {td}, 1, 0.1f});
  tensors.push_back({"lm_head.weight", {vocab, td}, 0, 0.02f});

  // Header first (offsets are known from the shapes), then the data, streamed.
  const size_t es = iris::tensor::DTypeSize(dtype);
  json::object header{{"__metadata__", json::object{{"format", "pt"}}}};
  uint64_t offset = 0;
  for (const Tensor& t : tensors) {
    uint64_t n = 1;
    json::array shape;
    for (int64_t d : t.shape) {
      n *= static_cast<uint64_t>(d);
      shape.push_back(d);
    }
    header[t.name] = json::object{{"dtype", std::string(iris::tensor::DTypeName(dtype))},
                                  {"shape", shape},
                                  {"data_offsets", json::array{offset, offset + n * es}}};
    offset += n * es;
  }
  std::string h = json::serialize(header);
  while (h.size() % 8) h.push_back(' ');
  const std::string weights_path = (fs::path(out) / "model.safetensors").string();
  FILE* f = std::fopen(weights_path.c_str(), "wb");
  if (!f) {
    std::fprintf(stderr, "iris-make-checkpoint: cannot create %s\n", weights_path.c_str());
    return 1;
  }
  uint8_t len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = static_cast<uint8_t>(static_cast<uint64_t>(h.size()) >> (8 * i));
  std::fwrite(len, 1, 8, f);
  std::fwrite(h.data(), 1, h.size(), f);
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> buf;
  uint64_t written = 0;
  for (const Tensor& t : tensors) {
    uint64_t n = 1;
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    buf.resize(n * es);
    for (uint64_t i = 0; i < n; ++i) {
      // Sum of four uniforms: cheap, roughly normal.
      uint64_t r = rng();
      float u = (static_cast<float>(r & 0xffff) + static_cast<float>((r >> 16) & 0xffff) +
                 static_cast<float>((r >> 32) & 0xffff) + static_cast<float>(r >> 48)) /
                    65536.0f -
                2.0f;
      float v = t.mean + t.stddev * u * 1.7320508f;
      if (dtype == DType::kF32) {
        // Like the published files: trained in bf16, saved as f32, so every value is a bf16.
        v = iris::tensor::Bf16ToF32(iris::tensor::F32ToBf16(v));
        std::memcpy(&buf[i * 4], &v, 4);
      } else {
        uint16_t b = dtype == DType::kBF16 ? iris::tensor::F32ToBf16(v) : iris::tensor::F32ToF16(v);
        std::memcpy(&buf[i * 2], &b, 2);
      }
    }
    if (std::fwrite(buf.data(), 1, buf.size(), f) != buf.size()) {
      std::fprintf(stderr, "iris-make-checkpoint: write failed (disk full?)\n");
      return 1;
    }
    written += buf.size();
    std::fprintf(stderr, "\rwriting %s: %.0f / %.0f MiB", weights_path.c_str(), written / 1048576.0,
                 offset / 1048576.0);
  }
  std::fclose(f);
  std::fprintf(stderr, "\n");

  json::object text{{"architectures", json::array{"VLlama3ForCausalLM"}},
                    {"head_dim", head_dim},
                    {"hidden_size", td},
                    {"intermediate_size", s.text_inter},
                    {"is_llama_config", true},
                    {"max_position_embeddings", s.max_pos},
                    {"model_type", "llama"},
                    {"num_hidden_layers", s.text_layers},
                    {"num_key_value_heads", s.text_kv_heads},
                    {"pad_token_id", 2},
                    {"pixel_shuffle_factor", s.scale},
                    {"qk_layer_norms", false},
                    {"rms_norm_eps", 1e-5},
                    {"rope_interleaved", false},
                    {"rope_theta", s.rope_theta},
                    {"torch_dtype", "bfloat16"},
                    {"use_resampler", false},
                    {"vocab_size", vocab}};
  // The published 2.2B text_config omits num_attention_heads (default 32): keep that quirk.
  if (size != "2.2b") text["num_attention_heads"] = s.text_heads;
  json::object vision{{"hidden_size", vd},
                      {"image_size", s.vis_image},
                      {"max_image_size", json::object{{"longest_edge", s.vis_image}}},
                      {"model_type", "smolvlm_vision"},
                      {"num_attention_heads", s.vis_heads},
                      {"patch_size", s.vis_patch},
                      {"size", json::object{{"longest_edge", s.longest_edge}}},
                      {"tie_word_embeddings", false},
                      {"use_base_siglip", false}};
  // The published 256M/500M vision configs omit these and rely on the defaults.
  if (size == "2.2b") {
    vision["intermediate_size"] = s.vis_inter;
    vision["num_hidden_layers"] = s.vis_layers;
  }
  json::object config{{"architectures", json::array{"SmolVLMForConditionalGeneration"}},
                      {"image_token_id", 49190},
                      {"model_type", "smolvlm"},
                      {"pad_token_id", 128002},
                      {"scale_factor", s.scale},
                      {"text_config", text},
                      {"tie_word_embeddings", false},
                      {"torch_dtype", "float32"},
                      {"transformers_version", "4.47.1"},
                      {"use_cache", false},
                      {"vision_config", vision},
                      {"vocab_size", vocab}};
  std::ofstream(fs::path(out) / "config.json") << json::serialize(config);
  std::ofstream(fs::path(out) / "generation_config.json")
      << R"({"_from_model_config": true, "bos_token_id": 0, "eos_token_id": 49279, "pad_token_id": 2})";
  // The real tokenizer and the fixture's chat template.
  fs::copy_file(fs::path(data_dir) / "tokenizer/tokenizer.json", fs::path(out) / "tokenizer.json",
                fs::copy_options::overwrite_existing);
  fs::copy_file(fs::path(data_dir) / "smolvlm2/tiny-256m-style/chat_template.json",
                fs::path(out) / "chat_template.json", fs::copy_options::overwrite_existing);
  // The real processor settings of the family (size 2048/512 or 1536/384).
  const std::string family = size == "2.2b" ? "smolvlm2-2.2b" : "smolvlm2-256m-500m";
  fs::copy_file(fs::path(data_dir) / "smolvlm2/real_preproc" / family / "preprocessor_config.json",
                fs::path(out) / "preprocessor_config.json", fs::copy_options::overwrite_existing);
  const int image_seq_len =
      (s.vis_image / s.vis_patch) * (s.vis_image / s.vis_patch) / (s.scale * s.scale);
  std::ofstream(fs::path(out) / "processor_config.json")
      << "{\"image_seq_len\": " << image_seq_len << ", \"processor_class\": \"SmolVLMProcessor\"}";
  std::printf("%s: SmolVLM2-%s shapes, %s, %.1f MiB of weights\n", out.c_str(), size.c_str(),
              dtype_name.c_str(), offset / 1048576.0);
  return 0;
}

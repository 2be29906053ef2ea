// A SmolVLM2 checkpoint in llama.cpp's GGUF layout (what ggml-org publishes and
// convert_hf_to_gguf.py writes): the text model as arch "llama" and, optionally, the vision
// tower and connector as an "mmproj" file (arch "clip", projector "idefics3"). It becomes the
// same ModelConfig and the same named weights a safetensors checkpoint gives, so TextModel and
// VisionModel load either.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "engine/formats/gguf.h"
#include "engine/formats/safetensors.h"
#include "engine/model/config.h"

namespace iris::model {

// The largest vocabulary a GGUF text model may declare (llama.vocab_size).
inline constexpr int kMaxGgufVocab = 1 << 21;

struct GgufCheckpoint {
  ModelConfig config;
  // Under the Hugging Face names. F32, F16, BF16, Q8_0, Q4_0 and the K tensors are used in
  // place from the mapped files (the binder repacks the block types into panels, or gives
  // their f32 values where no kernel takes them); the Q and K projections are copies with the
  // converter's per-head row order undone; Q5_0 is rewritten as the Q8_0 blocks of the same
  // values; Q4_1 and Q5_1 are dequantized to F32 at load (bit for bit as gguf-py).
  formats::WeightStore weights;
  std::shared_ptr<const formats::GgufFile> text;
  std::shared_ptr<const formats::GgufFile> mmproj;  // null without a vision tower
  std::string weight_types;                         // "BF16", "Q8_0+F32", ... for logs
  bool dequantized = false;                         // some weights were dequantized at load
};

// Opens a GGUF text model and (when mmproj_path is not empty) its mmproj. Errors name the file
// and the key or tensor: a file of another architecture or projector, a missing or absurd
// hyperparameter, a tensor a SmolVLM2 model does not have, or a tensor of the wrong shape.
Result<GgufCheckpoint> OpenGgufCheckpoint(const std::string& text_path,
                                          const std::string& mmproj_path);

struct GgufPaths {
  std::string text;
  std::string mmproj;  // empty when the directory holds none
};
// The GGUF files of a directory laid out as ggml-org's SmolVLM2 repos: one text model and at
// most one file whose name starts with "mmproj". NotFound when the directory holds no .gguf
// file; InvalidArgument listing them when it holds several of a kind (pass the files).
Result<GgufPaths> FindGgufFiles(const std::string& dir);

// Where a tensor of a SmolVLM2 checkpoint goes in the GGUF layout: `hf` under the names
// OpenGgufCheckpoint gives (model.text_model.*, lm_head.weight, model.vision_model.*,
// model.connector.*), and whether it belongs in the mmproj file; an empty name when the
// layout has no such tensor, or its layer is not below the model's count. The Q and K
// projections' rows are permuted in the file (UnpermutedRow).
struct GgufName {
  std::string name;
  bool mmproj = false;
};
GgufName GgufTensorName(const std::string& hf, int text_layers, int vision_layers);

// The converter's per-head Q/K row permutation (LlamaModel.permute) for `rows` rows in `heads`
// heads: row o of the checkpoint is row UnpermutedRow(o) of the file.
size_t UnpermutedRow(size_t o, size_t rows, size_t heads);

}  // namespace iris::model

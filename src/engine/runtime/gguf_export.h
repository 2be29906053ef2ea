// Writes a safetensors SmolVLM2 checkpoint as GGUF files in llama.cpp's layout (what
// OpenGgufCheckpoint reads): the text model (arch "llama") with its matrices quantized, and the
// vision tower with the connector as an mmproj (arch "clip", projector "idefics3"), so a
// checkpoint quantized once loads as quantized files afterwards. `iris quantize` runs it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/status.h"
#include "base/thread_pool.h"

namespace iris::runtime {

struct GgufExportOptions {
  // The text model's matrices (rows of whole 32-value blocks): "q8_0" or "q4_0", quantized by
  // the quantizers `--weights` uses at load, so the files give the same numbers as loading the
  // checkpoint with `--weights` (kWeightChoices in engine.h).
  std::string weights = "q8_0";
  // The files' stem: <name>-Q8_0.gguf and mmproj-<name>-BF16.gguf. "" takes the checkpoint's
  // name (the repo name for a Hugging Face cache snapshot, else the directory's).
  std::string name;
  ThreadPool* pool = nullptr;  // quantizes and converts rows in parallel when set
  // Called after each tensor with the checkpoint bytes done and in all.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct GgufExport {
  std::string text_path;
  std::string mmproj_path;  // "" when the checkpoint has no vision tower
  uint64_t text_bytes = 0;
  uint64_t mmproj_bytes = 0;
  uint64_t checkpoint_bytes = 0;  // the safetensors tensors read
};

// Writes the checkpoint in `model_dir` (config.json, *.safetensors, tokenizer.json, its chat
// template, generation_config.json, preprocessor_config.json) to `out_dir`, which must not
// exist or be empty. Text: matrices quantized, norms F32, the Q and K rows permuted per head
// as llama.cpp's converter does, the tokenizer as tokenizer.ggml.*, the chat template and end
// ids. Mmproj: matrices as stored (F32 holding bf16 values narrowed to BF16, as at load), the
// norms, biases and the patch and position embeddings F32, the image processor's longest edge,
// mean and std. The files are then loaded as `iris run` loads them and must tokenize, end and
// see images as the checkpoint does; what GGUF cannot carry (another tokenizer, more end ids,
// other image or video settings) is refused, never dropped. Errors name the file or the
// tensor; on failure nothing is left in `out_dir` but what was there.
Result<GgufExport> ExportGguf(const std::string& model_dir, const std::string& out_dir,
                              const GgufExportOptions& options);

// The stem ExportGguf names files after when options.name is empty.
std::string CheckpointName(const std::string& model_dir);
// OK for a stem of plain characters that does not start with "mmproj" (a directory of GGUF
// files tells its mmproj by that prefix).
Status CheckFileName(const std::string& name);

}  // namespace iris::runtime

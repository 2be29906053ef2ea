// `iris verify`: runs the engine on a golden fixture directory (goldens.safetensors +
// goldens.json produced by Hugging Face transformers) and compares every tensor it can.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"

namespace iris::runtime {

struct VerifyLine {
  std::string case_name;
  std::string item;          // "input_ids", "inputs_embeds", "logits", "greedy_tokens", ...
  double max_abs_error = 0;  // for tensors
  double tolerance = 0;
  bool ok = false;
  std::string detail;  // e.g. "8/8 tokens match"; empty for tensor comparisons
};

struct VerifyOptions {
  std::vector<std::string> cases;  // empty = all
  int threads = 0;
  double relative_tolerance = 1e-4;  // × max |golden|
  // The model to check against the fixtures: "" = the fixture directory's own checkpoint; or
  // another form of the same weights (a GGUF text model, with `mmproj` its vision tower).
  std::string model;
  std::string mmproj;
  // Reduced-precision weights (EngineOptions::weights, e.g. "q8_0"): their error is measured,
  // not held to the exact tolerance. Tensor lines report it (ok regardless) and each case adds
  // a "next_token" line: top-1 agreement with the golden next-token choice at every prompt
  // position and the mean KL divergence of the distributions.
  std::string weights;
  // EngineOptions::compute ("bf16"): measured the same way, the vision tower's outputs too.
  std::string compute;
  // EngineOptions::kv_cache_dtype ("f16"): measured the same way (the text model's outputs).
  std::string kv_cache_dtype;
};

// Verifies MODEL_DIR; calls on_line for each compared item as it completes. Returns OK
// with all lines; the caller decides the exit code from line.ok. Errors: a directory that
// is not in the fixture layout, an unknown case name.
Result<std::vector<VerifyLine>> Verify(const std::string& model_dir, const VerifyOptions& options,
                                       const std::function<void(const VerifyLine&)>& on_line);

}  // namespace iris::runtime

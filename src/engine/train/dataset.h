// Training data: JSONL, one conversation per line in the OpenAI chat shape
//   {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": ...}},
//                                              {"type": "text", "text": "..."}]},
//                 {"role": "assistant", "content": "..."}]}
// with images as data: URLs, file paths (relative to the JSONL file), file:// URLs, or http(s)
// URLs when the caller gives a fetcher (iris fetches and caches them). Each line
// becomes token ids rendered with the checkpoint's chat template, images expanded as the
// processor does, and labels on the assistant tokens only (loss on the answers, never on the
// prompts). Bad lines are reported by line number.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/runtime/engine.h"

namespace iris::train {

struct Example {
  size_t line = 0;              // 1-based, in its file
  std::vector<int32_t> ids;     // the whole conversation
  std::vector<int32_t> labels;  // labels[t] = ids[t + 1] where that is an assistant token, else -1
  std::vector<runtime::Visual> visuals;  // in placeholder order
  std::vector<float> features;  // image features once computed (then visuals' pixels are freed)
  size_t labelled = 0;          // positions with a label
};

struct DataProblem {
  size_t line = 0;
  std::string message;
};

struct DatasetOptions {
  size_t max_tokens = 0;  // longest conversation taken (0: the model's context)
  int max_images = 16;    // per conversation
  int64_t max_image_pixels = int64_t{4096} * 4096;
  // An http(s) image URL's bytes (fetched under a policy, cached). Unset: such a line is
  // refused, saying why. Within one LoadDataset a URL that failed is not asked for again.
  std::function<Result<std::string>(const std::string& url)> fetch_url;
  std::string no_fetch_reason = "image URLs are not fetched here";
  // Asked before every line: true stops the load (kUnavailable), e.g. a job being cancelled.
  std::function<bool()> stop;
};

struct Dataset {
  std::string path;
  std::vector<Example> examples;
  std::vector<DataProblem> problems;  // lines left out, with why
  uint64_t fingerprint = 0;           // of the file's bytes (a resumed run checks it)
  size_t tokens() const;
  size_t labelled() const;
};

// Reads a JSONL file. A line that cannot be used is left out and listed in `problems`; the
// caller decides whether that is fatal. NotFound / DataLoss when the file cannot be read;
// Unavailable when options.stop said so.
Result<Dataset> LoadDataset(const std::string& path, const runtime::Engine& engine,
                            const DatasetOptions& options);

// Turns one parsed conversation into an Example (exposed for tests). `base_dir` resolves
// relative image paths.
Result<Example> MakeExample(const boost::json::value& line, const runtime::Engine& engine,
                            const DatasetOptions& options, const std::string& base_dir);

}  // namespace iris::train

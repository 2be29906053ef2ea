// Training data from the request log: the prompts and answers that store_bodies routes kept,
// turned into the JSONL of chat `messages` that `iris finetune` reads (docs/finetuning.md,
// "Distilling"). Pure functions over StoredExchange plus one walk of a store.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gateway/observe/store.h"

namespace iris::gateway::observe {

struct DatasetExportOptions {
  // The answering model: "provider/model" (openai/gpt-4o-mini) or the bare upstream id.
  std::string model;
  int64_t since_unix_ms = 0;
  int64_t until_unix_ms = 0;
  // Replace what looks like a credential in the text (RedactSecrets) and every string of
  // `secrets` (the operator's own keys, read from iris.yaml) with [REDACTED].
  bool redact_keys = false;
  std::vector<std::string> secrets;
};

// Why a stored exchange did not become a training example; one count each.
struct DatasetExportCounts {
  int64_t stored = 0;      // stored exchanges in the window (any model)
  int64_t matched = 0;     // answered by the model asked for
  int64_t written = 0;     // examples written
  int64_t tools = 0;       // skipped: tool definitions, calls or results (not trained on)
  int64_t cut = 0;         // skipped: the answer was cut (max_tokens) or filtered
  int64_t empty = 0;       // skipped: no answer text
  int64_t unreadable = 0;  // skipped: a stored body that is not what iris writes
  int64_t image_urls = 0;  // written examples still holding an http(s) image URL
  int64_t images = 0;      // images in the written examples
  int64_t redactions = 0;  // strings replaced by [REDACTED]
};

// True when `e` was answered by `model` (provider/model or the bare upstream id).
bool AnsweredBy(const StoredExchange& e, std::string_view model);

enum class ExampleVerdict { kWritten, kTools, kCut, kEmpty, kUnreadable };

// One stored exchange as a JSONL line (without the newline): {"messages": [...the prompt's
// system/user/assistant turns, then the answer as an assistant turn], "id": request id}.
// Images stay as the request held them (data: URLs, or URLs that could not be fetched).
// `out` is set only for kWritten; `counts` gains images, image URLs and redactions.
ExampleVerdict TrainingExample(const StoredExchange& e, const DatasetExportOptions& options,
                               std::string& out, DatasetExportCounts& counts);

// Replaces credentials in `text` with [REDACTED]: the key shapes of OpenAI, Anthropic, iris,
// Google, AWS, GitHub, Hugging Face, Slack, bearer tokens, JWTs and PEM private keys, then
// each of `exact` (non-empty strings of 8 characters or more). Returns how many it replaced.
int RedactSecrets(std::string& text, const std::vector<std::string>& exact);

// Walks the stored exchanges of the window, oldest first, writing one line per example to
// `out`. Errors are the store's or the file's.
Status ExportDataset(Store& store, const DatasetExportOptions& options, std::FILE* out,
                     DatasetExportCounts& counts);

// ExportDataset into the file `out_path`, written beside it and renamed into place (a failed
// export leaves no half file). Writing nothing is NotFound with why: no stored answers in the
// window, none from that model, or every one skipped and for what.
Result<DatasetExportCounts> ExportDatasetFile(Store& store, const DatasetExportOptions& options,
                                              const std::string& out_path);

// One line for a person: what was written and why the rest was skipped.
std::string DescribeExport(const DatasetExportCounts& counts, std::string_view model);

}  // namespace iris::gateway::observe

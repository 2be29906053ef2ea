#include "engine/train/finetune.h"

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>

#include "base/json.h"
#include "base/sha256.h"
#include "engine/model/vision_model.h"

namespace iris::train {

namespace fs = std::filesystem;
namespace json = boost::json;

double CosineLr(double lr, int64_t step, int64_t warmup, int64_t total) {
  if (step < warmup)
    return lr * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  const double progress = static_cast<double>(step - warmup) /
                          static_cast<double>(std::max<int64_t>(1, total - warmup));
  return lr * std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
}

namespace {

// Which base model a checkpoint was trained on: the text model's shapes, types and a sample
// of every matrix's bytes (its first and last 4 KiB), cheap even for the 2.2B.
std::string ModelFingerprint(const model::TextModel& m) {
  Sha256 h;
  auto add = [&](const tensor::TensorView& w) {
    for (int64_t d : w.shape) h.Update(&d, sizeof(d));
    // Weights in panels count as the rows they hold (BF16, F16), as they were hashed when
    // they were held in rows, and so that a run trained under one compute resumes under the
    // other where the values are the same.
    const bool half_panels = tensor::IsHalfPanelType(w.dtype);
    const tensor::DType as_rows = w.dtype == tensor::DType::kBF16p  ? tensor::DType::kBF16
                                  : w.dtype == tensor::DType::kF16p ? tensor::DType::kF16
                                                                    : w.dtype;
    const auto dtype = static_cast<int>(as_rows);
    h.Update(&dtype, sizeof(dtype));
    if (half_panels) {
      const size_t cols = static_cast<size_t>(w.shape[1]);
      const size_t n = static_cast<size_t>(w.num_elements()), k = std::min<size_t>(n, 2048);
      std::vector<uint8_t> rows(4 * k);
      for (size_t i = 0; i < 2 * k; ++i) {
        const size_t at = i < k ? i : n - 2 * k + i;  // the first k values, then the last k
        std::memcpy(&rows[2 * i],
                    static_cast<const uint8_t*>(w.data) +
                        tensor::HalfPanelOffset(w.dtype, cols, at / cols, at % cols),
                    2);
      }
      h.Update(rows.data(), 2 * k);
      h.Update(rows.data() + 2 * k, 2 * k);
      return;
    }
    const size_t n = w.num_bytes(), k = std::min<size_t>(n, 4096);
    const auto* p = static_cast<const uint8_t*>(w.data);
    h.Update(p, k);
    h.Update(p + n - k, k);
  };
  for (const model::TextModel::Layer& l : m.layers()) {
    for (const tensor::TensorView* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) add(*w);
  }
  add(m.lm_head());
  const Sha256Digest d = h.Finish();
  uint64_t v;
  std::memcpy(&v, d.data(), sizeof(v));
  return std::to_string(v);
}

}  // namespace

Result<Finetune> Finetune::Create(runtime::Engine& engine, Dataset train,
                                  std::optional<Dataset> eval, const FinetuneOptions& options,
                                  const std::string& out_dir, bool resume) {
  if (train.examples.empty()) return InvalidArgument(train.path + ": no usable conversations");
  if (options.epochs < 1 && options.max_steps <= 0) {
    return InvalidArgument("--epochs must be at least 1");
  }
  if (options.grad_accum < 1) return InvalidArgument("--grad-accum must be at least 1");
  if (!(options.lr > 0) || !std::isfinite(options.lr)) {
    return InvalidArgument("--lr must be a positive number");
  }
  IRIS_ASSIGN_OR_RETURN(LoraParams lora, LoraParams::Create(engine.text_model().config(),
                                                            options.lora, options.seed));
  IRIS_ASSIGN_OR_RETURN(TextTrainer trainer,
                        TextTrainer::Create(engine.text_model(), engine.compute()));
  Finetune f(engine, std::move(lora), std::move(trainer));
  f.train_ = std::move(train);
  f.eval_ = std::move(eval);
  f.options_ = options;
  f.options_.lora = f.lora_.shape();  // targets spelled out
  f.out_dir_ = out_dir;
  f.model_fingerprint_ = ModelFingerprint(engine.text_model());
  int64_t steps = 0;  // epochs are shuffled apart and may pack into a step more or fewer
  for (int e = 0; options.max_steps <= 0 && e < options.epochs; ++e) {
    steps += static_cast<int64_t>(f.EpochPlan(e).size());
  }
  f.total_steps_ = options.max_steps > 0 ? options.max_steps : steps;
  f.warmup_ = options.warmup >= 0 ? options.warmup : f.total_steps_ / 20;
  std::error_code ec;
  fs::create_directories(fs::path(out_dir) / "checkpoint", ec);
  if (ec) return Internal("cannot create " + out_dir + ": " + ec.message());
  if (resume) IRIS_RETURN_IF_ERROR(f.LoadCheckpoint());
  return f;
}

std::vector<std::vector<size_t>> Finetune::EpochPlan(int epoch) const {
  const size_t n = train_.examples.size();
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(options_.seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(epoch) + 1);
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng() % i]);  // Fisher-Yates
  // Micro-batches of whole conversations up to batch_tokens, grad_accum of them a step.
  std::vector<std::vector<size_t>> steps;
  std::vector<size_t> step;
  size_t in_batch = 0, batch_tokens = 0;
  for (size_t idx : order) {
    const size_t t = train_.examples[idx].ids.size();
    if (batch_tokens > 0 && batch_tokens + t > options_.batch_tokens) {
      batch_tokens = 0;
      if (++in_batch == static_cast<size_t>(options_.grad_accum)) {
        steps.push_back(std::move(step));
        step.clear();
        in_batch = 0;
      }
    }
    step.push_back(idx);
    batch_tokens += t;
  }
  if (!step.empty()) steps.push_back(std::move(step));
  return steps;
}

void Finetune::Embed(Example& e, std::vector<float>& embeds) {
  const model::TextModel& text = engine_->text_model();
  const size_t dim = static_cast<size_t>(text.model_dim());
  const model::VisionModel* vision = engine_->vision_model();
  if (!e.visuals.empty() && e.features.empty() && vision != nullptr) {
    // Computed once per image (the tower is frozen), then the pixels are let go.
    const size_t tile = static_cast<size_t>(vision->tile_size());
    const size_t per_tile = static_cast<size_t>(vision->tokens_per_tile()) * dim;
    size_t tiles = 0;
    for (const runtime::Visual& v : e.visuals) tiles += static_cast<size_t>(v.pixels.num_tiles);
    e.features.resize(tiles * per_tile);
    size_t at = 0;
    for (const runtime::Visual& v : e.visuals) {
      for (int t = 0; t < v.pixels.num_tiles; ++t, ++at) {
        vision->EncodeTile(engine_->compute(),
                           v.pixels.pixel_values.data() + static_cast<size_t>(t) * 3 * tile * tile,
                           nullptr, e.features.data() + at * per_tile);
      }
    }
    e.visuals.clear();
    e.visuals.shrink_to_fit();
  }
  embeds.resize(e.ids.size() * dim);
  text.Embed(e.ids, embeds.data());
  if (!e.features.empty()) {
    // (MakeExample checked that the placeholders and the images agree.)
    (void)model::MergeImageFeatures(e.ids, engine_->config().image_token_id, e.features, dim,
                                    embeds.data());
  }
}

double Finetune::EvalLoss(Dataset& data) {
  double sum = 0;
  size_t tokens = 0;
  std::vector<float> embeds;
  for (Example& e : data.examples) {
    Embed(e, embeds);
    const SequenceLoss l =
        trainer_.Run(engine_->compute(), embeds.data(), e.labels, &lora_, 0.0f, false);
    sum += l.sum;
    tokens += l.tokens;
  }
  return tokens ? sum / static_cast<double>(tokens) : 0.0;
}

std::string Finetune::OptionsJson() const {
  const FinetuneOptions& o = options_;
  json::array targets;
  for (const std::string& t : o.lora.targets) targets.push_back(json::string(t));
  json::object j{{"rank", o.lora.rank},
                 {"alpha", o.lora.alpha},
                 {"targets", targets},
                 {"lr", o.lr},
                 {"epochs", o.epochs},
                 {"batch_tokens", o.batch_tokens},
                 {"grad_accum", o.grad_accum},
                 {"warmup", o.warmup},
                 {"seed", o.seed},
                 {"max_steps", o.max_steps},
                 {"weight_decay", o.weight_decay},
                 {"max_grad_norm", o.max_grad_norm},
                 {"betas", json::array{o.beta1, o.beta2}},
                 {"eps", o.eps},
                 {"max_seq_tokens", o.max_seq_tokens},
                 {"train_data", std::to_string(train_.fingerprint)},
                 {"model", model_fingerprint_}};
  return json::serialize(j);
}

Status Finetune::SaveCheckpoint() const {
  // One file, renamed into place: the weights, both moments and the step always agree.
  const json::object state{
      {"step", step_}, {"total_steps", total_steps_}, {"options", OptionsJson()}};
  return lora_.SaveState((fs::path(out_dir_) / "checkpoint" / "state.safetensors").string(),
                         json::serialize(state));
}

Status Finetune::LoadCheckpoint() {
  const std::string path = (fs::path(out_dir_) / "checkpoint" / "state.safetensors").string();
  return lora_.LoadState(path, [&](const std::string& text) -> Status {
    IRIS_ASSIGN_OR_RETURN(json::value state, ParseJson(text, path + " (iris_state)"));
    const json::object* o = state.if_object();
    const json::value* step = o ? o->if_contains("step") : nullptr;
    const json::value* opts = o ? o->if_contains("options") : nullptr;
    if (step == nullptr || !step->is_int64() || step->as_int64() < 0 || opts == nullptr ||
        !opts->is_string()) {
      return DataLoss(path + ": not a checkpoint iris wrote");
    }
    if (opts->as_string() != OptionsJson()) {
      // Name what differs: "rank 8 then, 4 now".
      std::string diff;
      auto then = ParseJson(opts->as_string(), "checkpoint options");
      auto now = ParseJson(OptionsJson(), "options");
      if (then.ok() && now.ok() && then->is_object() && now->is_object()) {
        for (const auto& [key, value] : now->as_object()) {
          const json::value* old = then->as_object().if_contains(key);
          if (old != nullptr && *old == value) continue;
          diff += (diff.empty() ? "" : ", ") + std::string(key) + " " +
                  (old ? json::serialize(*old) : std::string("unset")) + " then, " +
                  json::serialize(value) + " now";
        }
      }
      return FailedPrecondition("--resume: the checkpoint in " + out_dir_ +
                                " was made with other options, data or model (" + diff +
                                "); resume with the same flags and files, or choose another --out");
    }
    step_ = step->as_int64();
    return OkStatus();
  });
}

Status Finetune::Run(const std::function<void(const StepReport&)>& on_step,
                     const std::atomic<bool>* stop) {
  const fs::path log_path = fs::path(out_dir_) / "train_log.jsonl";
  // A resumed run keeps the log's lines up to its checkpoint (after a crash the steps past it
  // are run again and must not appear twice).
  std::string kept;
  if (step_ > 0) {
    std::ifstream in(log_path);
    for (std::string line; std::getline(in, line);) {
      auto j = ParseJson(line, "log");
      const json::value* s =
          j.ok() && j->is_object() ? j->as_object().if_contains("step") : nullptr;
      if (s != nullptr && s->is_int64() && s->as_int64() <= step_) kept += line + "\n";
    }
  }
  std::ofstream log(log_path, std::ios::trunc);
  log << kept;
  if (!log) return Internal("cannot write " + log_path.string());
  std::vector<float> embeds;
  // The epoch of the next step and where it starts (epochs may differ in length by a step).
  int epoch = 0;
  int64_t epoch_start = 0;
  std::vector<std::vector<size_t>> plan = EpochPlan(0);
  while (step_ < total_steps_) {
    if (stop != nullptr && stop->load()) break;
    const auto t0 = std::chrono::steady_clock::now();
    while (step_ - epoch_start >= static_cast<int64_t>(plan.size())) {
      epoch_start += static_cast<int64_t>(plan.size());
      plan = EpochPlan(++epoch);
    }
    const int64_t in_epoch = step_ - epoch_start;
    const std::vector<size_t>& batch = plan[static_cast<size_t>(in_epoch)];
    StepReport r;
    r.epoch = epoch + 1;
    for (size_t idx : batch) r.labelled += train_.examples[idx].labelled;
    lora_.ZeroGrad();
    double loss = 0;
    for (size_t idx : batch) {
      Example& e = train_.examples[idx];
      Embed(e, embeds);
      const SequenceLoss l = trainer_.Run(engine_->compute(), embeds.data(), e.labels, &lora_,
                                          1.0f / static_cast<float>(r.labelled), true);
      loss += l.sum;
      r.tokens += e.ids.size();
    }
    r.grad_norm = lora_.GradNorm();
    if (options_.max_grad_norm > 0 && r.grad_norm > options_.max_grad_norm) {
      lora_.ScaleGrad(static_cast<float>(options_.max_grad_norm / (r.grad_norm + 1e-6)));
    }
    r.lr = CosineLr(options_.lr, step_, warmup_, total_steps_);
    lora_.AdamW(r.lr, step_ + 1, options_.beta1, options_.beta2, options_.eps,
                options_.weight_decay);
    ++step_;
    r.step = step_;
    r.total_steps = total_steps_;
    r.loss = loss / static_cast<double>(std::max<size_t>(1, r.labelled));
    const bool epoch_end = in_epoch + 1 == static_cast<int64_t>(plan.size());
    if (eval_ && ((options_.eval_every > 0 && step_ % options_.eval_every == 0) ||
                  (options_.eval_every <= 0 && epoch_end) || step_ == total_steps_)) {
      r.eval_loss = EvalLoss(*eval_);
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    json::object line{{"step", r.step},           {"epoch", r.epoch},
                      {"loss", r.loss},           {"lr", r.lr},
                      {"grad_norm", r.grad_norm}, {"tokens", r.tokens},
                      {"labelled", r.labelled},   {"seconds", r.seconds}};
    if (r.eval_loss) line["eval_loss"] = *r.eval_loss;
    log << json::serialize(line) << "\n" << std::flush;
    if (on_step) on_step(r);
    if (options_.save_every > 0 && step_ % options_.save_every == 0 && step_ < total_steps_) {
      IRIS_RETURN_IF_ERROR(SaveCheckpoint());
    }
  }
  IRIS_RETURN_IF_ERROR(SaveCheckpoint());
  return lora_.SavePeft(out_dir_, options_.base_model);
}

}  // namespace iris::train

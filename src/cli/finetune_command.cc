// `iris finetune`: trains a LoRA adapter for a local SmolVLM2 model on JSONL conversations, with
// a progress bar, a JSON line per step in OUT/train_log.jsonl, checkpoints every --save-every
// steps, and Ctrl-C stopping at the next step boundary (then --resume continues exactly).
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "base/time.h"
#include "cli/commands.h"
#include "engine/hub/cache.h"
#include "engine/runtime/engine.h"
#include "engine/train/finetune.h"
#include "gateway/config/config.h"
#include "gateway/proxy/image_fetch.h"

namespace iris::cli {
namespace {

struct FinetuneFlags {
  std::string model, data, eval, out;
  ExportFlags from_log;  // --from-log MODEL: the data comes from the request log
  train::FinetuneOptions o;
  std::string targets;  // comma-separated
  std::string bad_lines = "fail";
  size_t max_seq_tokens = 0;
  int threads = 0;
  std::string compute;
  bool resume = false, pull = false, offline = false;
};

std::atomic<bool> g_stop{false};

extern "C" void OnInterrupt(int) {
  if (g_stop.exchange(true)) std::_Exit(130);  // a second Ctrl-C stops at once
}

std::string Clock(double seconds) {
  const int s = static_cast<int>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%d:%02d", s / 60, s % 60);
  }
  return buf;
}

// Reports a dataset's left-out lines; false when they are fatal.
bool ReportProblems(const train::Dataset& d, const std::string& policy) {
  if (d.problems.empty()) return true;
  const size_t shown = std::min<size_t>(d.problems.size(), 10);
  for (size_t i = 0; i < shown; ++i) {
    std::fprintf(stderr, "  %s:%zu: %s\n", d.path.c_str(), d.problems[i].line,
                 d.problems[i].message.c_str());
  }
  if (d.problems.size() > shown) {
    std::fprintf(stderr, "  ... and %zu more\n", d.problems.size() - shown);
  }
  if (policy == "skip") {
    std::fprintf(stderr, "iris finetune: %zu line(s) of %s left out (--bad-lines skip)\n",
                 d.problems.size(), d.path.c_str());
    return true;
  }
  PrintError("finetune", std::to_string(d.problems.size()) + " line(s) of " + d.path +
                             " cannot be used (listed above); fix them, or pass --bad-lines "
                             "skip to train without them");
  return false;
}

// Image URLs in the data: fetched under --config's image_fetch policy (its hosts, addresses,
// proxy, size and time), else the default one (public addresses only, direct, 10 MiB, 10 s),
// and cached, so a resumed run and the next epoch see the same bytes. --offline: the cache
// only. The configuration is read at the first URL (data without URLs never needs it).
std::function<Result<std::string>(const std::string&)> ImageUrlFetcher(std::string config_path,
                                                                       bool offline) {
  namespace gw = gateway;
  struct Fetcher {
    gw::config::ImageFetchConfig policy;
    gw::upstream::ClientOptions client;
  };
  auto ready = std::make_shared<std::optional<Result<Fetcher>>>();
  auto make = [config_path]() -> Result<Fetcher> {
    Fetcher f;
    if (!config_path.empty()) {
      IRIS_ASSIGN_OR_RETURN(
          auto config, gw::config::LoadConfigFile(config_path, gw::config::ProcessEnvironment()));
      f.policy = config->image_fetch;
    }
    gw::upstream::ClientOptions base;
    if (f.policy.use_proxy) {
      IRIS_ASSIGN_OR_RETURN(base.proxy, gw::upstream::ProxySettings::FromEnv(::getenv));
    }
    f.client = gw::proxy::ImageFetchClientOptions(f.policy, base);
    return f;
  };
  return [ready, make, offline,
          dir = gw::proxy::DefaultImageCacheDir()](const std::string& url) -> Result<std::string> {
    if (!ready->has_value()) *ready = make();
    const Result<Fetcher>& f = **ready;
    if (!f.ok()) return Status(f.status().code(), "--config: " + f.status().message());
    return gw::proxy::FetchImageCached(f->policy, f->client, dir, url, offline);
  };
}

int Finetune(FinetuneFlags f) {
  const auto t0 = SteadyClock::now();
  auto model_dir = FindModel(f.model, f.pull, f.offline);
  if (!model_dir.ok()) {
    PrintError("finetune", model_dir.status().message());
    return 1;
  }
  runtime::EngineOptions eo;
  eo.threads = f.threads;
  eo.compute = f.compute;
  auto engine = runtime::Engine::Load(*model_dir, eo);
  if (!engine.ok()) {
    PrintError("finetune", engine.status().message());
    return 1;
  }
  if (!f.from_log.model.empty()) {
    // Exported once into OUT: a resumed run trains on the same examples, whatever the gateway
    // stored since.
    f.data = (std::filesystem::path(f.out) / "from-log.jsonl").string();
    std::error_code ec;
    if (f.resume && std::filesystem::exists(f.data, ec)) {
      std::fprintf(stderr, "iris finetune: --resume: training on %s as exported the first time\n",
                   f.data.c_str());
    } else {
      std::filesystem::create_directories(f.out, ec);
      if (ec) {
        PrintError("finetune", "cannot create " + f.out + ": " + ec.message());
        return 1;
      }
      Result<int64_t> exported = ExportTrainingData(f.from_log, f.data);
      if (!exported.ok()) {
        PrintError("finetune", exported.status().message());
        return 1;
      }
    }
  }
  train::DatasetOptions dopt;
  dopt.max_tokens = f.max_seq_tokens;
  dopt.fetch_url = ImageUrlFetcher(f.from_log.config_path, f.offline);
  auto train = train::LoadDataset(f.data, **engine, dopt);
  if (!train.ok()) {
    PrintError("finetune", train.status().message());
    return 1;
  }
  if (!ReportProblems(*train, f.bad_lines)) return 1;
  std::optional<train::Dataset> eval;
  if (!f.eval.empty()) {
    auto e = train::LoadDataset(f.eval, **engine, dopt);
    if (!e.ok()) {
      PrintError("finetune", e.status().message());
      return 1;
    }
    if (!ReportProblems(*e, f.bad_lines)) return 1;
    eval = std::move(e).value();
  }
  std::stringstream ts(f.targets);
  for (std::string t; std::getline(ts, t, ',');) {
    if (!t.empty()) f.o.lora.targets.push_back(t);
  }
  f.o.base_model = hub::ExpandShortName(f.model);  // a repo id, not iris's short name
  f.o.max_seq_tokens = f.max_seq_tokens;
  const size_t conversations = train->examples.size(), tokens = train->tokens(),
               labelled = train->labelled();
  auto run = train::Finetune::Create(**engine, std::move(train).value(), std::move(eval), f.o,
                                     f.out, f.resume);
  if (!run.ok()) {
    PrintError("finetune", run.status().message());
    return 1;
  }
  std::fprintf(
      stderr,
      "iris finetune: %zu conversations, %zu tokens (%zu to learn); LoRA rank %d on "
      "%zu layers, %zu parameters; %lld steps%s; %d threads\n",
      conversations, tokens, labelled, f.o.lora.rank, run->lora().params().size(),
      run->trainable_parameters(), static_cast<long long>(run->total_steps()),
      run->step() > 0 ? (" (resuming after step " + std::to_string(run->step()) + ")").c_str() : "",
      (*engine)->threads());
  if (run->step() >= run->total_steps()) {
    std::fprintf(stderr,
                 "iris finetune: already finished: step %lld of %lld; the adapter is in %s\n",
                 static_cast<long long>(run->step()), static_cast<long long>(run->total_steps()),
                 f.out.c_str());
    std::printf("%s\n", f.out.c_str());
    return 0;
  }
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  const bool tty = isatty(STDERR_FILENO) == 1;
  const int64_t first = run->step();
  const auto start = SteadyClock::now();
  auto last_print = start;
  double tokens_done = 0, last_loss = 0;
  std::optional<double> last_eval;
  Status s = run->Run(
      [&](const train::StepReport& r) {
        tokens_done += static_cast<double>(r.tokens);
        last_loss = r.loss;
        if (r.eval_loss) last_eval = r.eval_loss;
        const double elapsed = SecondsSince(start);
        const double per_step = elapsed / static_cast<double>(r.step - first);
        const double eta = per_step * static_cast<double>(r.total_steps - r.step);
        const auto now = SteadyClock::now();
        if (!tty && r.step != r.total_steps && now - last_print < std::chrono::seconds(10)) return;
        last_print = now;
        const int width = 24;
        const int filled = static_cast<int>(width * r.step / std::max<int64_t>(1, r.total_steps));
        char eval_text[32] = "";
        if (last_eval) std::snprintf(eval_text, sizeof(eval_text), " eval %.4f", *last_eval);
        std::fprintf(
            stderr, "%sstep %lld/%lld [%s%s] epoch %d loss %.4f%s lr %.2e %.0f tok/s ETA %s%s",
            tty ? "\r" : "", static_cast<long long>(r.step), static_cast<long long>(r.total_steps),
            std::string(static_cast<size_t>(filled), '#').c_str(),
            std::string(static_cast<size_t>(width - filled), '.').c_str(), r.epoch, r.loss,
            eval_text, r.lr, tokens_done / elapsed, Clock(eta).c_str(), tty ? "\033[K" : "\n");
        std::fflush(stderr);
      },
      &g_stop);
  if (tty) std::fputc('\n', stderr);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (!s.ok()) {
    PrintError("finetune", s.message());
    return 1;
  }
  if (run->step() < run->total_steps()) {
    std::fprintf(stderr,
                 "iris finetune: stopped after step %lld of %lld; the adapter so far is in %s. "
                 "Continue with the same command and --resume.\n",
                 static_cast<long long>(run->step()), static_cast<long long>(run->total_steps()),
                 f.out.c_str());
    return 130;
  }
  std::fprintf(stderr,
               "iris finetune: done in %s: loss %.4f%s; adapter in %s (iris run --model %s "
               "--adapter %s)\n",
               Clock(SecondsSince(t0)).c_str(), last_loss,
               last_eval ? (", eval " + std::to_string(*last_eval)).c_str() : "", f.out.c_str(),
               f.model.c_str(), f.out.c_str());
  std::printf("%s\n", f.out.c_str());
  return 0;
}

}  // namespace

void AddFinetuneCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "finetune", "Train a LoRA adapter for a local SmolVLM2 model on your conversations");
  auto f = std::make_shared<FinetuneFlags>();
  cmd->add_option("--model", f->model,
                  "the base model: a safetensors directory, Hugging Face repo id in the cache, "
                  "or smolvlm2-256m | smolvlm2-500m | smolvlm2-2.2b")
      ->required();
  auto* data = cmd->add_option("--data", f->data,
                               "training data: JSONL, one {\"messages\": [...]} conversation per "
                               "line (OpenAI chat shape; images as data: URLs or file paths)");
  auto* from_log =
      cmd->add_option("--from-log", f->from_log.model,
                      "train on the answers this model (provider/model) gave through "
                      "store_bodies routes: iris dataset export into OUT/from-log.jsonl, then "
                      "training")
          ->excludes(data);
  cmd->add_option("--since", f->from_log.since,
                  "--from-log: window start (30m, 24h, 7d, "
                  "YYYY-MM-DD or all)")
      ->capture_default_str()
      ->needs(from_log);
  cmd->add_option("--config", f->from_log.config_path,
                  "iris.yaml: the image_fetch policy for image URLs in the data; with "
                  "--from-log its store (and with --redact-keys its keys)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--store", f->from_log.store,
                  "--from-log: the request log (a SQLite path or postgres://...)")
      ->needs(from_log);
  cmd->add_flag("--redact-keys", f->from_log.redact_keys,
                "--from-log: replace credentials in the text with [REDACTED]")
      ->needs(from_log);
  cmd->add_option("--eval", f->eval, "held-out conversations (JSONL) for the eval loss");
  cmd->add_option("--out", f->out,
                  "output directory: the PEFT adapter, checkpoint/ and train_log.jsonl")
      ->required();
  cmd->add_option("--rank", f->o.lora.rank, "LoRA rank r")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--alpha", f->o.lora.alpha, "LoRA alpha (scale alpha / r)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--target-modules", f->targets,
                  "comma-separated text-model layers to adapt (default all: q_proj,k_proj,"
                  "v_proj,o_proj,gate_proj,up_proj,down_proj)");
  cmd->add_option("--lr", f->o.lr, "peak learning rate (AdamW)")->capture_default_str();
  cmd->add_option("--epochs", f->o.epochs, "passes over the data")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--batch-tokens", f->o.batch_tokens,
                  "tokens per micro-batch: whole conversations (at least one) up to this many; "
                  "with --grad-accum it sets how many conversations make a step (they run one "
                  "after another, so it does not change memory)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  cmd->add_option("--grad-accum", f->o.grad_accum, "micro-batches per optimizer step")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--warmup", f->o.warmup,
                  "steps of linear warmup before the cosine decay (-1: 5% of the steps)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 40));
  cmd->add_option("--seed", f->o.seed, "seed of the adapter's initialisation and data order")
      ->capture_default_str();
  cmd->add_option("--max-steps", f->o.max_steps, "stop after this many steps (0: --epochs decides)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd->add_option("--weight-decay", f->o.weight_decay, "AdamW's decoupled weight decay")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--max-grad-norm", f->o.max_grad_norm, "clip the gradient norm (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e9));
  cmd->add_option("--save-every", f->o.save_every, "steps between checkpoints (0: at the end)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd->add_option("--eval-every", f->o.eval_every, "steps between eval passes (0: each epoch)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd->add_option("--max-seq-tokens", f->max_seq_tokens,
                  "leave out longer conversations (0: the model's context)")
      ->capture_default_str();
  cmd->add_option("--bad-lines", f->bad_lines,
                  "lines that cannot be used (reported by line number): fail, or skip them")
      ->capture_default_str()
      ->check(CLI::IsMember({"fail", "skip"}));
  cmd->add_flag("--resume", f->resume,
                "continue from OUT/checkpoint (same flags and data; bit-identical results)");
  cmd->add_option("--compute", f->compute,
                  "the model's products: exact (f32, the default) or bf16 (bf16 inputs, f32 "
                  "sums; AVX512-BF16 CPUs; the adapter trained this way is for any compute)")
      ->check(CLI::IsMember({"exact", "bf16"}));
  cmd->add_option("--threads", f->threads, "compute threads (0 = all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  cmd->add_flag("--pull", f->pull, "download the model first when it is not in the cache");
  cmd->add_flag("--offline", f->offline,
                "never use the network: the model (as HF_HUB_OFFLINE=1) and image URLs from "
                "the caches");
  cmd->callback([f, &exit_code] {
    if (f->data.empty() && f->from_log.model.empty()) {
      PrintError("finetune", "give the training data: --data FILE.jsonl, or --from-log MODEL");
      exit_code = 2;
      return;
    }
    exit_code = Finetune(*f);
  });
}

}  // namespace iris::cli

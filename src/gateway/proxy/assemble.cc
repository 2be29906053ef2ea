#include "gateway/proxy/assemble.h"

#include <sys/resource.h>

#include <algorithm>
#include <filesystem>

#include "engine/runtime/engine.h"
#include "gateway/proxy/image_fetch.h"

namespace iris::gateway::proxy {

namespace {

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.
int64_t RaiseDescriptorLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = std::min<rlim_t>(lim.rlim_max, rlim_t{1} << 20);
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur == RLIM_INFINITY ? (int64_t{1} << 20) : static_cast<int64_t>(lim.rlim_cur);
}

Result<std::unique_ptr<providers::LocalProvider>> LoadLocal(const config::Config& config,
                                                            const AssembleFlags& flags) {
  // providers.local of the configuration, or its defaults.
  const config::ProviderConfig* local = config.FindLocal();
  const config::ProviderConfig settings = local != nullptr ? *local : config::ProviderConfig{};
  runtime::EngineOptions eo;
  eo.threads = flags.engine_threads > 0 ? flags.engine_threads : settings.threads;
  eo.mmproj = flags.local_mmproj;
  eo.weights = flags.local_weights;
  eo.compute = !flags.local_compute.empty() ? flags.local_compute : settings.compute;
  eo.kv_cache_dtype =
      !flags.local_kv_cache_dtype.empty() ? flags.local_kv_cache_dtype : settings.kv_cache_dtype;
  auto engine = runtime::Engine::Load(flags.local_model_dir, eo);
  if (!engine.ok()) {
    return Status(engine.status().code(),
                  "local model " + flags.local_model_dir + ": " + engine.status().message());
  }
  providers::LocalOptions lo;
  lo.model_name = flags.local_model_name;
  lo.max_queue = static_cast<size_t>(settings.max_queue);
  lo.max_batch = static_cast<size_t>(settings.max_batch);
  lo.step_tokens = static_cast<size_t>(settings.step_tokens);
  lo.kv_cache_mb = static_cast<size_t>(settings.kv_cache_mb);
  lo.max_images = settings.max_images;
  lo.max_image_pixels = static_cast<uint64_t>(settings.max_image_pixels);
  lo.max_request_pixels = settings.max_request_pixels;
  for (const auto& [name, dir] : flags.local_adapter_dirs) {
    auto adapter = (*engine)->LoadAdapter(dir);
    if (!adapter.ok()) {
      return Status(adapter.status().code(),
                    "local adapter " + name + " (" + dir + "): " + adapter.status().message());
    }
    lo.adapters[name] = std::move(adapter).value();
  }
  return std::make_unique<providers::LocalProvider>(std::move(engine).value(), lo);
}

observe::ScrapeSources Gauges(const Assembly& a) {
  observe::ScrapeSources sources;
  sources.breaker_states = [gateway = a.gateway.get()] {
    std::vector<std::pair<std::string, int>> states;
    for (const auto& [target, state] : gateway->breakers().Snapshot()) {
      states.emplace_back(target, state == routing::BreakerState::kClosed     ? 0
                                  : state == routing::BreakerState::kHalfOpen ? 1
                                                                              : 2);
    }
    return states;
  };
  sources.http = [server = a.server.get()] {
    const auto s = server->stats();
    return observe::HttpGauges{s.connections_open, s.requests_in_flight};
  };
  if (a.request_log) {
    sources.request_log = [l = a.request_log.get()] {
      const auto s = l->stats();
      return observe::RequestLogGauges{s.queued, s.dropped, s.written, s.bodies_dropped, s.summed};
    };
  }
  if (a.access) {
    sources.key_spend = [access = a.access.get()] { return access->SpendGauges(); };
    sources.shared_state = [access = a.access.get()] {
      return std::pair<bool, int64_t>(access->StateUp(),
                                      static_cast<int64_t>(access->PendingSettles()));
    };
  }
  if (a.local) {
    sources.local_engine = [p = a.local.get()] {
      const auto& s = p->stats();
      observe::LocalEngineGauges g;
      g.queue_depth = s.queued.load();
      g.running = s.running.load();
      g.output_tokens = s.output_tokens.load();
      g.decode_tokens_per_second = s.last_decode_tokens_per_s.load();
      g.kv_blocks_in_use = s.kv_blocks_in_use.load();
      g.kv_blocks_total = s.kv_blocks_total.load();
      g.kv_block_bytes = s.kv_block_bytes.load();
      g.prefix_hit_tokens = s.prefix_hit_tokens.load();
      g.image_cache_hits = s.image_cache_hits.load();
      g.image_cache_misses = s.image_cache_misses.load();
      g.batch_sequences =
          observe::SnapshotOfCounts(observe::LocalBatchBounds(), s.steps_by_sequences, 1.0);
      g.step_seconds =
          observe::SnapshotOfCounts(observe::LocalStepSecondsBounds(), s.steps_by_ms, 1000.0);
      // (The counts' sum takes a step over a second as 1.001 s: the exact sum is kept instead.)
      g.step_seconds.sum = s.step_seconds.load();
      return g;
    };
  }
  return sources;
}

}  // namespace

void ShareBreakers(routing::BreakerRegistry& breakers, access::SharedState& state) {
  const auto steady_now = SteadyClock::now();
  const int64_t unix_now = NowUnixMs();
  auto to_unix = [&](routing::TimePoint t) {
    return unix_now + std::chrono::duration_cast<std::chrono::milliseconds>(t - steady_now).count();
  };
  for (const auto& [target, until] : breakers.OpenUntil(steady_now)) {
    if (!state.PublishOpenBreaker(target, to_unix(until)).ok()) return;
  }
  auto open = state.OpenBreakers(unix_now);
  if (!open.ok()) return;
  for (const auto& [target, until_ms] : *open) {
    breakers.Get(target)->ForceOpen(steady_now + std::chrono::milliseconds(until_ms - unix_now));
  }
}

Result<std::unique_ptr<Assembly>> AssembleGateway(std::shared_ptr<const config::Config> config,
                                                  const AssembleFlags& flags) {
  auto a = std::make_unique<Assembly>();
  if (!flags.listen.empty()) {
    auto addr = config::ParseListenAddress(flags.listen);
    if (!addr.ok()) return InvalidArgument("--listen: " + addr.status().message());
    // The gateway checks Host headers against the address it really listens on.
    auto copy = std::make_shared<config::Config>(*config);
    copy->server.listen = *addr;
    config = std::move(copy);
  }
  a->config = config;

  http::ServerOptions& so = a->server_options;
  so.host = config->server.listen.host;
  so.port = config->server.listen.port;
  // Every client connection may hold an upstream one too: the descriptor limit is raised to
  // its hard maximum, and connections are capped below it (idle ones closed first).
  a->descriptor_limit = RaiseDescriptorLimit();
  so.max_connections =
      config->server.max_connections > 0
          ? config->server.max_connections
          : static_cast<int>(std::max<int64_t>(64, (a->descriptor_limit - 128) / 2));
  so.threads = flags.threads > 0 ? flags.threads : config->server.threads;
  so.max_body_bytes = static_cast<size_t>(config->server.max_body_bytes);
  so.header_timeout = config->server.header_timeout;
  so.body_timeout = config->server.body_timeout;
  so.idle_timeout = config->server.idle_timeout;

  // The request log: --db, else the config's `store`; "none" turns it off (the metrics still
  // count every request).
  a->store = !flags.db.empty() ? flags.db : config->store;
  if (a->store != "none") {
    auto log = observe::RequestLog::Open(a->store);
    if (!log.ok()) {
      return Status(log.status().code(), "request log: " + log.status().message());
    }
    a->request_log = std::move(log).value();
  }
  if (!flags.local_model_dir.empty()) {
    IRIS_ASSIGN_OR_RETURN(a->local, LoadLocal(*config, flags));
  }

  access::Access::Options ao;
  ao.config = config;
  ao.store = a->store;
  IRIS_ASSIGN_OR_RETURN(a->access, access::Access::Start(std::move(ao)));

  auto gateway_slot = std::make_shared<std::weak_ptr<Gateway>>();
  if (a->local) {
    tuning::JobsOptions jo;
    jo.model_dir = flags.local_model_dir;
    jo.mmproj = flags.local_mmproj;
    jo.base_model = flags.local_base_model.empty() ? flags.local_model_dir : flags.local_base_model;
    jo.adapters_dir =
        !flags.adapters_dir.empty()
            ? flags.adapters_dir
            : (std::filesystem::path(observe::DefaultStorePath()).parent_path() / "adapters")
                  .string();
    jo.store = a->store;
    // The hooks reach the gateway's live configuration (a reload may rotate keys or change
    // image_fetch) through a slot filled once the gateway exists, before any job can start;
    // a job still running while the assembly is torn down finds it empty.
    jo.secrets = [slot = gateway_slot]() -> Result<std::vector<std::string>> {
      const std::shared_ptr<Gateway> gateway = slot->lock();
      if (!gateway) return Status(ErrorCode::kUnavailable, "the server is shutting down");
      return config::OperatorSecrets(*gateway->snapshot()->config);
    };
    jo.fetch_url = [slot = gateway_slot](const std::string& url) -> Result<std::string> {
      const std::shared_ptr<Gateway> gateway = slot->lock();
      if (!gateway) return Status(ErrorCode::kUnavailable, "the server is shutting down");
      const auto snap = gateway->snapshot();
      if (!snap->config->image_fetch.enabled) {
        return Unimplemented("image URLs are not fetched: image_fetch.enabled is off in iris.yaml");
      }
      return FetchImageCached(snap->config->image_fetch, snap->fetch_client, DefaultImageCacheDir(),
                              url, false);
    };
    const config::ProviderConfig* local = config->FindLocal();
    jo.threads = flags.engine_threads > 0 ? flags.engine_threads : local ? local->threads : 0;
    jo.compute = !flags.local_compute.empty() ? flags.local_compute : local ? local->compute : "";
    a->finetune = std::make_unique<tuning::Jobs>(std::move(jo));
  }

  GatewayOptions go;
  go.config = config;
  go.store = a->store;
  go.access = a->access.get();
  go.request_log = a->request_log.get();
  go.local = a->local.get();
  go.finetune = a->finetune.get();
  go.client.proxy = flags.proxy;
  upstream::PrepareTls(go.client);
  a->gateway = std::make_shared<Gateway>(go);
  *gateway_slot = a->gateway;
  a->server = std::make_unique<http::Server>(
      so, [gateway = a->gateway](http::Request& req, http::ResponseWriter& w) {
        return gateway->Handle(req, w);
      });
  a->gateway->metrics().SetSources(Gauges(*a));
  if (!config->state.empty()) {
    // Circuit breakers are shared through the state: what this instance opened is published,
    // and what others opened is opened here, within a refresh interval.
    a->access->SetTick([weak = std::weak_ptr<Gateway>(a->gateway)](access::SharedState& state) {
      std::shared_ptr<Gateway> gateway = weak.lock();
      if (!gateway) return;
      const auto snapshot = gateway->snapshot();  // holds the registry while it is used
      ShareBreakers(*snapshot->breakers, state);
    });
  }
  return a;
}

}  // namespace iris::gateway::proxy

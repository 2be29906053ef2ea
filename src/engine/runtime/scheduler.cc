#include "engine/runtime/scheduler.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <random>

#include "base/check.h"
#include "base/sha256.h"
#include "base/time.h"

namespace iris::runtime {
namespace {

constexpr size_t kBlock = model::KvPool::kBlockTokens;
using Digest = Sha256Digest;

// SHA-256 of a visual's preprocessed pixels and layout: what its features depend on.
Digest VisualDigest(const Visual& v) {
  const int64_t layout[4] = {v.pixels.num_tiles, v.pixels.tile_size, v.pixels.rows, v.pixels.cols};
  return Sha256()
      .Update(layout, sizeof(layout))
      .Update(v.pixels.pixel_values.data(), v.pixels.pixel_values.size() * sizeof(float))
      .Finish();
}

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Length of the longest suffix of `text` that is a proper prefix of a stop string: that
// much output is held back until the next token decides.
size_t HeldBack(std::string_view text, const std::vector<std::string>& stops) {
  size_t held = 0;
  for (const std::string& s : stops) {
    if (s.empty()) continue;
    for (size_t n = std::min(s.size() - 1, text.size()); n > held; --n) {
      if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
        held = n;
        break;
      }
    }
  }
  return held;
}

}  // namespace

// Image and video features by the digest of their pixels, least recently used first out.
class Scheduler::FeatureCache {
 public:
  explicit FeatureCache(size_t max_bytes) : max_bytes_(max_bytes) {}
  std::shared_ptr<const std::vector<float>> Find(const Digest& d) {
    auto it = map_.find(d);
    if (it == map_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second.features;
  }
  void Put(const Digest& d, std::shared_ptr<const std::vector<float>> f) {
    const size_t bytes = f->size() * sizeof(float);
    if (bytes > max_bytes_ || map_.count(d)) return;
    while (bytes_ + bytes > max_bytes_) {
      auto victim = map_.find(lru_.back());
      bytes_ -= victim->second.features->size() * sizeof(float);
      map_.erase(victim);
      lru_.pop_back();
    }
    lru_.push_front(d);
    map_.emplace(d, Entry{std::move(f), lru_.begin()});
    bytes_ += bytes;
  }

 private:
  struct Entry {
    std::shared_ptr<const std::vector<float>> features;
    std::list<Digest>::iterator lru;
  };
  size_t max_bytes_;
  size_t bytes_ = 0;
  std::map<Digest, Entry> map_;
  std::list<Digest> lru_;
};

// Full KV blocks of prompts already run, found by what their positions hold and by the
// block before them, so a hit is exact: the same tokens (and image features) at the same
// positions after the same prefix. The cache holds a reference to each block; blocks only it
// holds are evicted, least recently used first, when a new sequence needs room.
class Scheduler::PrefixCache {
 public:
  explicit PrefixCache(model::KvPool& pool) : pool_(pool), seed_(std::random_device{}()) {}
  ~PrefixCache() {
    for (auto& [key, e] : map_) pool_.Release(e.block);
  }

  // The cached blocks that begin `keys` (at most max_blocks); *serial: the last one's serial
  // (0 when none matched), to register the blocks that follow.
  std::vector<int32_t> Match(std::span<const uint64_t> keys, size_t max_blocks, uint64_t* serial) {
    std::vector<int32_t> blocks;
    uint64_t parent = 0;
    for (size_t b = 0; b < max_blocks && (b + 1) * kBlock <= keys.size(); ++b) {
      auto it = map_.find(MakeKey(parent, keys.subspan(b * kBlock, kBlock)));
      if (it == map_.end()) break;
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      blocks.push_back(it->second.block);
      parent = it->second.serial;
    }
    *serial = parent;
    return blocks;
  }

  // Registers a full block after `parent`; returns the serial of the entry for these keys
  // (an existing one if another sequence registered the same content first).
  uint64_t Insert(uint64_t parent, std::span<const uint64_t> keys, int32_t block) {
    Key key = MakeKey(parent, keys);
    auto it = map_.find(key);
    if (it != map_.end()) return it->second.serial;
    pool_.Retain(block);
    lru_.push_front(key);
    const uint64_t serial = next_serial_++;
    map_.emplace(std::move(key), Entry{block, serial, lru_.begin()});
    return serial;
  }

  // Drops least recently used entries whose block nobody else holds until `blocks` blocks
  // were freed or none is left to drop. Returns the number freed.
  size_t Evict(size_t blocks) {
    size_t freed = 0;
    for (auto it = lru_.end(); freed < blocks && it != lru_.begin();) {
      --it;
      auto e = map_.find(*it);
      if (pool_.refs(e->second.block) != 1) continue;
      pool_.Release(e->second.block);
      map_.erase(e);
      it = lru_.erase(it);
      ++freed;
    }
    return freed;
  }

 private:
  struct Key {
    uint64_t parent;
    std::array<uint64_t, kBlock> keys;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    uint64_t seed;
    size_t operator()(const Key& k) const {
      uint64_t h = Mix(seed ^ k.parent);
      for (uint64_t x : k.keys) h = Mix(h ^ x);
      return static_cast<size_t>(h);
    }
  };
  struct Entry {
    int32_t block;
    uint64_t serial;  // never reused: an entry after an evicted one can never match again
    std::list<Key>::iterator lru;
  };
  Key MakeKey(uint64_t parent, std::span<const uint64_t> keys) const {
    Key k{parent, {}};
    std::copy(keys.begin(), keys.end(), k.keys.begin());
    return k;
  }

  model::KvPool& pool_;
  uint64_t seed_;
  uint64_t next_serial_ = 1;
  std::list<Key> lru_;
  std::unordered_map<Key, Entry, KeyHash> map_{16, KeyHash{seed_}};
};

struct Scheduler::Sequence {
  SequenceRequest request;
  size_t budget = 0;            // tokens it may generate
  std::vector<uint64_t> keys;   // what each prompt position holds (prefix matching)
  std::vector<Digest> digests;  // per visual
  std::optional<model::KvCache> cache;
  // Vision: features of every visual in prompt order, filled tile by tile.
  std::vector<float> features;
  size_t visual = 0, tile = 0, features_done = 0;           // progress through the visuals
  std::optional<model::VisionModel::TileState> tile_state;  // the tile under way
  bool needs_vision = false;
  std::vector<float> embeds;   // [prompt, dim], filled once the features are in
  size_t prefilled = 0;        // prompt positions in the cache
  size_t registered = 0;       // prompt positions whose blocks are in the prefix cache
  uint64_t prefix_serial = 0;  // the prefix cache entry of the last registered block
  // Decoding.
  std::optional<Sampler> sampler;
  std::optional<tokenizer::StreamDecoder> decoder;
  std::vector<int32_t> history;
  int32_t next = -1;  // the sampled token to run next
  std::string text;
  size_t printed = 0;
  bool done = false;
  GenerateResult result;
  SteadyClock::time_point prefill_start{}, decode_start{};
  bool prefill_started = false;
};

Scheduler::Scheduler(Engine& engine, std::shared_ptr<model::KvPool> pool, SchedulerOptions options)
    : engine_(engine),
      pool_(std::move(pool)),
      options_(options),
      features_(std::make_unique<FeatureCache>(options.image_cache_bytes)),
      prefixes_(options.prefix_cache ? std::make_unique<PrefixCache>(*pool_) : nullptr) {
  options_.max_batch = std::max<size_t>(options_.max_batch, 1);
  options_.prefill_chunk = std::max<size_t>(options_.prefill_chunk, 1);
  options_.min_prefill = std::clamp<size_t>(options_.min_prefill, 1, options_.prefill_chunk);
  options_.vision_layers = std::max<size_t>(options_.vision_layers, 1);
}

Scheduler::~Scheduler() { CancelAll(Status(ErrorCode::kUnavailable, "the engine is stopping")); }

Status Scheduler::Add(SequenceRequest request) {
  const GenerateOptions& o = request.options;
  IRIS_RETURN_IF_ERROR(o.sampling.Validate());
  const std::vector<int32_t>& prompt = request.prompt;
  if (prompt.empty()) return InvalidArgument("the prompt is empty");
  if (o.max_tokens < 0) return InvalidArgument("max_tokens must be >= 0");
  const model::ModelConfig& config = engine_.config();
  const int vocab = config.text.vocab_size;
  size_t image_tokens = 0;
  for (int32_t id : prompt) {
    if (id < 0 || id >= vocab) {
      return InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary");
    }
    image_tokens += id == config.image_token_id ? 1 : 0;
  }
  const size_t max_pos = static_cast<size_t>(config.text.max_position_embeddings);
  if (prompt.size() >= max_pos) {
    return OutOfRange("the prompt has " + std::to_string(prompt.size()) +
                      " tokens; the model's context is " + std::to_string(max_pos));
  }
  // Visuals must fill the image tokens exactly.
  const model::VisionModel* vision = engine_.vision_model();
  size_t feature_rows = 0;
  if (!request.visuals.empty()) {
    if (!vision) return FailedPrecondition("this model has no vision tower");
    const size_t tile = static_cast<size_t>(vision->tile_size());
    for (const Visual& v : request.visuals) {
      const media::ProcessedImage& im = v.pixels;
      if (im.num_tiles <= 0) return InvalidArgument("an image or video has no tiles");
      if (static_cast<size_t>(im.tile_size) != tile ||
          im.pixel_values.size() != static_cast<size_t>(im.num_tiles) * 3 * tile * tile) {
        return InvalidArgument("an image was preprocessed for " + std::to_string(im.tile_size) +
                               " px tiles; this model takes " + std::to_string(tile));
      }
      feature_rows +=
          static_cast<size_t>(im.num_tiles) * static_cast<size_t>(vision->tokens_per_tile());
    }
  }
  if (feature_rows != image_tokens) {
    return InvalidArgument("the prompt has " + std::to_string(image_tokens) +
                           " image tokens but its images give " + std::to_string(feature_rows) +
                           " feature rows");
  }
  size_t budget = std::min<size_t>(static_cast<size_t>(o.max_tokens), max_pos - prompt.size());
  // The whole sequence must fit the pool; a long answer is cut to what fits.
  if (pool_->max_blocks() != 0) {
    const size_t room = pool_->max_blocks() * kBlock;
    if (prompt.size() + 1 > room) {
      return OutOfRange("the prompt has " + std::to_string(prompt.size()) +
                        " tokens; the KV cache holds " + std::to_string(room) +
                        " positions in all (kv_cache_mb)");
    }
    budget = std::min(budget, room - prompt.size());
  }
  if (waiting_.size() >= options_.max_queue) {
    return ResourceExhausted("the engine's queue is full (" + std::to_string(options_.max_queue) +
                             " waiting)");
  }

  auto s = std::make_unique<Sequence>();
  s->budget = budget;
  s->result.prompt_tokens = prompt.size();
  // Prefix keys: a text position holds its token; an image position its visual's digest and
  // its row among that visual's features (the tokens alone are the same for every image).
  s->keys.resize(prompt.size());
  size_t v = 0, row = 0, rows_in_visual = 0;
  for (const Visual& vis : request.visuals) s->digests.push_back(VisualDigest(vis));
  const model::LoraAdapter* adapter = request.options.adapter.get();
  if (adapter != nullptr && adapter->touches_vision()) {
    // Features from an adapted tower are cached apart from the base's.
    for (Digest& d : s->digests) {
      const uint64_t salt = Mix(adapter->serial());
      for (size_t b = 0; b < sizeof(salt); ++b) d[b] ^= static_cast<uint8_t>(salt >> (8 * b));
    }
  }
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] != config.image_token_id) {
      s->keys[i] = static_cast<uint32_t>(prompt[i]);
      continue;
    }
    if (row == rows_in_visual) {  // the next visual starts here
      if (row != 0) ++v;
      row = 0;
      rows_in_visual = static_cast<size_t>(request.visuals[v].pixels.num_tiles) *
                       static_cast<size_t>(vision->tokens_per_tile());
    }
    uint64_t d;
    std::memcpy(&d, s->digests[v].data(), sizeof(d));
    s->keys[i] = (Mix(d ^ Mix(row)) | (uint64_t{1} << 63));  // never a token id
    ++row;
  }
  if (adapter != nullptr) {  // an adapter's keys and values are its own
    const uint64_t salt = Mix(adapter->serial() ^ 0x10a5ull);
    for (uint64_t& k : s->keys) k = Mix(k ^ salt) | (uint64_t{1} << 63);
  }
  for (const Visual& vis : request.visuals) s->result.image_tiles += vis.pixels.num_tiles;
  s->request = std::move(request);
  waiting_.push_back(std::move(s));
  return OkStatus();
}

void Scheduler::Admit() {
  const model::TextModel& text = engine_.text_model();
  const size_t dim = static_cast<size_t>(text.model_dim());
  while (!waiting_.empty() && running_.size() < options_.max_batch) {
    Sequence& s = *waiting_.front();
    const std::vector<int32_t>& prompt = s.request.prompt;
    const size_t total = prompt.size() + s.budget;
    // Shared prefix: whole blocks, leaving at least the last prompt token to run.
    std::vector<int32_t> shared;
    uint64_t serial = 0;
    if (prefixes_) shared = prefixes_->Match(s.keys, (prompt.size() - 1) / kBlock, &serial);
    const size_t need = (total + kBlock - 1) / kBlock - shared.size();
    if (pool_->available() < need && prefixes_) {
      // Cached prefixes give way to a sequence; the blocks it shares are not candidates.
      for (int32_t b : shared) pool_->Retain(b);
      prefixes_->Evict(need - pool_->available());
      for (int32_t b : shared) pool_->Release(b);
    }
    if (pool_->available() < need) break;  // first come, first served: the rest wait too
    model::KvCache cache(pool_);
    cache.AdoptPrefix(shared);
    bool reserved = cache.Reserve(total);
    if (!reserved && prefixes_) {
      // The budget had room but the machine gave no memory for a new slab: cached prefixes
      // give back the blocks still wanted (those this sequence shares stay held: an
      // evicted block is one a new slab need not hold), then one more try.
      prefixes_->Evict(cache.BlocksToReserve(total));
      reserved = cache.Reserve(total);
    }
    if (!reserved) {
      if (!running_.empty()) break;  // their blocks come back as they end
      Finish(s, Status(ErrorCode::kUnavailable,
                       "the local model has no memory left for the keys and values of " +
                           std::to_string(total) + " positions"));
      waiting_.pop_front();
      continue;
    }
    s.cache.emplace(std::move(cache));
    s.prefilled = shared.size() * kBlock;
    s.registered = s.prefilled;
    s.prefix_serial = serial;
    prefix_hit_tokens_ += static_cast<int64_t>(s.prefilled);
    // Embeddings of the positions still to run; image positions before them are in the
    // shared blocks already, so their visuals are not needed.
    s.embeds.resize(prompt.size() * dim);
    text.Embed(prompt, s.embeds.data(), s.request.options.adapter.get());
    const int32_t image_id = engine_.config().image_token_id;
    s.needs_vision = std::find(prompt.begin() + static_cast<ptrdiff_t>(s.prefilled), prompt.end(),
                               image_id) != prompt.end();
    if (s.needs_vision) {
      s.features.resize(static_cast<size_t>(std::count(prompt.begin(), prompt.end(), image_id)) *
                        dim);
    }
    s.sampler.emplace(s.request.options.sampling);
    s.decoder.emplace(engine_.tokenizer(), /*skip_special=*/true);
    s.history.assign(prompt.begin(), prompt.end());
    s.result.finish_reason = "length";
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

// Advances the first admitted sequence still waiting for features by one tile, or by
// vision_layers encoder layers of it when others are waiting on this step (a cached visual
// takes no tile). Returns true if it did vision work.
bool Scheduler::EncodeOneVisual(bool others_waiting) {
  const model::VisionModel* vision = engine_.vision_model();
  for (auto& sp : running_) {
    Sequence& s = *sp;
    if (!s.needs_vision || s.done) continue;
    const size_t dim = static_cast<size_t>(engine_.text_model().model_dim());
    const size_t tile = static_cast<size_t>(vision->tile_size());
    const size_t per_tile = static_cast<size_t>(vision->tokens_per_tile()) * dim;
    auto t0 = SteadyClock::now();
    bool worked = false;
    while (s.visual < s.request.visuals.size() && !worked) {
      const Visual& v = s.request.visuals[s.visual];
      const size_t tiles = static_cast<size_t>(v.pixels.num_tiles);
      float* out = s.features.data() + s.features_done;
      if (s.tile == 0 && !s.tile_state) {  // not once a tile is under way
        if (auto hit = features_->Find(s.digests[s.visual])) {
          std::copy(hit->begin(), hit->end(), out);
          s.features_done += hit->size();
          ++s.visual;
          ++image_hits_;
          continue;
        }
      }
      worked = true;
      if (!s.tile_state) {
        s.tile_state.emplace(std::move(spare_tile_));
        const model::LoraAdapter* adapter = s.request.options.adapter.get();
        vision->BeginTile(engine_.compute(),
                          v.pixels.pixel_values.data() + s.tile * 3 * tile * tile, *s.tile_state,
                          adapter != nullptr && adapter->touches_vision() ? adapter : nullptr);
      }
      const size_t layers = others_waiting ? options_.vision_layers : vision->num_layers();
      if (!vision->ContinueTile(engine_.compute(), *s.tile_state, layers)) break;
      vision->FinishTile(engine_.compute(), *s.tile_state, nullptr, out + s.tile * per_tile);
      spare_tile_ = std::move(*s.tile_state);  // its buffers serve the next tile
      s.tile_state.reset();
      if (++s.tile == tiles) {
        features_->Put(s.digests[s.visual],
                       std::make_shared<const std::vector<float>>(out, out + tiles * per_tile));
        s.features_done += tiles * per_tile;
        s.tile = 0;
        ++s.visual;
        ++image_misses_;
      }
    }
    s.result.vision_seconds += SecondsSince(t0);
    if (s.visual == s.request.visuals.size()) {
      Status merged = model::MergeImageFeatures(s.request.prompt, engine_.config().image_token_id,
                                                s.features, dim, s.embeds.data());
      s.needs_vision = false;
      std::vector<float>().swap(s.features);
      if (!merged.ok()) Finish(s, merged);
    }
    return worked;
  }
  return false;
}

void Scheduler::Finish(Sequence& s, const Status& status) {
  if (s.done) return;
  s.done = true;
  if (s.decode_start != SteadyClock::time_point{}) {
    s.result.decode_seconds = SecondsSince(s.decode_start);
  }
  if (!s.request.on_done) return;
  if (status.ok()) {
    s.request.on_done(std::move(s.result));
  } else {
    s.request.on_done(status);
  }
}

// Takes the token the logits choose, streams the text it completes, and decides whether the
// sequence ends. The rules of a single generation: eos ends it (not printed), a stop string
// cuts the text and ends it, text that could be the start of a stop string waits.
void Scheduler::Sample(Sequence& s, std::span<float> logits) {
  if (s.request.on_logits) s.request.on_logits(logits);
  const GenerateOptions& o = s.request.options;
  const std::vector<int32_t>& eos = engine_.eos_ids();
  if (s.decode_start == SteadyClock::time_point{}) s.decode_start = SteadyClock::now();
  const int32_t id = s.sampler->Sample(logits, s.history);
  s.result.tokens.push_back(id);
  s.history.push_back(id);
  bool cancelled = false;
  auto emit = [&](size_t upto) {
    if (upto > s.printed) {
      if (s.request.on_text &&
          !s.request.on_text(std::string_view(s.text).substr(s.printed, upto - s.printed))) {
        cancelled = true;
      }
      s.printed = upto;
    }
  };
  auto end = [&](const char* reason, bool flush) {
    if (flush && !cancelled) {
      s.text += s.decoder->Flush();
      emit(s.text.size());
    }
    s.result.finish_reason = reason;
    s.result.text = s.text;
    Finish(s, OkStatus());
  };
  if (o.stop_at_eos && std::find(eos.begin(), eos.end(), id) != eos.end()) {
    end("stop", true);
    return;
  }
  s.text += s.decoder->Push(id);
  for (const std::string& stop : o.stop) {
    if (stop.empty()) continue;
    const size_t from = s.printed > stop.size() ? s.printed - stop.size() : 0;
    const size_t pos = s.text.find(stop, from);
    if (pos != std::string::npos) {
      s.text.resize(pos);
      emit(s.text.size());
      end("stop", false);
      return;
    }
  }
  emit(s.text.size() - HeldBack(s.text, o.stop));
  if (cancelled) {
    end("length", false);  // the caller is gone; what it got is what there is
    return;
  }
  if (s.result.tokens.size() >= s.budget) {
    end("length", true);
    return;
  }
  s.next = id;
}

size_t Scheduler::Step() {
  // Callers that went away free their blocks before anything else runs.
  for (auto& sp : running_) {
    if (sp->request.cancelled && sp->request.cancelled()) {
      sp->result.finish_reason = "length";
      sp->result.text = sp->text;
      Finish(*sp, OkStatus());
    }
  }
  std::erase_if(running_, [](const auto& s) { return s->done; });
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if ((*it)->request.cancelled && (*it)->request.cancelled()) {
      (*it)->result.finish_reason = "length";
      Finish(**it, OkStatus());
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  Admit();
  // Sequences with nothing to generate end at once.
  for (auto& sp : running_) {
    if (sp->budget == 0) {
      sp->result.text.clear();
      Finish(*sp, OkStatus());
    }
  }
  std::erase_if(running_, [](const auto& s) { return s->done; });
  // Others wait on this step when any admitted sequence is past its vision.
  const bool others_waiting =
      std::any_of(running_.begin(), running_.end(), [](const auto& s) { return !s->needs_vision; });
  const bool vision_worked = EncodeOneVisual(others_waiting);
  std::erase_if(running_, [](const auto& s) { return s->done; });

  // Rows: every decoding sequence's next token, then one prompt chunk (the oldest sequence
  // still prefilling), so prompts take turns without stalling the decoders: with decoders,
  // the chunk fills the step up to step_tokens rows (min_prefill at least); alone, it is a
  // whole prefill_chunk.
  const model::TextModel& text = engine_.text_model();
  const size_t dim = static_cast<size_t>(text.model_dim());
  std::vector<model::ForwardChunk> chunks;
  std::vector<Sequence*> owners;
  std::vector<float> decode_embeds;
  size_t decoding = 0;
  for (auto& sp : running_) decoding += sp->next >= 0 ? 1 : 0;
  decode_embeds.resize(decoding * dim);
  size_t di = 0;
  for (auto& sp : running_) {
    Sequence& s = *sp;
    if (s.next < 0) continue;
    const model::LoraAdapter* adapter = s.request.options.adapter.get();
    text.Embed(std::span<const int32_t>(&s.next, 1), decode_embeds.data() + di * dim, adapter);
    chunks.push_back({decode_embeds.data() + di * dim, 1, &*s.cache,
                      model::ForwardChunk::Logits::kLast, adapter});
    owners.push_back(&s);
    ++di;
  }
  for (auto& sp : running_) {
    Sequence& s = *sp;
    const size_t prompt = s.request.prompt.size();
    if (s.next >= 0 || s.needs_vision || s.prefilled >= prompt) continue;
    const size_t room =
        decoding == 0 ? options_.prefill_chunk
                      : std::clamp(options_.step_tokens > decoding ? options_.step_tokens - decoding
                                                                   : size_t{0},
                                   options_.min_prefill, options_.prefill_chunk);
    const size_t n = std::min(room, prompt - s.prefilled);
    const bool last = s.prefilled + n == prompt;
    if (!s.prefill_started) {
      s.prefill_started = true;
      s.prefill_start = SteadyClock::now();
    }
    chunks.push_back(
        {s.embeds.data() + s.prefilled * dim, n, &*s.cache,
         last ? model::ForwardChunk::Logits::kLast : model::ForwardChunk::Logits::kNone,
         s.request.options.adapter.get()});
    owners.push_back(&s);
    break;
  }
  last_step_sequences_ = chunks.size();
  if (chunks.empty()) return vision_worked ? 1 : 0;

  std::vector<float>& logits = step_logits_;
  text.ForwardBatch(engine_.compute(), chunks, &logits);
  size_t rows = 0;
  const size_t vocab = static_cast<size_t>(text.vocab_size());
  size_t li = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    Sequence& s = *owners[i];
    rows += chunks[i].num_tokens;
    if (s.next < 0) {  // a prompt chunk
      s.prefilled += chunks[i].num_tokens;
      // Full prompt blocks become shareable as soon as they are in the cache.
      if (prefixes_) {
        const std::span<const int32_t> blocks = s.cache->blocks();
        for (size_t b = 0; (b + 1) * kBlock <= s.prefilled; ++b) {
          if ((b + 1) * kBlock <= s.registered) continue;
          s.prefix_serial = prefixes_->Insert(
              s.prefix_serial, std::span<const uint64_t>(s.keys).subspan(b * kBlock, kBlock),
              blocks[b]);
          s.registered = (b + 1) * kBlock;
        }
      }
      if (chunks[i].logits == model::ForwardChunk::Logits::kNone) continue;
      s.result.prefill_seconds = SecondsSince(s.prefill_start);
      std::vector<float>().swap(s.embeds);
    }
    Sample(s, std::span<float>(logits.data() + li * vocab, vocab));
    ++li;
  }
  // Kept for the next step (a fresh 3 MB of logits a step costs page faults), unless a step
  // that wanted many rows' logits left it large.
  if (logits.capacity() * sizeof(float) > kKeepLogitsBytes) std::vector<float>().swap(logits);
  std::erase_if(running_, [](const auto& s) { return s->done; });
  return rows;
}

void Scheduler::CancelAll(const Status& why) {
  for (auto& sp : running_) Finish(*sp, why);
  running_.clear();
  CancelWaiting(why);
}

void Scheduler::CancelWaiting(const Status& why) {
  for (auto& sp : waiting_) Finish(*sp, why);
  waiting_.clear();
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats st;
  st.running = running_.size();
  st.waiting = waiting_.size();
  st.kv_blocks_in_use = pool_->in_use();
  st.kv_blocks_total = pool_->max_blocks();
  st.prefix_hit_tokens = prefix_hit_tokens_;
  st.image_cache_hits = image_hits_;
  st.image_cache_misses = image_misses_;
  return st;
}

}  // namespace iris::runtime

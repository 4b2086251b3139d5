// ContextStore: the memory side. Sessions are live (a Sequence with F16 KV
// by default) or parked (their full chunks in `chunks_`, shared by chain hash
// within an app, compressed as memory runs short, rarely attended chunks
// deeper). Budget order: least compressed first (live, then INT8, INT4, ...),
// then least recently used weighted by QoS.
#include <algorithm>
#include <cstdio>

#include "base/error.h"
#include "context/context.h"
#include "context/store_entries.h"

namespace onellm {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Older and less urgent goes first: a background chunk ages 5x faster than a voice one.
double eviction_score(Clock::time_point last_used, int priority) {
  return (ms_since(last_used) + 1.0) * 50.0 / (10.0 + std::max(0, priority));
}

}  // namespace

ContextStore::ContextStore(const Model& model, const Tokenizer& tokenizer, ThreadPool* pool,
                           const std::string& model_path, ContextOptions options)
    : model_(model), tokenizer_(tokenizer), pool_(pool), options_(std::move(options)) {
  if (options_.chunk_tokens <= 0 || options_.chunk_tokens > 4096)
    throw Error("KV chunk size must be 1..4096 tokens, got " + std::to_string(options_.chunk_tokens));
  model_hash_ = hash_file(model_path);
  stats_.budget_bytes = options_.budget_bytes;
  if (!options_.dir.empty()) {
    try {
      disk_ = std::make_unique<KvChunkStore>(options_.dir, model_hash_);
      stats_.chunks_discarded = disk_->discard_stale();
      if (stats_.chunks_discarded > 0)
        std::fprintf(stderr, "{\"event\":\"kv_chunks_discarded\",\"chunks\":%lld,\"why\":\"other model file or incomplete write\"}\n",
                     static_cast<long long>(stats_.chunks_discarded));
    } catch (const Error& e) {
      disk_.reset();
      stats_.last_error = e.what();
      std::fprintf(stderr, "{\"event\":\"kv_store_unavailable\",\"error\":\"%s\",\"effect\":\"sessions kept in memory only\"}\n",
                   e.what());
    }
  }
  measure_costs();
  writer_ = std::thread([this] { writer_loop(); });
}

ContextStore::~ContextStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  writes_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

ChunkIdentity ContextStore::identity(const std::string& app, const std::string& adapter, uint64_t chain, int64_t pos0,
                                     const int32_t* tokens, int64_t n) const {
  ChunkIdentity id;
  id.model_hash = model_hash_;
  id.adapter = adapter;
  id.app = app;
  id.chain_hash = chain;
  id.pos0 = pos0;
  id.tokens.assign(tokens, tokens + n);
  id.n_layer = model_.config().n_layer;
  id.kv_dim = model_.config().kv_dim();
  return id;
}

// Times recomputing one chunk and loading one from a cold file; restore
// picks the cheaper per chunk. Each cost is the best of a few tries after a
// warm-up: one sample of a sub-millisecond operation is mostly noise (page
// faults, a busy neighbour), and a wrong pick costs every restore until the
// next start.
void ContextStore::measure_costs() {
  constexpr int kTries = 3;
  const int64_t C = options_.chunk_tokens;
  KvCache cache(model_.config(), std::min<int64_t>(C, model_.config().n_ctx_train), options_.kv_type);
  const int64_t n = cache.capacity();
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) tokens[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7 + 1) % model_.config().n_vocab);
  std::vector<float> logits(static_cast<size_t>(model_.config().n_vocab));
  double best_ms = 1e30;
  for (int t = 0; t <= kTries; ++t) {  // t == 0 warms up
    cache.set_size(0);
    auto t0 = Clock::now();
    model_.forward(tokens.data(), n, cache, logits.data(), false, options_.restore_pool);
    if (t > 0) best_ms = std::min(best_ms, ms_since(t0));
  }
  costs_.recompute_ms_per_token = best_ms / static_cast<double>(n);
  costs_.load_ms_per_mb = 1e9;  // no disk: never load
  if (!disk_) return;
  const std::string probe_app = std::string("\x01probe");
  ChunkIdentity id = identity(probe_app, "", 1, 0, tokens.data(), n);
  try {
    std::string image = encode_kv_chunk(id, cache, options_.disk_format);
    disk_->write(probe_app, 1, n, options_.disk_format, image);
    best_ms = 1e30;
    for (int t = 0; t < kTries; ++t) {  // every read is cold (dropped from the page cache)
      auto t1 = Clock::now();
      decode_kv_chunk(disk_->read(probe_app, 1, true), id, cache);
      best_ms = std::min(best_ms, ms_since(t1));
    }
    costs_.load_ms_per_mb = best_ms / (static_cast<double>(image.size()) / 1048576.0);
    disk_->remove(probe_app, 1);
  } catch (const Error& e) {
    stats_.last_error = e.what();
    std::fprintf(stderr, "{\"event\":\"kv_store_write_failed\",\"error\":\"%s\",\"effect\":\"sessions kept in memory only\"}\n",
                 e.what());
  }
}

uint64_t ContextStore::used_bytes_locked() const {
  uint64_t used = 0;
  for (const auto& [key, s] : sessions_)
    if (s->live) used += s->live->kv_cache().bytes();
  for (const auto& [key, c] : chunks_) used += c->image->size();
  return used;
}

void ContextStore::note_peak() {
  stats_.peak_bytes = std::max(stats_.peak_bytes, used_bytes_locked());
}

// Live KV becomes INT8 chunks in memory (shared with identical prefixes of
// the app); the tokens after the last full chunk are dropped (recomputed).
void ContextStore::park(SessionKv& s) {
  const int64_t C = options_.chunk_tokens;
  const KvCache& cache = s.live->kv_cache();
  const std::vector<int32_t>& tokens = s.live->tokens();
  const int64_t n_full = std::min<int64_t>(cache.size(), static_cast<int64_t>(tokens.size())) / C;
  const KvFormat format = std::min(KvFormat::kInt8, options_.deepest_memory_format);
  // The compressed copy exists next to the live cache for a moment; without
  // room for it the session goes straight to disk (or is dropped).
  const uint64_t parked_bytes = static_cast<uint64_t>(
      static_cast<double>(n_full * C * 2 * cache.n_layer() * cache.kv_dim()) * kv_format_bytes_per_value(format)) +
      static_cast<uint64_t>(n_full) * 256;
  const bool keep_in_memory = used_bytes_locked() + parked_bytes <= options_.budget_bytes;
  uint64_t chain = chunk_chain_seed(s.adapter.id);
  for (int64_t i = 0; i < n_full && keep_in_memory; ++i) {
    chain = chunk_chain_hash(chain, tokens.data() + i * C, C);
    const std::string& owner = s.owner(i, C);
    auto& slot = chunks_[owner + '\0' + hex64(chain)];
    if (!slot) {
      slot = std::make_shared<MemoryChunk>();
      slot->app = owner;
      slot->chain = chain;
      slot->format = format;
      slot->deepest = std::min(options_.deepest_memory_format, kv_format_for_attention(cache.attention_score(i * C, C)));
      slot->image = std::make_shared<const std::string>(
          encode_kv_chunk(identity(owner, s.adapter.id, chain, i * C, tokens.data() + i * C, C), cache, format));
      slot->on_disk = static_cast<size_t>(i) < s.saved_chains.size() && s.saved_chains[static_cast<size_t>(i)] == chain;
    }
    slot->priority = std::max(slot->priority, s.priority);
    slot->last_used = s.last_used;
  }
  note_peak();
  s.live.reset();
  s.saved_chains.clear();
}

void ContextStore::enforce_budget(uint64_t extra, std::unique_lock<std::mutex>& lock, bool for_checkout) {
  while (used_bytes_locked() + extra > options_.budget_bytes) {
    // Tier 0: live sessions; then each compressed format; the deepest format leaves memory.
    int best_tier = 1 << 20;
    double best_score = -1;
    SessionKv* live_victim = nullptr;
    std::map<std::string, std::shared_ptr<MemoryChunk>>::iterator chunk_victim = chunks_.end();
    for (auto& [key, s] : sessions_) {
      if (!s->live || s->pinned || s->writes_pending > 0) continue;
      const double score = eviction_score(s->last_used, s->priority);
      if (best_tier > 0 || score > best_score) {
        best_tier = 0;
        best_score = score;
        live_victim = s.get();
      }
    }
    if (!live_victim)
      for (auto it = chunks_.begin(); it != chunks_.end(); ++it) {
        const int tier = 1 + static_cast<int>(it->second->format);
        const double score = eviction_score(it->second->last_used, it->second->priority);
        if (tier < best_tier || (tier == best_tier && score > best_score)) {
          best_tier = tier;
          best_score = score;
          chunk_victim = it;
        }
      }
    if (live_victim) {
      park(*live_victim);
      continue;
    }
    if (chunk_victim == chunks_.end()) {
      // Sessions with queued writes can be parked once written: the only
      // case where memory waits for the disk (slower than the switching rate).
      if (!writes_.empty()) {
        stats_.waits_for_writes++;
        writes_done_cv_.wait(lock);
        continue;
      }
      // Only pinned sessions are left: the requests in flight. A new one
      // waits for others to finish (their checkin frees or parks memory);
      // requests are never failed for memory, so one that does not fit even
      // alone runs over the budget.
      // Only sessions with live KV count: checkouts waiting here hold none,
      // so two of them never wait for each other.
      int64_t running = 0;
      for (const auto& [key, s] : sessions_) running += s->pinned && s->live ? 1 : 0;
      if (for_checkout && running > 0) {
        stats_.waits_for_checkin++;
        checkin_cv_.wait(lock);
        continue;
      }
      if (for_checkout || extra > 0) stats_.over_budget++;
      break;
    }
    MemoryChunk& c = *chunk_victim->second;
    if (c.format < c.deepest) {
      c.format = static_cast<KvFormat>(static_cast<uint32_t>(c.format) + 1);
      c.image = std::make_shared<const std::string>(transcode_kv_chunk(*c.image, c.format));
    } else {
      chunks_.erase(chunk_victim);  // on disk, or dropped: recomputed from the tokens
    }
  }
}

Sequence& ContextStore::checkout(const std::string& app, const std::string& session, int priority, int64_t n_ctx,
                                 const std::vector<int32_t>& prompt, int64_t reserve_tokens, RestoreReport* report,
                                 int64_t public_tokens, bool ephemeral, const SessionAdapter& adapter) {
  RestoreReport local;
  RestoreReport& r = report ? *report : local;
  const auto t0 = Clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  auto& entry = sessions_[app + '\0' + session];
  if (!entry) {
    entry = std::make_unique<SessionKv>();
    entry->app = app;
  }
  SessionKv& s = *entry;
  writes_done_cv_.wait(lock, [&] { return s.writes_pending == 0; });  // its cache is being written back
  if (s.pinned) throw Error("session '" + session + "' is already in use");
  if (s.live && s.adapter.id != adapter.id) park(s);  // computed with another adapter: its chunks stay its own
  s.adapter = adapter;
  s.pinned = true;
  s.priority = priority;
  s.public_tokens = public_tokens;
  s.ephemeral = ephemeral;
  s.last_used = Clock::now();
  const int64_t positions = std::max<int64_t>(reserve_tokens, static_cast<int64_t>(prompt.size()));
  try {
    if (!s.live) {
      SequenceOptions o;
      o.n_ctx = n_ctx;
      o.kv_type = options_.kv_type;
      o.lora = adapter.weights;
      auto seq = std::make_unique<Sequence>(model_, tokenizer_, pool_, o);
      seq->kv_cache().track_attention(true);
      const uint64_t per_token = seq->kv_cache().bytes_per_token();
      const int64_t cap = std::min(positions, seq->kv_cache().capacity());
      enforce_budget(static_cast<uint64_t>(cap) * per_token, lock, true);
      seq->kv_cache().reserve(cap);
      s.live = std::move(seq);
      note_peak();
      r.tokens_restored = restore(s, prompt, r, lock);
    } else {
      KvCache& cache = s.live->kv_cache();
      const int64_t cap = std::min(positions, cache.capacity());
      if (cap > cache.reserved())
        enforce_budget(static_cast<uint64_t>(cap - cache.reserved()) * cache.bytes_per_token(), lock);
      cache.reserve(cap);
      note_peak();
      const std::vector<int32_t>& have = s.live->tokens();
      while (r.tokens_restored < static_cast<int64_t>(std::min(have.size(), prompt.size())) &&
             have[static_cast<size_t>(r.tokens_restored)] == prompt[static_cast<size_t>(r.tokens_restored)])
        r.tokens_restored++;
    }
  } catch (...) {
    s.pinned = false;
    throw;
  }
  r.ms = ms_since(t0);
  return *s.live;
}

void ContextStore::checkin(const std::string& app, const std::string& session) {
  std::unique_lock<std::mutex> lock(mu_);
  auto found = sessions_.find(app + '\0' + session);
  if (found == sessions_.end()) return;
  SessionKv& s = *found->second;
  s.pinned = false;
  s.last_used = Clock::now();
  if (s.live) {
    KvCache& cache = s.live->kv_cache();
    cache.shrink_to_fit();
    const int64_t C = options_.chunk_tokens;
    const std::vector<int32_t>& tokens = s.live->tokens();
    const int64_t n_full = std::min<int64_t>(cache.size(), static_cast<int64_t>(tokens.size())) / C;
    uint64_t chain = chunk_chain_seed(s.adapter.id);
    std::vector<uint64_t> chains;
    for (int64_t i = 0; i < n_full; ++i) {
      chain = chunk_chain_hash(chain, tokens.data() + i * C, C);
      chains.push_back(chain);
      const bool saved = static_cast<size_t>(i) < s.saved_chains.size() && s.saved_chains[static_cast<size_t>(i)] == chain;
      if (saved || !disk_ || !options_.write_back || s.ephemeral) continue;
      auto w = std::make_shared<PendingWrite>();
      w->session_key = found->first;
      w->owner = s.owner(i, C);
      w->chain = chain;
      w->pos0 = i * C;
      w->n_tokens = C;
      writes_.push_back(std::move(w));
      s.writes_pending++;
    }
    s.saved_chains = std::move(chains);
    writes_cv_.notify_one();
  }
  note_peak();
  enforce_budget(0, lock);
  checkin_cv_.notify_all();
}

void ContextStore::forget(const std::string& app, const std::string& session) {
  std::unique_lock<std::mutex> lock(mu_);
  auto found = sessions_.find(app + '\0' + session);
  if (found == sessions_.end() || found->second->pinned) return;
  writes_done_cv_.wait(lock, [&] { return found->second->writes_pending == 0; });
  sessions_.erase(found);
  checkin_cv_.notify_all();
}

void ContextStore::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  writes_done_cv_.wait(lock, [&] { return writes_.empty() && !writing_; });
}

void ContextStore::writer_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    writes_cv_.wait(lock, [&] { return stopping_ || !writes_.empty(); });
    if (writes_.empty()) break;  // stopping, all written
    std::shared_ptr<PendingWrite> w = writes_.front();
    writing_ = true;
    // Streamed from the session's cache straight into the file: no image in
    // memory. The cache stays as it is while writes are pending (no
    // checkout, no parking, no forget), so it is read without the lock.
    const Sequence* seq = nullptr;
    ChunkIdentity id;
    auto session = sessions_.find(w->session_key);
    if (session != sessions_.end() && session->second->live &&
        static_cast<int64_t>(session->second->live->tokens().size()) >= w->pos0 + w->n_tokens) {
      seq = session->second->live.get();
      id = identity(w->owner, session->second->adapter.id, w->chain, w->pos0, seq->tokens().data() + w->pos0,
                    w->n_tokens);
    }
    lock.unlock();
    std::string error;
    uint64_t written = 0;
    try {
      if (seq && !disk_->contains(w->owner, w->chain))  // a shared prefix may be there already
        written = disk_->write(w->owner, w->chain, w->n_tokens, options_.disk_format, [&](const ChunkSink& sink) {
          return encode_kv_chunk(id, seq->kv_cache(), options_.disk_format, sink);
        });
    } catch (const Error& e) {
      error = e.what();
    }
    lock.lock();
    writes_.pop_front();
    writing_ = false;
    if (auto s = sessions_.find(w->session_key); s != sessions_.end()) s->second->writes_pending--;
    if (!error.empty()) {
      if (stats_.write_errors++ == 0 || error != stats_.last_error)
        std::fprintf(stderr, "{\"event\":\"kv_write_failed\",\"error\":\"%s\",\"effect\":\"session stays in memory\"}\n",
                     error.c_str());
      stats_.last_error = error;
    } else if (written > 0) {
      stats_.chunks_written++;
      stats_.disk_bytes_written += written;
    }
    if (error.empty())
      if (auto it = chunks_.find(w->owner + '\0' + hex64(w->chain)); it != chunks_.end()) it->second->on_disk = true;
    writes_done_cv_.notify_all();
  }
}

ContextStats ContextStore::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  ContextStats s = stats_;
  s.used_bytes = used_bytes_locked();
  s.costs = costs_;
  for (const auto& [key, e] : sessions_) {
    s.live_sessions += e->live ? 1 : 0;
    s.pinned_sessions += e->pinned ? 1 : 0;
  }
  s.memory_chunks = static_cast<int64_t>(chunks_.size());
  for (const auto& [key, c] : chunks_) s.chunks_by_format[static_cast<int>(c->format)]++;
  s.pending_writes = static_cast<int64_t>(writes_.size());
  if (disk_) {
    s.disk_chunks = disk_->count();
    s.disk_bytes = disk_->bytes_on_disk();
  }
  return s;
}

}  // namespace onellm

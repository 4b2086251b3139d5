// Restoring a session that is not live: per chunk of the prompt, from memory
// (a parked, maybe compressed chunk), from disk when loading is cheaper than
// recomputing (costs measured at start-up), or recomputed. Disk chunks are
// read and decoded on a loader thread while this thread recomputes the
// others in order; a chunk that fails its checks is recomputed instead.
#include <atomic>
#include <cstdio>

#include "base/error.h"
#include "context/context.h"
#include "context/store_entries.h"

namespace onellm {

int64_t ContextStore::restore(SessionKv& s, const std::vector<int32_t>& prompt, RestoreReport& r,
                              std::unique_lock<std::mutex>& lock) {
  enum class Source { kMemory, kDisk, kRecompute };
  struct Step {
    uint64_t chain = 0;
    Source source = Source::kRecompute;
    std::shared_ptr<const std::string> image;
    bool on_disk = false;
  };
  const int64_t C = options_.chunk_tokens;
  if (static_cast<int64_t>(prompt.size()) >= s.live->n_ctx()) return 0;  // CONTEXT_TOO_LONG for the caller
  // The last prompt token is always evaluated (its logits start the reply).
  const int64_t n_chunks = prompt.empty() ? 0 : static_cast<int64_t>(prompt.size() - 1) / C;
  const double bytes_per_chunk = static_cast<double>(2 * model_.config().n_layer * model_.config().kv_dim() * C) *
                                 kv_format_bytes_per_value(options_.disk_format);
  const bool disk_is_cheaper = options_.always_load ||
      costs_.load_ms_per_mb * bytes_per_chunk / 1048576.0 < costs_.recompute_ms_per_token * static_cast<double>(C);
  std::vector<uint64_t> chains;
  uint64_t chain = chunk_chain_seed(s.adapter.id);
  for (int64_t i = 0; i < n_chunks; ++i) chains.push_back(chain = chunk_chain_hash(chain, prompt.data() + i * C, C));
  // A chunk another session has just computed may still be queued for its
  // write-back: waiting for that write (milliseconds) beats recomputing it.
  if (disk_ && disk_is_cheaper)
    writes_done_cv_.wait(lock, [&] {
      for (const auto& w : writes_)
        for (int64_t i = 0; i < n_chunks; ++i)
          if (w->chain == chains[static_cast<size_t>(i)] && w->owner == s.owner(i, C)) return false;
      return true;
    });
  std::vector<Step> steps;
  for (int64_t i = 0; i < n_chunks; ++i) {
    Step step;
    step.chain = chains[static_cast<size_t>(i)];
    if (auto it = chunks_.find(s.owner(i, C) + '\0' + hex64(step.chain)); it != chunks_.end()) {
      step.source = Source::kMemory;
      step.image = it->second->image;
      step.on_disk = it->second->on_disk;
      it->second->last_used = s.last_used;
    } else if (disk_ && disk_is_cheaper && disk_->contains(s.owner(i, C), step.chain)) {
      step.source = Source::kDisk;
      step.on_disk = true;
    }
    steps.push_back(std::move(step));
  }
  // Chunks missing at the end are left to the request's own prefill. Without
  // a restore pool (the service: compute belongs to the QoS scheduler's
  // chunked prefill), so is everything from the first missing chunk on.
  if (options_.restore_pool == nullptr)
    for (size_t i = 0; i < steps.size(); ++i)
      if (steps[i].source == Source::kRecompute) {
        steps.resize(i);
        break;
      }
  while (!steps.empty() && steps.back().source == Source::kRecompute) steps.pop_back();
  if (steps.empty()) return 0;

  lock.unlock();
  KvCache& cache = s.live->kv_cache();
  const int64_t n = static_cast<int64_t>(steps.size());
  std::vector<int> loaded(static_cast<size_t>(n), 0);  // 1 ok, -1 failed
  std::atomic<int64_t> loader_done{0};
  std::mutex progress_mu;
  std::condition_variable progress;
  std::atomic<uint64_t> bytes_read{0};
  std::vector<std::string> corrupt;
  for (int64_t i = 0; i < n; ++i)
    if (steps[static_cast<size_t>(i)].source == Source::kDisk)
      disk_->prefetch(s.owner(i, C), steps[static_cast<size_t>(i)].chain, options_.cold_reads);
  std::thread loader([&] {
    for (int64_t i = 0; i < n; ++i) {
      if (steps[static_cast<size_t>(i)].source == Source::kDisk) {
        const uint64_t h = steps[static_cast<size_t>(i)].chain;
        try {
          std::string image = disk_->read(s.owner(i, C), h);  // dropped from the cache above if cold
          bytes_read += image.size();
          decode_kv_chunk(image, identity(s.owner(i, C), s.adapter.id, h, i * C, prompt.data() + i * C, C), cache);
          loaded[static_cast<size_t>(i)] = 1;
        } catch (const Error& e) {
          loaded[static_cast<size_t>(i)] = -1;
          corrupt.push_back(e.what());
          try {
            disk_->remove(s.owner(i, C), h);  // never loaded again; rewritten after recompute
          } catch (const Error&) {
          }
        }
      }
      {
        std::lock_guard<std::mutex> g(progress_mu);
        loader_done = i + 1;
      }
      progress.notify_all();
    }
  });
  auto wait_loader = [&](int64_t count) {
    std::unique_lock<std::mutex> g(progress_mu);
    progress.wait(g, [&] { return loader_done >= count; });
  };
  std::vector<float> logits(static_cast<size_t>(model_.config().n_vocab));
  int64_t restored = n;  // chunks in the cache, in order, when the loop ends
  try {
    for (int64_t i = 0; i < n; ++i) {
      Step& step = steps[static_cast<size_t>(i)];
      bool recompute = step.source == Source::kRecompute;
      if (step.source == Source::kMemory) {
        try {
          decode_kv_chunk(*step.image,
                          identity(s.owner(i, C), s.adapter.id, step.chain, i * C, prompt.data() + i * C, C), cache);
          r.chunks_from_memory++;
        } catch (const Error&) {
          recompute = true;
        }
      } else if (step.source == Source::kDisk) {
        wait_loader(i + 1);
        if (loaded[static_cast<size_t>(i)] == 1) r.chunks_from_disk++;
        else {
          recompute = true;
          step.on_disk = false;
        }
      }
      if (recompute && options_.restore_pool == nullptr) {  // the scheduler's prefill computes the rest
        restored = i;
        break;
      }
      if (recompute) {
        wait_loader(i);  // every earlier chunk is in the cache
        cache.set_size(i * C);
        model_.forward(prompt.data() + i * C, C, cache, logits.data(), false, options_.restore_pool);
        r.chunks_recomputed++;
      }
    }
  } catch (...) {
    loader.join();
    cache.set_size(0);
    lock.lock();
    throw;
  }
  loader.join();
  cache.set_size(restored * C);
  s.live->adopt_restored(std::vector<int32_t>(prompt.begin(), prompt.begin() + restored * C));
  lock.lock();
  // Chunks known to be on disk need no write-back at checkin.
  s.saved_chains.clear();
  for (int64_t i = 0; i < restored; ++i) {
    if (!steps[static_cast<size_t>(i)].on_disk) break;
    s.saved_chains.push_back(steps[static_cast<size_t>(i)].chain);
  }
  r.chunks_corrupt = static_cast<int64_t>(corrupt.size());
  stats_.chunks_corrupt += r.chunks_corrupt;
  stats_.disk_bytes_read += bytes_read;
  for (const std::string& e : corrupt)
    std::fprintf(stderr, "{\"event\":\"kv_chunk_rejected\",\"error\":\"%s\",\"effect\":\"recomputed from the tokens\"}\n",
                 e.c_str());
  return restored * C;
}

}  // namespace onellm

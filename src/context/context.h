// The context layer: every session's KV cache managed like memory pages.
// A session's keys/values are cut into chunks of a fixed number of tokens
// (all layers in one chunk), named by a hash of every token from the start
// of the context through the chunk (so identical prefixes share chunks),
// kept in memory hot (F32) or compressed (INT8/INT4/INT2), written back to
// per-app files (atomic, checksummed, tagged with the model file hash), or
// dropped and recomputed from the tokens. One global byte budget covers all
// sessions; the session in use is pinned.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "model/model.h"

namespace onellm {

class SqliteDb;

// How a chunk's values are stored, from least to most compressed. Quantized
// formats use one F32 scale per block of 32 consecutive values (symmetric,
// round to nearest).
enum class KvFormat : uint32_t { kF32 = 0, kF16 = 1, kInt8 = 2, kInt4 = 3, kInt2 = 4 };
constexpr int kKvFormatCount = 5;
const char* kv_format_name(KvFormat f);
KvFormat parse_kv_format(const std::string& name);  // "f32", "f16", "int8", "int4", "int2"; throws Error
// The lossless chunk format for a KV cache type (F32 -> f32, F16 -> f16);
// Q8_0 caches are stored as int8 (same grid, F32 instead of F16 scales).
KvFormat kv_format_for_cache(TensorType cache_type);
// The deepest in-memory format a parked chunk may reach given the attention
// it received (KvCache::attention_score: 1 = an average position): rarely
// attended chunks lose little by coarse values (H2O, LLMS). Unknown (< 0)
// and well-attended chunks stop at int8.
KvFormat kv_format_for_attention(double score);
double kv_format_bytes_per_value(KvFormat f);  // payload bytes, block scales included

// 64-bit hashes (not cryptographic: change detection and chunk names).
uint64_t hash_bytes(const void* data, size_t n, uint64_t seed = 0);
uint64_t hash_file(const std::string& path);  // the model file, once at load; throws Error
uint32_t crc32(const void* data, size_t n, uint32_t crc = 0);
// Chain hash of a chunk: its tokens and the chain hash of everything before it.
uint64_t chunk_chain_hash(uint64_t previous, const int32_t* tokens, int64_t n);
// Where a session's chain starts: 0 for the base model, else a hash of the
// adapter's id, so that KV computed with an adapter is never found for the
// base model or another adapter (it is a different function of the tokens).
uint64_t chunk_chain_seed(const std::string& adapter_id);
std::string hex64(uint64_t v);

// What a chunk must match to be used: written by this model file (and
// adapter) for this app, at these positions, for these tokens.
struct ChunkIdentity {
  uint64_t model_hash = 0;
  std::string adapter;  // "" = base model
  std::string app;
  uint64_t chain_hash = 0;
  int64_t pos0 = 0;
  std::vector<int32_t> tokens;
  int64_t n_layer = 0, kv_dim = 0;
};

// File/memory image of one chunk: header (magic, version, format, model hash,
// adapter, app, chain hash, positions, token ids), payload, CRC32 of all.
std::string encode_kv_chunk(const ChunkIdentity& id, const KvCache& cache, KvFormat format);
// The same bytes streamed to `sink` piece by piece (a file, without an image
// in memory); returns how many.
using ChunkSink = std::function<void(const void* data, size_t n)>;
uint64_t encode_kv_chunk(const ChunkIdentity& id, const KvCache& cache, KvFormat format, const ChunkSink& sink);
// Checks everything against `expected` and writes the values into
// cache positions [pos0, pos0+n) (reserved by the caller). Throws Error
// naming the mismatch (magic, version, checksum, model, app, tokens, shape).
void decode_kv_chunk(const std::string& image, const ChunkIdentity& expected, KvCache& cache);
// The same chunk in another format (memory compression).
std::string transcode_kv_chunk(const std::string& image, KvFormat format);
// The header fields of an image, checked for structure and checksum only.
ChunkIdentity peek_kv_chunk(const std::string& image, KvFormat* format = nullptr);

// Chunk files: <dir>/<hex(app)>/<chain hash>.kvc, one directory per app
// (0700), and their metadata in <dir>/chunks.db (SQLite, WAL).
class KvChunkStore {
 public:
  KvChunkStore(const std::string& dir, uint64_t model_hash);
  ~KvChunkStore();
  KvChunkStore(const KvChunkStore&) = delete;
  KvChunkStore& operator=(const KvChunkStore&) = delete;

  // tmp + fsync + rename + fsync(dir), then the metadata row. Throws Error
  // (disk full, unwritable) naming the file.
  void write(const std::string& app, uint64_t chain_hash, int64_t n_tokens, KvFormat format, const std::string& image);
  // As above, the bytes coming from `produce(sink)`; returns how many.
  uint64_t write(const std::string& app, uint64_t chain_hash, int64_t n_tokens, KvFormat format,
                 const std::function<uint64_t(const ChunkSink&)>& produce);
  bool contains(const std::string& app, uint64_t chain_hash) const;
  // The file's bytes; `cold` drops them from the page cache first
  // (benchmarks). Throws Error if unreadable.
  std::string read(const std::string& app, uint64_t chain_hash, bool cold = false) const;
  // Asks the kernel to start reading the file now (a restore announces all
  // its chunks first, so the disk works on them in parallel while earlier
  // ones are decoded); `cold` drops it from the page cache first. Best effort.
  void prefetch(const std::string& app, uint64_t chain_hash, bool cold = false) const;
  void remove(const std::string& app, uint64_t chain_hash);
  // Removes rows and files of other model files, and files without a row
  // (a crash between rename and insert). Returns how many chunks it dropped.
  int64_t discard_stale();
  int64_t count() const;
  uint64_t bytes_on_disk() const;
  std::string path_of(const std::string& app, uint64_t chain_hash) const;

 private:
  std::string dir_;
  uint64_t model_hash_;
  std::unique_ptr<SqliteDb> db_;
  mutable std::mutex mu_;
};

// Per-chunk costs measured at start-up; restore loads a chunk from disk when
// that is cheaper than recomputing its tokens.
struct RestoreCosts {
  double load_ms_per_mb = 0;        // read + checksum + decode, page cache dropped
  double recompute_ms_per_token = 0;
};

// The LoRA adapter a session runs with, for its whole life. `id` is written
// in its chunks' headers and seeds their chain hashes (chunk_chain_seed); the
// service makes it from the adapter's name and file hash, so chunks of an
// adapter file that has since changed are never used.
struct SessionAdapter {
  std::string id;                              // "" = the base model
  std::shared_ptr<const LoraWeights> weights;  // for the store's model
};

struct ContextOptions {
  std::string dir;                 // chunk files and chunks.db (the service uses <state-dir>/kv)
  uint64_t budget_bytes = 256ull << 20;
  int64_t chunk_tokens = 32;
  // Element type of the sessions' live caches, and the chunk format on disk:
  // lossless for the cache type, so a restored session answers exactly as
  // before (kv_format_for_cache).
  TensorType kv_type = TensorType::F16;
  KvFormat disk_format = KvFormat::kF16;
  // Parked chunks are int8; under memory pressure a chunk goes deeper only as
  // far as kv_format_for_attention allows for it, and never past this.
  KvFormat deepest_memory_format = KvFormat::kInt4;
  bool write_back = true;
  // Recomputes chunks during restore on the caller's thread; the service
  // leaves this null because its pool belongs to the scheduler's thread.
  ThreadPool* restore_pool = nullptr;
  bool cold_reads = false;  // drop chunk files from the page cache before reading (benchmarks)
  // Restore chunks on disk from disk even when the start-up profile says
  // recomputing is cheaper (tests that must see the disk path under load).
  bool always_load = false;
};

struct RestoreReport {
  int64_t tokens_restored = 0, chunks_from_memory = 0, chunks_from_disk = 0, chunks_recomputed = 0;
  int64_t chunks_corrupt = 0;
  double ms = 0;
};

struct ContextStats {
  uint64_t budget_bytes = 0, used_bytes = 0, peak_bytes = 0;
  int64_t live_sessions = 0, pinned_sessions = 0, memory_chunks = 0, chunks_by_format[kKvFormatCount] = {};
  int64_t disk_chunks = 0, chunks_written = 0, write_errors = 0, chunks_corrupt = 0, chunks_discarded = 0;
  uint64_t disk_bytes_written = 0, disk_bytes_read = 0, disk_bytes = 0;
  int64_t pending_writes = 0;
  int64_t over_budget = 0;        // times a request alone did not fit the budget
  int64_t waits_for_checkin = 0;  // times a checkout waited for sessions in use to finish
  int64_t waits_for_writes = 0;   // times memory had to wait for queued writes to finish
  std::string last_error;   // the last disk error
  RestoreCosts costs;
};

// The KV of every session of one loaded model.
class ContextStore {
 public:
  ContextStore(const Model& model, const Tokenizer& tokenizer, ThreadPool* pool, const std::string& model_path,
               ContextOptions options);
  ~ContextStore();  // waits for pending writes

  // Pins the session and returns its sequence holding as much of `prompt`
  // as could be restored (a live sequence as it is; otherwise chunks from
  // memory or disk, or recomputed). Memory for `reserve_tokens` positions is
  // made room for under the budget first. The caller holds the session
  // exclusively until checkin. Chunks within the first `public_tokens`
  // tokens (a prefix the service declares public) are shared by all apps.
  // An ephemeral session (the service's scratch sequences for stateless
  // requests) is budgeted and parked like any other but never written to
  // disk: its text is not meant to outlive the request. The sequence runs
  // with `adapter`; a live KV of another adapter is parked first (its chunks
  // stay theirs) and this adapter's chunks are restored.
  Sequence& checkout(const std::string& app, const std::string& session, int priority, int64_t n_ctx,
                     const std::vector<int32_t>& prompt, int64_t reserve_tokens, RestoreReport* report = nullptr,
                     int64_t public_tokens = 0, bool ephemeral = false, const SessionAdapter& adapter = {});
  // Unpins; queues the new full chunks for write-back (written from the
  // session's cache by a writer thread); enforces the budget.
  void checkin(const std::string& app, const std::string& session);
  // The session was deleted: drop its live KV (shared chunk files stay).
  void forget(const std::string& app, const std::string& session);
  void flush();  // waits until queued writes are done
  ContextStats stats() const;
  const RestoreCosts& costs() const { return costs_; }
  uint64_t model_hash() const { return model_hash_; }

 private:
  struct MemoryChunk;
  struct SessionKv;
  struct PendingWrite;

  void measure_costs();
  // Frees memory until `extra` more bytes fit (may wait for queued writes).
  // When only sessions in use are left, a checkout (`for_checkout`) waits
  // for other sessions in use to be checked in; a request that does not fit
  // even alone goes over the budget (counted in stats().over_budget).
  void enforce_budget(uint64_t extra, std::unique_lock<std::mutex>& lock, bool for_checkout = false);
  uint64_t used_bytes_locked() const;
  void park(SessionKv& s);
  void note_peak();
  int64_t restore(SessionKv& s, const std::vector<int32_t>& prompt, RestoreReport& report,
                  std::unique_lock<std::mutex>& lock);
  ChunkIdentity identity(const std::string& app, const std::string& adapter, uint64_t chain, int64_t pos0,
                         const int32_t* tokens, int64_t n) const;
  void writer_loop();

  const Model& model_;
  const Tokenizer& tokenizer_;
  ThreadPool* pool_;
  ContextOptions options_;
  uint64_t model_hash_ = 0;
  std::unique_ptr<KvChunkStore> disk_;
  RestoreCosts costs_;

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<SessionKv>> sessions_;        // app + '\0' + session
  std::map<std::string, std::shared_ptr<MemoryChunk>> chunks_;        // app + '\0' + chain hash
  std::deque<std::shared_ptr<PendingWrite>> writes_;
  std::condition_variable writes_cv_, writes_done_cv_, checkin_cv_;
  bool writing_ = false, stopping_ = false;
  ContextStats stats_;
  std::thread writer_;
};

// A checked-out session for the length of a scope (checkin on exit).
class SessionLease {
 public:
  SessionLease(ContextStore& store, std::string app, std::string session, int priority, int64_t n_ctx,
               const std::vector<int32_t>& prompt, int64_t reserve_tokens, RestoreReport* report = nullptr,
               int64_t public_tokens = 0, bool ephemeral = false, const SessionAdapter& adapter = {})
      : store_(store), app_(std::move(app)), session_(std::move(session)),
        sequence_(store.checkout(app_, session_, priority, n_ctx, prompt, reserve_tokens, report, public_tokens,
                                 ephemeral, adapter)) {}
  ~SessionLease() { release(); }
  SessionLease(const SessionLease&) = delete;
  SessionLease& operator=(const SessionLease&) = delete;
  Sequence& sequence() { return sequence_; }
  // Checks in now (before the reply is sent, so that status shows the queued writes).
  void release() {
    if (!released_) store_.checkin(app_, session_);
    released_ = true;
  }

 private:
  ContextStore& store_;
  std::string app_, session_;
  Sequence& sequence_;
  bool released_ = false;
};

}  // namespace onellm

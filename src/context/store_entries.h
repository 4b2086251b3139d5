// The records behind ContextStore (private to the context layer): parked
// chunks, sessions, queued writes.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "context/context.h"

namespace onellm {

struct ContextStore::MemoryChunk {
  std::string app;
  uint64_t chain = 0;
  KvFormat format = KvFormat::kInt8;
  KvFormat deepest = KvFormat::kInt8;  // how far memory pressure may compress it (attention received)
  std::shared_ptr<const std::string> image;  // replaced, never changed: restores read a snapshot
  bool on_disk = false;
  int priority = 0;
  std::chrono::steady_clock::time_point last_used;
};

// Chunks wholly inside a prefix that the service config declares public are
// kept under this owner instead of the app, so every app shares them.
inline const std::string kPublicOwner = std::string("\x02public");

struct ContextStore::SessionKv {
  std::string app;
  int64_t public_tokens = 0;  // leading prompt tokens that are a declared public prefix
  const std::string& owner(int64_t chunk, int64_t chunk_tokens) const {
    return (chunk + 1) * chunk_tokens <= public_tokens ? kPublicOwner : app;
  }
  int priority = 0;
  SessionAdapter adapter;  // what `live` was computed with
  std::unique_ptr<Sequence> live;
  bool pinned = false;
  bool ephemeral = false;  // never written back
  std::chrono::steady_clock::time_point last_used;
  std::vector<uint64_t> saved_chains;  // full chunks of `live` already written back (or queued)
  int64_t writes_pending = 0;          // queued write-backs that read `live`: it is neither parked nor checked out
};

// A full chunk of a live session to write back. The writer encodes it from
// the session's cache when its turn comes (one chunk of extra memory, not a
// copy of the session); the session stays live and unchanged until then.
struct ContextStore::PendingWrite {
  std::string session_key, owner;
  uint64_t chain = 0;
  int64_t pos0 = 0, n_tokens = 0;
};

}  // namespace onellm

// The last few values built from keys, shared by every caller that asks for
// the same key: per-tokenizer tables that each request would otherwise
// rebuild (a daemon has one model; a process that loads models one after
// another should not keep them all). The oldest is dropped first.
// Thread-safe; a value is built under the lock, so it is built once.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace onellm {

template <class Key, class Value, size_t kKept = 4>
class RecentCache {
 public:
  template <class Make>
  std::shared_ptr<const Value> get(const Key& key, Make make) {
    std::lock_guard lock(mutex_);
    for (const auto& [k, v] : kept_)
      if (k == key) return v;
    auto value = std::make_shared<const Value>(make());
    if (kept_.size() == kKept) kept_.erase(kept_.begin());
    kept_.emplace_back(key, value);
    return value;
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<Key, std::shared_ptr<const Value>>> kept_;  // oldest first
};

}  // namespace onellm

// A list of texts with a hash index over them, for a vocabulary and its
// merges: the texts sit back to back in one string and the index holds
// entry numbers, so an entry costs its text plus ~12 bytes, not a hash node
// with its own std::string (~90 bytes: ~25 MB for a 150k vocabulary and its
// merges instead of ~6 MB).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace onellm {

class TextTable {
 public:
  // Room for n texts of `bytes` bytes in all, to avoid regrowing.
  void reserve(size_t n, size_t bytes);
  // Appends text as entry size(). When an equal text is already there,
  // find() answers the later entry if `later_wins`, else keeps the earlier.
  void add(std::string_view text, bool later_wins);
  // The entry whose text equals `text`; -1 if none.
  int32_t find(std::string_view text) const;
  std::string_view at(int32_t k) const {
    const uint32_t begin = k == 0 ? 0 : ends_[static_cast<size_t>(k) - 1];
    return std::string_view(texts_).substr(begin, ends_[static_cast<size_t>(k)] - begin);
  }
  int32_t size() const { return static_cast<int32_t>(ends_.size()); }

 private:
  void rehash(size_t n_slots);  // n_slots: a power of two
  // The slot holding text's entry, else the empty slot where it would go.
  size_t slot_of(std::string_view text) const;
  std::string texts_;
  std::vector<uint32_t> ends_;  // where each text ends in texts_
  std::vector<int32_t> slots_;  // open addressing, linear probing; -1 empty
};

}  // namespace onellm

#include "tokenizer/text_table.h"

#include <functional>

#include "base/error.h"

namespace onellm {
namespace {

size_t hash_of(std::string_view s) { return std::hash<std::string_view>{}(s); }

}  // namespace

void TextTable::reserve(size_t n, size_t bytes) {
  texts_.reserve(bytes);
  ends_.reserve(n);
  size_t slots = 16;
  while (slots < 2 * n) slots *= 2;
  if (slots > slots_.size()) rehash(slots);
}

void TextTable::rehash(size_t n_slots) {
  std::vector<int32_t> old;
  old.swap(slots_);
  slots_.assign(n_slots, -1);
  for (int32_t k : old) {  // each distinct text once: its winning entry
    if (k < 0) continue;
    size_t s = hash_of(at(k)) & (n_slots - 1);
    while (slots_[s] >= 0) s = (s + 1) & (n_slots - 1);
    slots_[s] = k;
  }
}

void TextTable::add(std::string_view text, bool later_wins) {
  if (texts_.size() + text.size() > UINT32_MAX || ends_.size() >= INT32_MAX)
    throw Error("text table: more than 4 GiB of text or 2^31 entries");
  // At most half full (counting repeated texts too) keeps probes short.
  if (2 * (ends_.size() + 1) > slots_.size()) rehash(slots_.empty() ? 16 : 2 * slots_.size());
  texts_.append(text);
  ends_.push_back(static_cast<uint32_t>(texts_.size()));
  int32_t& slot = slots_[slot_of(text)];
  if (slot < 0 || later_wins) slot = size() - 1;
}

size_t TextTable::slot_of(std::string_view text) const {
  size_t s = hash_of(text) & (slots_.size() - 1);
  while (slots_[s] >= 0 && at(slots_[s]) != text) s = (s + 1) & (slots_.size() - 1);
  return s;
}

int32_t TextTable::find(std::string_view text) const { return slots_.empty() ? -1 : slots_[slot_of(text)]; }

}  // namespace onellm

#include "engine/prompt_lookup.h"

#include <algorithm>

namespace onellm {

std::vector<int32_t> lookup_draft(const std::vector<int32_t>& context, size_t max_draft) {
  const size_t n_ctx = context.size();
  if (max_draft == 0) return {};
  for (size_t n = std::min(kLookupMaxNgram, n_ctx > 0 ? n_ctx - 1 : 0); n >= kLookupMinNgram; --n) {
    const auto tail = context.end() - static_cast<std::ptrdiff_t>(n);
    // Latest first: recent text is the likelier one to be repeated.
    for (size_t start = n_ctx - n; start-- > 0;) {
      const auto at = context.begin() + static_cast<std::ptrdiff_t>(start);
      if (!std::equal(tail, context.end(), at)) continue;
      const size_t from = start + n, count = std::min(max_draft, n_ctx - from);
      return std::vector<int32_t>(context.begin() + static_cast<std::ptrdiff_t>(from),
                                  context.begin() + static_cast<std::ptrdiff_t>(from + count));
    }
  }
  return {};
}

std::vector<int32_t> predicted_draft(const std::vector<int32_t>& predicted, const std::vector<int32_t>& generated,
                                     size_t max_draft, size_t* cursor) {
  auto draft_from = [&](size_t from) {
    *cursor = from;
    const size_t count = std::min(max_draft, predicted.size() - from);
    return std::vector<int32_t>(predicted.begin() + static_cast<std::ptrdiff_t>(from),
                                predicted.begin() + static_cast<std::ptrdiff_t>(from + count));
  };
  if (max_draft == 0 || predicted.empty()) return {};
  if (generated.empty()) return draft_from(0);
  for (size_t n = std::min(kLookupMaxNgram, generated.size()); n >= 1; --n) {
    if (n >= predicted.size()) continue;  // a match must leave a token to guess
    const auto tail = generated.end() - static_cast<std::ptrdiff_t>(n);
    auto matches = [&](size_t start) {
      return std::equal(tail, generated.end(), predicted.begin() + static_cast<std::ptrdiff_t>(start));
    };
    // In order from where the output was: an edited text follows its original.
    const size_t last = predicted.size() - n - 1;
    for (size_t start = *cursor > n ? *cursor - n : 0; start <= last; ++start)
      if (matches(start)) return draft_from(start + n);
    for (size_t start = std::min(last + 1, *cursor > n ? *cursor - n : 0); start-- > 0;)
      if (matches(start)) return draft_from(start + n);
  }
  return {};
}

}  // namespace onellm

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

}  // namespace onellm

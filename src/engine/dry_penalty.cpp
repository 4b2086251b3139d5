#include "engine/dry_penalty.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <string_view>

#include "base/error.h"
#include "base/recent_cache.h"
#include "engine/sampler.h"
#include "tokenizer/tokenizer.h"

namespace onellm {
namespace {

constexpr size_t kMaxBreakerBytes = 40;
constexpr size_t kMaxTailTokens = 20;

DryBreakers scan_vocabulary(const Tokenizer& tokenizer, const std::vector<std::string>& strings) {
  std::vector<std::string> pieces(static_cast<size_t>(tokenizer.n_vocab()));
  for (int32_t id = 0; id < tokenizer.n_vocab(); ++id) pieces[size_t(id)] = tokenizer.token_to_piece(id, true);
  DryBreakers out;
  for (std::string s : strings) {
    if (s.size() > kMaxBreakerBytes) s.resize(kMaxBreakerBytes);
    if (s.empty()) continue;
    for (int32_t id = 0; id < tokenizer.n_vocab(); ++id) {
      const std::string& piece = pieces[size_t(id)];
      if (piece.find(s) != std::string::npos) {
        out.push_back({id});
        continue;
      }
      // The piece ends with the breaker's first k bytes: the rest must follow.
      for (size_t pos = piece.find(s[0]); pos != std::string::npos; pos = piece.find(s[0], pos + 1)) {
        const size_t k = piece.size() - pos;
        if (std::string_view(piece).substr(pos) != std::string_view(s).substr(0, k)) continue;
        std::vector<int32_t> seq{id};
        for (int32_t t : tokenizer.encode(std::string_view(s).substr(k), false, false)) {
          if (seq.size() > kMaxTailTokens) break;
          seq.push_back(t);
        }
        out.push_back(std::move(seq));
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Z-array of s: z[i] is the length of the longest common prefix of s and
// s[i..] (z[0] = |s|). Linear: each comparison that succeeds moves r right.
void z_array(const std::vector<int32_t>& s, std::vector<int32_t>& z) {
  const int32_t n = static_cast<int32_t>(s.size());
  z.assign(s.size(), 0);
  if (n == 0) return;
  z[0] = n;
  for (int32_t i = 1, l = 0, r = 0; i < n; ++i) {  // [l, r): the rightmost match found
    int32_t len = i < r ? std::min(r - i, z[size_t(i - l)]) : 0;
    while (i + len < n && s[size_t(len)] == s[size_t(i + len)]) ++len;
    z[size_t(i)] = len;
    if (i + len > r) l = i, r = i + len;
  }
}

}  // namespace

std::shared_ptr<const DryBreakers> dry_breakers(const Tokenizer& tokenizer, const std::vector<std::string>& strings) {
  static RecentCache<std::pair<uint64_t, std::vector<std::string>>, DryBreakers> built;
  return built.get({tokenizer.instance_id(), strings}, [&] { return scan_vocabulary(tokenizer, strings); });
}

DryPenalty::DryPenalty(const SamplingParams& p)
    : multiplier_(p.dry_multiplier), base_(p.dry_base), allowed_length_(p.dry_allowed_length),
      window_(p.dry_penalty_last_n) {
  if (!(multiplier_ >= 0.0f && std::isfinite(multiplier_)))
    throw Error("sampler: dry_multiplier must be >= 0, got " + std::to_string(multiplier_));
  if (!(base_ >= 1.0f && std::isfinite(base_)))
    throw Error("sampler: dry_base must be >= 1, got " + std::to_string(base_));
  if (allowed_length_ < 0)
    throw Error("sampler: dry_allowed_length must be >= 0, got " + std::to_string(allowed_length_));
  if (window_ < -1)
    throw Error("sampler: dry_penalty_last_n must be >= -1 (-1: the whole context), got " + std::to_string(window_));
}

bool DryPenalty::is_single_token_breaker(int32_t id) const {
  return breakers_ && std::binary_search(breakers_->begin(), breakers_->end(), std::vector<int32_t>{id});
}

int64_t DryPenalty::tokens_after_last_breaker() const {
  const int64_t n = static_cast<int64_t>(reversed_.size());
  if (!breakers_) return n;
  for (int64_t i = 0; i < n; ++i) {  // i tokens after this one, newest first
    const int32_t head = reversed_[size_t(i)];
    auto it = std::lower_bound(breakers_->begin(), breakers_->end(), std::vector<int32_t>{head});
    int64_t longest = -1;
    for (; it != breakers_->end() && it->front() == head; ++it) {
      const int64_t tail = static_cast<int64_t>(it->size()) - 1;
      if (tail <= longest || tail > i) continue;
      bool match = true;
      for (int64_t j = 0; j < tail && match; ++j) match = (*it)[size_t(j + 1)] == reversed_[size_t(i - j - 1)];
      if (match) longest = tail;
    }
    if (longest >= 0) return i - longest;
  }
  return n;
}

void DryPenalty::apply(float* logits, int32_t n_vocab, const std::vector<int32_t>& history) {
  if (!enabled()) return;
  const size_t n = window_ < 0 ? history.size() : std::min(history.size(), size_t(window_));
  if (n <= size_t(allowed_length_)) return;
  reversed_.assign(history.rbegin(), history.rbegin() + static_cast<std::ptrdiff_t>(n));
  for (int32_t id : reversed_) {
    if (id < 0 || id >= n_vocab)
      throw Error("sampler: history token " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(n_vocab));
  }
  const int64_t limit = tokens_after_last_breaker();
  if (limit < allowed_length_) return;
  // reversed_[k..] matches the newest z_[k] tokens: the history's end also
  // occurred ending k tokens earlier, and there it went on with reversed_[k-1].
  z_array(reversed_, z_);
  extends_.clear();
  for (size_t k = 1; k < n; ++k) {
    const int32_t len = static_cast<int32_t>(std::min<int64_t>(z_[k], limit));
    if (len >= allowed_length_) extends_.emplace_back(reversed_[k - 1], len);
  }
  std::sort(extends_.begin(), extends_.end(), [](const auto& a, const auto& b) {
    return a.first < b.first || (a.first == b.first && a.second > b.second);
  });
  // As llama.cpp, e is clamped near where pow(base, e) passes FLT_MAX; the
  // penalty is then held at FLT_MAX, so a logit never becomes -inf by DRY.
  const int32_t max_exponent = base_ > 1.000001f ? static_cast<int32_t>(88.7228391f / std::log(base_)) : 0;
  for (size_t i = 0; i < extends_.size(); ++i) {
    if (i > 0 && extends_[i].first == extends_[i - 1].first) continue;  // the longest comes first
    const auto [id, len] = extends_[i];
    if (is_single_token_breaker(id)) continue;
    int32_t e = len - allowed_length_;
    if (max_exponent > 0) e = std::min(e, max_exponent);
    logits[id] -= static_cast<float>(std::min<double>(multiplier_ * std::pow(base_, e), FLT_MAX));
  }
}

}  // namespace onellm

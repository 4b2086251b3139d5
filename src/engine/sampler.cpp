#include "engine/sampler.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>

#include "base/error.h"

namespace onellm {
namespace {

// Most likely first; equal logits by lowest id, so every partial sort and
// selection below is a total order and therefore deterministic.
bool more_likely(const TokenProb& a, const TokenProb& b) {
  return a.p > b.p || (a.p == b.p && a.id < b.id);
}

// Out of line so that the per-token loops stay tight.
[[noreturn, gnu::noinline]] void throw_bad_logit(float logit, int32_t id) {
  throw Error("sampler: logit for token " + std::to_string(id) + " is " + (std::isnan(logit) ? "NaN" : "+inf"));
}

// NaN or +inf: no distribution can be formed (-inf is a ban and fine).
inline void check_logit(float logit, int32_t id) {
  if (!(logit < std::numeric_limits<float>::infinity())) [[unlikely]] throw_bad_logit(logit, id);
}

// Calls consider(id) for each allowed id in ascending order: the ids in
// `only` if given, else every id with allowed[id] (every id without a mask).
// Logits are checked over the whole scan, as without a constraint.
template <class Consider>
void for_each_allowed(const float* logits, int32_t n_vocab, const uint8_t* allowed, const std::vector<int32_t>* only,
                      Consider&& consider) {
  if (only) {
    for (int32_t id : *only) {
      if (id >= n_vocab) continue;
      check_logit(logits[id], id);
      consider(id);
    }
    return;
  }
  for (int32_t id = 0; id < n_vocab; ++id) {
    check_logit(logits[id], id);
    if (!allowed || allowed[id]) consider(id);
  }
}

uint64_t resolve_seed(uint64_t seed) {
  if (seed != SamplingParams::kRandomSeed) return seed;
  std::random_device device;
  return (uint64_t{device()} << 32) ^ device();
}

}  // namespace

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab)
    : params_(params), n_vocab_(n_vocab), rng_(resolve_seed(params.seed)) {
  if (n_vocab <= 0) throw Error("sampler: vocabulary size must be positive, got " + std::to_string(n_vocab));
  if (!(params.repeat_penalty > 0.0f))
    throw Error("sampler: repeat_penalty must be positive, got " + std::to_string(params.repeat_penalty));
  for (const auto& [id, bias] : params_.logit_bias) {
    if (id < 0 || id >= n_vocab)
      throw Error("sampler: logit_bias token " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(n_vocab));
  }
  candidates_.reserve(n_vocab);
}

void Sampler::set_token_filter(std::function<bool(int32_t)> allowed) { allowed_ = std::move(allowed); }

int32_t Sampler::sample(float* logits, const std::vector<int32_t>& history) {
  std::span<const TokenProb> dist = distribution(logits, history);
  if (dist.size() == 1) return dist[0].id;  // greedy or a single survivor: no random draw
  // Probabilities sum to 1 up to rounding; the last token absorbs the rest.
  double u = next_uniform();
  double cumulative = 0.0;
  for (const TokenProb& t : dist) {
    cumulative += t.p;
    if (u < cumulative) return t.id;
  }
  return dist.back().id;
}

std::span<const TokenProb> Sampler::distribution(float* logits, const std::vector<int32_t>& history) {
  apply_filter_bias_penalties(logits, history);
  candidates_.clear();
  const bool greedy = params_.temperature <= 0.0f;
  // The constraint's allowed set, if the best-first check could not settle it:
  // a short id list, or a whole-vocabulary mask.
  const std::vector<int32_t>* only = nullptr;
  const uint8_t* allowed = nullptr;
  if (constraint_ &&
      !((greedy || params_.top_k > 0) && !constraint_->mask_is_cheap() && collect_allowed_top_k(logits))) {
    only = constraint_->few_allowed();
    if (!only) {
      allowed_mask_.resize(size_t(n_vocab_));
      constraint_->fill_allowed(allowed_mask_);
      allowed = allowed_mask_.data();
    }
  }
  if (greedy) {
    if (candidates_.empty()) {
      int32_t best = -1;
      float best_logit = -std::numeric_limits<float>::infinity();
      // Ascending ids and a strict comparison: ties go to the lowest id.
      auto consider = [&](int32_t id) {
        if (logits[id] > best_logit) best = id, best_logit = logits[id];  // -inf never wins
      };
      for_each_allowed(logits, n_vocab_, allowed, only, consider);
      if (best < 0) throw Error(constraint_ ? "sampler: the constraint allows no token here"
                                            : "sampler: every token is banned (filter, logit_bias or -inf logits)");
      candidates_.push_back({best, 1.0f});
    }
    candidates_.front().p = 1.0f;
    return candidates_;
  }
  if (candidates_.empty()) collect_candidates_top_k(logits, allowed, only);
  keep_top_p_and_min_p();
  to_probabilities();
  return candidates_;
}

bool Sampler::collect_allowed_top_k(const float* logits) {
  const size_t k = params_.temperature <= 0.0f ? 1 : size_t(params_.top_k);
  // The M most likely tokens, best first, by the same one-pass heap as
  // collect_candidates_top_k; the first k allowed among them are the allowed
  // top-k. M is small, so a miss (a constraint that rejects most likely
  // tokens) costs little before the whole-vocabulary mask takes over.
  const size_t m = 2 * k + 32;
  order_.clear();
  for (int32_t id = 0; id < n_vocab_; ++id) {
    check_logit(logits[id], id);
    if (logits[id] == -std::numeric_limits<float>::infinity()) continue;
    TokenProb t{id, logits[id]};
    if (order_.size() < m) {
      order_.push_back(t);
      if (order_.size() == m) std::make_heap(order_.begin(), order_.end(), more_likely);
    } else if (more_likely(t, order_.front())) {
      std::pop_heap(order_.begin(), order_.end(), more_likely);
      order_.back() = t;
      std::push_heap(order_.begin(), order_.end(), more_likely);
    }
  }
  std::sort(order_.begin(), order_.end(), more_likely);
  for (const TokenProb& t : order_) {
    if (constraint_->allows(t.id)) candidates_.push_back(t);
    if (candidates_.size() == k) return true;
  }
  // Fewer than k allowed among the M best: exact only if nothing else is left.
  if (order_.size() < m && !candidates_.empty()) return true;
  candidates_.clear();
  return false;
}

void Sampler::apply_filter_bias_penalties(float* logits, const std::vector<int32_t>& history) {
  constexpr float kBanned = -std::numeric_limits<float>::infinity();
  if (allowed_) {
    for (int32_t id = 0; id < n_vocab_; ++id) {
      if (!allowed_(id)) logits[id] = kBanned;
    }
  }
  // Bias before penalties, as in llama.cpp's common sampler chain.
  for (const auto& [id, bias] : params_.logit_bias) logits[id] += bias;
  apply_penalties(logits, history);
}

void Sampler::apply_penalties(float* logits, const std::vector<int32_t>& history) {
  const SamplingParams& p = params_;
  if (p.repeat_last_n == 0 || history.empty()) return;
  if (p.repeat_penalty == 1.0f && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f) return;
  size_t n = p.repeat_last_n < 0 ? history.size() : std::min(history.size(), size_t(p.repeat_last_n));
  window_.assign(history.end() - n, history.end());
  // Sorting the window groups equal ids, which gives the counts without a map.
  std::sort(window_.begin(), window_.end());
  for (int32_t id : {window_.front(), window_.back()}) {  // the extremes, checked before any change
    if (id < 0 || id >= n_vocab_)
      throw Error("sampler: history token " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(n_vocab_));
  }
  for (size_t i = 0; i < window_.size();) {
    int32_t id = window_[i];
    size_t end = i;
    while (end < window_.size() && window_[end] == id) ++end;
    float count = float(end - i);
    float& logit = logits[id];
    logit = logit <= 0.0f ? logit * p.repeat_penalty : logit / p.repeat_penalty;
    logit -= count * p.frequency_penalty + p.presence_penalty;
    i = end;
  }
}

// Top-k is folded into the scan: a heap of the k best so far, whose front is
// the least likely of them, so most tokens cost one comparison and are gone.
void Sampler::collect_candidates_top_k(const float* logits, const uint8_t* allowed, const std::vector<int32_t>* only) {
  const size_t k = params_.top_k > 0 ? size_t(params_.top_k) : SIZE_MAX;
  auto consider = [&](int32_t id) {
    if (logits[id] == -std::numeric_limits<float>::infinity()) return;
    TokenProb t{id, logits[id]};
    if (candidates_.size() < k) {
      candidates_.push_back(t);
      if (candidates_.size() == k) std::make_heap(candidates_.begin(), candidates_.end(), more_likely);
    } else if (more_likely(t, candidates_.front())) {
      std::pop_heap(candidates_.begin(), candidates_.end(), more_likely);
      candidates_.back() = t;
      std::push_heap(candidates_.begin(), candidates_.end(), more_likely);
    }
  };
  for_each_allowed(logits, n_vocab_, allowed, only, consider);
  if (candidates_.empty())
    throw Error(allowed || only ? "sampler: the constraint allows no token here"
                                : "sampler: every token is banned (filter, logit_bias or -inf logits)");
}

// Min-p and top-p both keep a most-likely-first prefix of the candidates, so
// the result is the shorter of the two prefixes. Top-p normalizes over the
// candidates that survived top-k, as in llama.cpp.
void Sampler::keep_top_p_and_min_p() {
  const bool use_top_p = params_.top_p < 1.0f;
  const bool use_min_p = params_.min_p > 0.0f;
  if (!use_top_p && !use_min_p) return;
  float max_logit = candidates_[0].p;
  for (const TokenProb& t : candidates_) max_logit = std::max(max_logit, t.p);
  if (use_top_p) keep_top_p(max_logit);
  if (use_min_p) {
    // p_i >= min_p * p_max  <=>  logit_i >= max_logit + log(min_p).
    float threshold = std::min(max_logit, max_logit + std::log(params_.min_p));
    std::erase_if(candidates_, [&](const TokenProb& t) { return t.p < threshold; });
  }
}

// The list may be the whole vocabulary, so instead of sorting it, tokens are
// bucketed by how far their logit is below the best; the buckets' masses show
// where the cumulative probability crosses top_p, and only that bucket is sorted.
void Sampler::keep_top_p(float max_logit) {
  constexpr int kBuckets = 256;
  constexpr float kRange = 32.0f;  // nats; anything lower shares the last bucket
  auto bucket_of = [&](const TokenProb& t) {
    return std::min(kBuckets - 1, int((max_logit - t.p) * (kBuckets / kRange)));
  };
  std::array<double, kBuckets> mass{};
  for (const TokenProb& t : candidates_) mass[bucket_of(t)] += std::exp(t.p - max_logit);
  double total = 0.0;
  for (double m : mass) total += m;
  const double target = params_.top_p * total;
  int boundary = 0;
  double cumulative = 0.0;
  while (boundary < kBuckets - 1 && cumulative + mass[boundary] < target) cumulative += mass[boundary++];

  // [begin, in_boundary): kept for sure; [in_boundary, end): the boundary bucket, most likely first.
  auto in_boundary = std::partition(candidates_.begin(), candidates_.end(),
                                    [&](const TokenProb& t) { return bucket_of(t) < boundary; });
  auto end = std::partition(in_boundary, candidates_.end(),
                            [&](const TokenProb& t) { return bucket_of(t) == boundary; });
  std::sort(in_boundary, end, more_likely);
  for (auto it = in_boundary; it != end; ++it) {
    cumulative += std::exp(double(it->p) - max_logit);
    if (cumulative >= target) {
      end = it + 1;
      break;
    }
  }
  candidates_.erase(end, candidates_.end());
}

void Sampler::to_probabilities() {
  float max_logit = candidates_[0].p;
  for (const TokenProb& t : candidates_) max_logit = std::max(max_logit, t.p);
  double inv_temperature = 1.0 / params_.temperature;
  double total = 0.0;
  for (TokenProb& t : candidates_) {
    t.p = float(std::exp((double(t.p) - max_logit) * inv_temperature));
    total += t.p;
  }
  for (TokenProb& t : candidates_) t.p = float(t.p / total);
}

double Sampler::next_uniform() { return double(rng_() >> 11) * 0x1.0p-53; }

}  // namespace onellm

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
    : params_(params), n_vocab_(n_vocab), rng_(resolve_seed(params.seed)), dry_(params) {
  if (n_vocab <= 0) throw Error("sampler: vocabulary size must be positive, got " + std::to_string(n_vocab));
  if (!(params.repeat_penalty > 0.0f))
    throw Error("sampler: repeat_penalty must be positive, got " + std::to_string(params.repeat_penalty));
  auto check_range = [](const char* name, float v, float lo, float hi) {
    if (!(v >= lo && v <= hi))
      throw Error(std::string("sampler: ") + name + " must be between " + std::to_string(lo) + " and " +
                  std::to_string(hi) + ", got " + std::to_string(v));
  };
  check_range("typical_p", params.typical_p, 1e-6f, 1e6f);
  check_range("xtc_probability", params.xtc_probability, 0, 1);
  check_range("xtc_threshold", params.xtc_threshold, 0, 1);
  if (params.mirostat < 0 || params.mirostat > 2)
    throw Error("sampler: mirostat must be 0, 1 or 2, got " + std::to_string(params.mirostat));
  check_range("mirostat_tau", params.mirostat_tau, 1e-6f, 1e6f);
  check_range("mirostat_eta", params.mirostat_eta, 0, 1e6f);
  if (std::isnan(params.top_n_sigma)) throw Error("sampler: top_n_sigma is NaN");
  mu_ = 2 * params.mirostat_tau;
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
  if (dist.size() == 1 && params_.mirostat == 0) return dist[0].id;  // greedy or a single survivor: no draw
  // Probabilities sum to 1 up to rounding; the last token absorbs the rest.
  double u = dist.size() == 1 ? 0.0 : next_uniform();
  double cumulative = 0.0;
  const TokenProb* chosen = &dist.back();
  for (const TokenProb& t : dist) {
    cumulative += t.p;
    if (u < cumulative) {
      chosen = &t;
      break;
    }
  }
  if (params_.mirostat != 0 && params_.temperature > 0.0f) {  // steer toward the target surprise
    const float surprise = -std::log2(chosen->p);
    mu_ -= params_.mirostat_eta * (surprise - params_.mirostat_tau);
  }
  return chosen->id;
}

std::span<const TokenProb> Sampler::distribution(float* logits, const std::vector<int32_t>& history) {
  apply_filter_bias_penalties(logits, history);
  candidates_.clear();
  floor_ = -std::numeric_limits<float>::infinity();
  const bool greedy = params_.temperature <= 0.0f;
  // The constraint's allowed set, if the best-first check could not settle it:
  // a short id list, or a whole-vocabulary mask.
  const std::vector<int32_t>* only = nullptr;
  const uint8_t* allowed = nullptr;
  // Top-n-sigma needs every allowed logit's statistics, so not the best-first path.
  const bool sigma = params_.top_n_sigma > 0.0f && !greedy && params_.mirostat == 0;
  if (constraint_ &&
      !((greedy || (params_.top_k > 0 && params_.mirostat == 0 && !sigma)) && !constraint_->mask_is_cheap() &&
        collect_allowed_top_k(logits))) {
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
  if (params_.mirostat != 0) {
    candidates_.clear();  // Mirostat truncates by itself: every allowed token
    const int32_t top_k = params_.top_k;
    params_.top_k = 0;
    collect_candidates_top_k(logits, allowed, only);
    params_.top_k = top_k;
    to_probabilities();
    keep_mirostat();
    return candidates_;
  }
  if (candidates_.empty()) {
    if (sigma) floor_ = sigma_floor(logits, allowed, only);
    collect_candidates_top_k(logits, allowed, only);
  }
  if (params_.typical_p < 1.0f) keep_typical();
  keep_top_p_and_min_p();
  if (params_.xtc_probability > 0.0f) exclude_top_choices();
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
  dry_.apply(logits, n_vocab_, history);
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
    if (logits[id] == -std::numeric_limits<float>::infinity() || logits[id] < floor_) return;
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

// Top-n-sigma (Tang et al. 2024): the logits' mean and standard deviation
// over the allowed finite ones; the floor is n deviations below the best.
float Sampler::sigma_floor(const float* logits, const uint8_t* allowed, const std::vector<int32_t>* only) const {
  double sum = 0, sum_sq = 0;
  float best = -std::numeric_limits<float>::infinity();
  int64_t count = 0;
  for_each_allowed(logits, n_vocab_, allowed, only, [&](int32_t id) {
    const float x = logits[id];
    if (x == -std::numeric_limits<float>::infinity()) return;
    best = std::max(best, x);
    sum += x, sum_sq += double(x) * x, ++count;
  });
  if (count == 0) return -std::numeric_limits<float>::infinity();
  const double mean = sum / double(count);
  const double deviation = std::sqrt(std::max(0.0, sum_sq / double(count) - mean * mean));
  return static_cast<float>(best - params_.top_n_sigma * deviation);
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

// Locally typical sampling (Meister et al. 2022, as llama.cpp): by how far
// each token's surprise is from the entropy, nearest first, until typical_p
// of the probability is kept.
void Sampler::keep_typical() {
  if (candidates_.size() < 2) return;
  float max_logit = candidates_[0].p;
  for (const TokenProb& t : candidates_) max_logit = std::max(max_logit, t.p);
  double z = 0;
  for (const TokenProb& t : candidates_) z += std::exp(double(t.p) - max_logit);
  const double log_z = std::log(z) + max_logit;
  double entropy = 0;
  for (const TokenProb& t : candidates_) entropy -= std::exp(t.p - log_z) * (t.p - log_z);
  auto distance = [&](const TokenProb& t) { return std::abs(-(double(t.p) - log_z) - entropy); };
  std::sort(candidates_.begin(), candidates_.end(), [&](const TokenProb& a, const TokenProb& b) {
    const double da = distance(a), db = distance(b);
    return da < db || (da == db && a.id < b.id);
  });
  double cumulative = 0;
  size_t keep = candidates_.size();
  for (size_t i = 0; i < candidates_.size(); ++i) {
    cumulative += std::exp(double(candidates_[i].p) - log_z);
    if (cumulative >= params_.typical_p) {
      keep = i + 1;
      break;
    }
  }
  candidates_.resize(keep);
}

// XTC: on a draw below xtc_probability, the tokens at or above the threshold
// go, except the least likely of them (if there are at least two).
void Sampler::exclude_top_choices() {
  if (candidates_.size() < 2 || params_.xtc_threshold > 0.5f) return;
  if (next_uniform() >= params_.xtc_probability) return;
  std::sort(candidates_.begin(), candidates_.end(), more_likely);
  const double max_logit = candidates_[0].p;
  double z = 0;
  for (const TokenProb& t : candidates_) z += std::exp(double(t.p) - max_logit);
  size_t above = 0;
  while (above < candidates_.size() && std::exp(double(candidates_[above].p) - max_logit) / z >= params_.xtc_threshold)
    ++above;
  if (above >= 2) candidates_.erase(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(above - 1));
}

// Mirostat on probabilities (after temperature). v2: tokens more surprising
// than mu bits go (the best stays). v1: keeps the top k that a Zipf fit of
// the 100 most likely tokens says gives surprise mu.
void Sampler::keep_mirostat() {
  std::sort(candidates_.begin(), candidates_.end(), more_likely);
  size_t keep = candidates_.size();
  if (params_.mirostat == 2) {
    keep = 1;
    while (keep < candidates_.size() && -std::log2(candidates_[keep].p) <= mu_) ++keep;
  } else {
    double sum_tb = 0, sum_tt = 0;
    for (size_t i = 0; i + 1 < std::min<size_t>(100, candidates_.size()); ++i) {
      const double t = std::log(double(i + 2) / double(i + 1));
      const double b = std::log(double(candidates_[i].p) / candidates_[i + 1].p);
      sum_tb += t * b;
      sum_tt += t * t;
    }
    const double s_hat = sum_tt > 0 ? sum_tb / sum_tt : 1.0;
    const double eps = s_hat - 1;
    const double k = std::pow(eps * std::pow(2.0, double(mu_)) / (1 - std::pow(double(n_vocab_), -eps)), 1 / s_hat);
    keep = std::isfinite(k) ? static_cast<size_t>(std::clamp(k, 1.0, double(candidates_.size()))) : candidates_.size();
  }
  candidates_.resize(std::max<size_t>(1, keep));
  double total = 0;
  for (const TokenProb& t : candidates_) total += t.p;
  for (TokenProb& t : candidates_) t.p = float(t.p / total);
}

double Sampler::next_uniform() { return double(rng_() >> 11) * 0x1.0p-53; }

}  // namespace onellm

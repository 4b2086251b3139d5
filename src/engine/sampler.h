// Token sampling: turns one row of logits into the next token id.
//
// The chain follows llama.cpp's default order: token filter -> logit bias ->
// penalties -> DRY -> top-n-sigma -> top-k -> typical -> top-p -> min-p ->
// XTC -> temperature -> random draw. With temperature <= 0 the steps after the penalties become a
// plain argmax. Mirostat (v1 or v2) replaces top-k to XTC, as in llama.cpp:
// bias and penalties, temperature, then Mirostat's own truncation, whose
// target surprise it steers after each draw. Draws are reproducible for a
// fixed seed.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine/dry_penalty.h"

namespace onellm {

struct SamplingParams {
  float temperature = 0.8f;  // <= 0: greedy (argmax, ties -> lowest id)
  int32_t top_k = 40;        // <= 0: off
  float top_p = 0.95f;       // >= 1: off
  float min_p = 0.05f;       // <= 0: off
  // llama.cpp semantics: positive logits are divided by repeat_penalty,
  // negative ones multiplied. repeat_last_n: 0 = off, < 0 = whole history.
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  // OpenAI semantics over the same window: logit -= presence * (count > 0)
  // + frequency * count.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  // llama.cpp's LLAMA_DEFAULT_SEED: this value means "seed from std::random_device".
  static constexpr uint64_t kRandomSeed = 0xFFFFFFFF;
  uint64_t seed = kRandomSeed;
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logit; -inf bans
  // Locally typical sampling: keeps the tokens whose surprise is nearest the
  // distribution's entropy, up to this much probability. >= 1: off.
  float typical_p = 1.0f;
  // XTC ("exclude top choices"): with this probability a step drops every
  // token at or above xtc_threshold but the least likely of them. <= 0: off.
  float xtc_probability = 0.0f;
  float xtc_threshold = 0.1f;
  // Mirostat 1 or 2 (0: off): target surprise tau (bits), learning rate eta.
  int32_t mirostat = 0;
  float mirostat_tau = 5.0f;
  float mirostat_eta = 0.1f;
  // DRY (engine/dry_penalty.h): 0 multiplier = off. Window -1: the whole
  // history; 0: off. The breaker strings become token sequences through the
  // tokenizer (Generation does that; a bare Sampler has none).
  float dry_multiplier = 0.0f;
  float dry_base = 1.75f;
  int32_t dry_allowed_length = 2;
  int32_t dry_penalty_last_n = -1;
  std::vector<std::string> dry_sequence_breakers = {"\n", ":", "\"", "*"};
  // Top-n-sigma: keeps the tokens whose logit is within n standard
  // deviations (over the allowed tokens' logits) of the best. <= 0: off.
  float top_n_sigma = -1.0f;
};

struct TokenProb {
  int32_t id;
  float p;
};

// Which tokens may come next (e.g. a grammar). Sampling stays exact: the
// distribution is the one over the allowed tokens only.
class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  virtual bool allows(int32_t id) = 0;
  // allowed[id] = 1 for every allowed id < allowed.size(), else 0.
  virtual void fill_allowed(std::vector<uint8_t>& allowed) = 0;
  // True when fill_allowed costs no more than a pass over the vocabulary
  // (e.g. cached): then it is used instead of checking tokens one by one.
  virtual bool mask_is_cheap() { return false; }
  // The allowed ids (ascending) when they are few, so the sampler looks at
  // those only; nullptr: use fill_allowed. Valid until the constraint changes.
  virtual const std::vector<int32_t>* few_allowed() { return nullptr; }
};

class Sampler {
 public:
  // Throws Error for n_vocab <= 0, repeat_penalty <= 0 or a logit_bias id
  // outside the vocabulary.
  Sampler(const SamplingParams& params, int32_t n_vocab);

  // Picks the next token from one row of logits (n_vocab floats; modified in
  // place), given the previous prompt/generated tokens for the penalties.
  // Throws Error when every token is banned, a logit is NaN or a history id
  // is outside the vocabulary.
  int32_t sample(float* logits, const std::vector<int32_t>& history);

  // The distribution sample() draws from: the surviving tokens with their
  // final probabilities (summing to 1), in no particular order. Greedy gives
  // one token with p = 1. Valid until the next call on this sampler.
  std::span<const TokenProb> distribution(float* logits, const std::vector<int32_t>& history);
  // The distribution the last sample() drew from, until the next call.
  std::span<const TokenProb> last_distribution() const { return candidates_; }

  // Mask hook for constrained decoding: tokens with allowed(id) == false get
  // -inf before anything else. Applied over the whole vocabulary each step so
  // the result is exact (the llama.cpp "sample first, check after" shortcut
  // changes the distribution). An empty function removes the filter.
  void set_token_filter(std::function<bool(int32_t)> allowed);

  // Constrained decoding: only tokens the constraint allows are drawn (it
  // must outlive the calls; nullptr removes it). Greedy and top-k sampling
  // check tokens best-first and stop once the k survivors are known, which
  // gives the same distribution as masking the whole vocabulary first.
  void set_constraint(TokenConstraint* constraint) { constraint_ = constraint; }

  // DRY's sequence breakers (dry_breakers() of the model's tokenizer).
  void set_dry_breakers(std::shared_ptr<const DryBreakers> breakers) { dry_.set_breakers(std::move(breakers)); }

  const SamplingParams& params() const { return params_; }

 private:
  void apply_filter_bias_penalties(float* logits, const std::vector<int32_t>& history);
  void apply_penalties(float* logits, const std::vector<int32_t>& history);
  // Fills candidates_ with the top_k best tokens (all if top-k is off)
  // among those whose logit is finite (and allowed[id], if given; only the
  // ids in `only`, if given).
  void collect_candidates_top_k(const float* logits, const uint8_t* allowed = nullptr,
                                const std::vector<int32_t>* only = nullptr);
  // Top-n-sigma's floor over the allowed logits (-inf when off).
  float sigma_floor(const float* logits, const uint8_t* allowed, const std::vector<int32_t>* only) const;
  void keep_top_p_and_min_p();
  void keep_typical();     // on logits, temperature 1
  void exclude_top_choices();  // XTC, on logits, temperature 1
  void keep_mirostat();    // on probabilities; sample() then updates mu_
  void keep_top_p(float max_logit);
  void to_probabilities();
  double next_uniform();  // in [0, 1), 53 random bits
  // Best-first search for the allowed top-k; false if it would take too many
  // checks (then the whole vocabulary is masked instead).
  bool collect_allowed_top_k(const float* logits);

  SamplingParams params_;
  int32_t n_vocab_;
  std::mt19937_64 rng_;
  std::function<bool(int32_t)> allowed_;
  TokenConstraint* constraint_ = nullptr;
  std::vector<uint8_t> allowed_mask_;
  std::vector<TokenProb> order_;  // scratch heap for collect_allowed_top_k
  std::vector<TokenProb> candidates_;  // holds logits until to_probabilities()
  std::vector<int32_t> window_;        // scratch for penalty counting
  float mu_ = 0;                       // Mirostat: the current maximum surprise (bits)
  DryPenalty dry_;
  float floor_ = -std::numeric_limits<float>::infinity();  // top-n-sigma: candidates' least logit (-inf: off)
};

}  // namespace onellm

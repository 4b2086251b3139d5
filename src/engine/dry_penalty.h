// DRY ("don't repeat yourself", koboldcpp's repetition penalty, as llama.cpp
// runs it): a token that would extend a stretch of the history which already
// occurred earlier, longer than dry_allowed_length tokens, loses
//   dry_multiplier * dry_base ^ (length - dry_allowed_length)
// from its logit. Unlike the flat repeat penalty it leaves single repeated
// words alone and stops verbatim loops. Repeats never reach back across a
// sequence breaker (by default a newline, ':', '"' or '*'), so a list's or a
// dialogue's shared openings are not punished.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace onellm {

class Tokenizer;
struct SamplingParams;

// Sequence breakers as token sequences in text order: a token whose text
// contains a breaker string is a breaker by itself; a token whose text ends
// with the start of one is a breaker when the tokens of the rest follow.
using DryBreakers = std::vector<std::vector<int32_t>>;

// Breaker strings to token sequences by one pass over the vocabulary; kept
// per tokenizer and list, so a daemon's requests pay for it once. Strings
// are cut to 40 bytes and tails to 20 tokens (llama.cpp's limits); empty
// strings are skipped.
std::shared_ptr<const DryBreakers> dry_breakers(const Tokenizer& tokenizer, const std::vector<std::string>& strings);

class DryPenalty {
 public:
  // Throws Error for a negative multiplier, a base below 1, a negative
  // allowed length or a window below -1. Without breakers, repeats reach
  // back as far as the window.
  explicit DryPenalty(const SamplingParams& params);
  void set_breakers(std::shared_ptr<const DryBreakers> breakers) { breakers_ = std::move(breakers); }
  bool enabled() const { return multiplier_ != 0.0f && window_ != 0; }
  // Subtracts the penalties from logits (n_vocab of them), given every token
  // so far (prompt and generated). Throws Error for a history id outside the
  // vocabulary.
  void apply(float* logits, int32_t n_vocab, const std::vector<int32_t>& history);

 private:
  // How many of the window's last tokens follow its last breaker.
  int64_t tokens_after_last_breaker() const;
  bool is_single_token_breaker(int32_t id) const;

  float multiplier_, base_;
  int32_t allowed_length_, window_;
  std::shared_ptr<const DryBreakers> breakers_;
  std::vector<int32_t> reversed_;  // the window, newest first
  std::vector<int32_t> z_;         // Z-array of reversed_
  std::vector<std::pair<int32_t, int32_t>> extends_;  // (token, repeat length it would extend)
};

}  // namespace onellm

// Perplexity of a model on a text, measured as llama.cpp's llama-perplexity
// does it so that the numbers compare: the tokens are cut into chunks of
// n_ctx, each evaluated from an empty cache (its first token replaced by BOS
// when the model adds one), and only the second half of each chunk is scored
// (each of those tokens sees at least n_ctx/2 tokens before it).
//
// For judging a quantization, one run can save the scored rows'
// log-probabilities (a "base" file: fp16, n_vocab per row), and a run of
// another model on the same tokens compares against it: KL divergence per
// token, how often the most likely token agrees, and the change in the
// probability of the right token.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace onellm {

struct PerplexityOptions {
  int64_t n_ctx = 512;       // tokens per chunk (the sequence must hold them)
  int64_t max_chunks = -1;   // < 0: every whole chunk of the text
  std::string save_base;     // write the scored rows' log-probabilities here
  std::string compare_base;  // compare against such a file (same tokens, same vocabulary)
};

struct KlStats {
  double mean = 0, error = 0;       // KL(base || this model) per token, nats, and its standard error
  double max = 0, p99 = 0, p90 = 0, median = 0;
  double same_top = 0;              // share of tokens whose most likely token is the base's
  double base_ppl = 0;              // the base model's perplexity on the same tokens
  double rms_dp = 0;                // RMS of p(right token) - base p(right token)
};

struct PerplexityStats {
  int64_t chunks = 0;       // chunks evaluated
  int64_t scored = 0;       // tokens scored
  double nll = 0;           // mean negative log-likelihood (nats) of the scored tokens
  double ppl = 0;           // exp(nll)
  double ppl_error = 0;     // standard error of ppl (from the spread of the per-token nll)
  double top1 = 0;          // share of scored tokens that were the model's most likely
  bool compared = false;    // compare_base given: kl holds the comparison
  KlStats kl;
};

// Scores `tokens` (the whole text, BOS included if the model adds one);
// on_chunk sees the running stats after each chunk (kl: only at the end).
// Throws Error if the text has fewer than 2 * n_ctx tokens (llama.cpp's
// rule), n_ctx exceeds the sequence's context, or a base file cannot be
// written, read, or does not match these tokens and this vocabulary.
PerplexityStats perplexity(Sequence& sequence, const std::vector<int32_t>& tokens, const PerplexityOptions& options,
                           const std::function<void(const PerplexityStats&)>& on_chunk = nullptr);

// The chunk size a base file was written with (to size the sequence for a
// comparison); Error if it is not a readable base file.
int64_t perplexity_base_context(const std::string& path);

}  // namespace onellm

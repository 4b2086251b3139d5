// The engine layer: one sequence's generation over a shared Model —
// prompt prefill in chunks, sampling, stop conditions, streaming text.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sampler.h"
#include "engine/stop_strings.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace onellm {

struct SequenceOptions {
  int64_t n_ctx = 0;      // 0: the model's training context, at most 4096
  int64_t n_batch = 512;  // prompt tokens per forward pass (bounds scratch memory)
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  int64_t max_tokens = -1;  // -1: until end of generation or the context is full
  SamplingParams sampling;
  std::vector<std::string> stop;
  bool ignore_eos = false;
};

enum class FinishReason { kEndOfGeneration, kStopString, kMaxTokens, kContextFull, kCancelled };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled" as OpenAI names them

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids (an end-of-generation token is not included)
  std::string text;             // what was streamed, stop string excluded
  FinishReason finish = FinishReason::kMaxTokens;
  int64_t n_prompt_evaluated = 0;  // prompt tokens actually computed (reused prefix excluded)
  double prompt_seconds = 0, generate_seconds = 0;
};

// A sequence: its KV cache and the tokens in it. Consecutive requests that
// share a prefix with what is cached reuse it (multi-turn chat).
class Sequence {
 public:
  Sequence(const Model& model, const Tokenizer& tokenizer, ThreadPool* pool, SequenceOptions options = {});

  int64_t n_ctx() const { return cache_.capacity(); }
  const std::vector<int32_t>& tokens() const { return tokens_; }

  // Evaluates the prompt (reusing the cached common prefix) and returns the
  // logits after its last token. Throws Error if it does not fit the context.
  const std::vector<float>& prefill(const std::vector<int32_t>& prompt);
  // Logits for every prompt position, computed from an empty cache.
  std::vector<float> all_logits(const std::vector<int32_t>& prompt);

  // Generates after `request.prompt`. on_text receives complete UTF-8 pieces
  // as they are decided; returning false cancels.
  GenerationResult generate(const GenerationRequest& request,
                            const std::function<bool(std::string_view)>& on_text = nullptr);

 private:
  void eval(const int32_t* tokens, int64_t n);
  const Model& model_;
  const Tokenizer& tokenizer_;
  ThreadPool* pool_;
  SequenceOptions options_;
  KvCache cache_;
  std::vector<int32_t> tokens_;
  std::vector<float> logits_;
};

}  // namespace onellm

// The engine layer: one sequence's generation over a shared Model —
// prompt prefill in chunks, sampling, stop conditions, streaming text.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/call_gate.h"
#include "engine/copy_bias.h"
#include "engine/grammar.h"
#include "engine/sampler.h"
#include "engine/stop_strings.h"
#include "engine/trigger_watch.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace onellm {

struct SequenceOptions {
  int64_t n_ctx = 0;      // 0: the model's training context, at most 4096
  int64_t n_batch = 512;  // prompt tokens per forward pass (bounds scratch memory)
  // kFast: llama.cpp's default arithmetic (8-bit activations for quantized
  // weights, SIMD); kExact: F32 math on dequantized weights (the reference).
  MathMode math = MathMode::kFast;
  // KV cache element type: F16 (llama.cpp's default), Q8_0 or F32. kExact
  // always uses F32: it is the reference.
  TensorType kv_type = TensorType::F16;
  // This sequence's LoRA adapter (LoraWeights::load for the same model), for
  // its whole life: its cache holds keys and values computed with it. Null:
  // the model's own (Model::set_lora), usually none. Batched decode mixes
  // sequences with different adapters in one pass.
  std::shared_ptr<const LoraWeights> lora;
};

// How an embedding is pooled from the final hidden states of the input's
// tokens (llama.cpp's <arch>.pooling_type names them: 1 mean, 2 cls, 3 last).
enum class Pooling { kNone, kMean, kCls, kLast };
// "mean", "cls", "last"; nullopt for any other name.
std::optional<Pooling> pooling_named(std::string_view name);
const char* pooling_name(Pooling p);
// The model's own pooling (ModelConfig::pooling_type: mean, cls or last);
// mean for a model that names none, as for chat models. Throws Error for a
// reranker's (rank).
Pooling default_pooling(const ModelConfig& config);

struct GenerationRequest {
  std::vector<int32_t> prompt;
  // Not kNone: the prompt is embedded, not continued. The whole prompt is
  // evaluated (nothing cached is reused) and GenerationResult::embedding is
  // its pooled hidden state, L2-normalized unless embed_normalize is false.
  Pooling embed = Pooling::kNone;
  bool embed_normalize = true;
  int64_t max_tokens = -1;  // -1: until end of generation or the context is full
  SamplingParams sampling;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  // Constrained decoding: the generated text is a sentence of this grammar
  // (generation ends when the grammar can go no further).
  std::shared_ptr<const Grammar> grammar;
  // Lazy grammar (tool calls with tool_choice "auto"): text is free until one
  // of these strings is generated; from its first byte on, the rest of the
  // output must match the grammar, which therefore starts with the trigger.
  std::vector<std::string> grammar_triggers;
  // Copy-aware decoding of tool-call argument values (copy_bias.h); off
  // unless copy.bias != 0.
  CopyBiasOptions copy;
  // A call starts only where the model is this sure of it (call_gate.h); off
  // unless call_gate.min_probability > 0.
  CallGateOptions call_gate;
  // >= 0: record each generated token's log-probability under the model's own
  // distribution (its logits before sampling settings, biases and grammar)
  // and this many most likely alternatives (OpenAI's logprobs/top_logprobs).
  int top_logprobs = -1;
  // With top_logprobs >= 0: the log-probabilities are instead those of the
  // distribution the token was drawn from, after the whole sampling chain
  // (llama-server's post_sampling_probs); the alternatives are the surviving
  // tokens, most likely first.
  bool post_sampling_probs = false;
  // Prompt-lookup decoding (prompt_lookup.h): each decode pass also checks
  // up to this many tokens guessed from the context. The output is
  // unchanged. <= 0: off; -1 also means "not set" (a scheduler then applies
  // its default).
  int32_t lookup_draft = -1;
  // Tokens the caller expects the output to repeat (OpenAI's "prediction"):
  // the guesses come from them first (predicted_draft), then from the
  // context. Used only when lookup_draft > 0.
  std::vector<int32_t> predicted;
};

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // most likely first
};

enum class FinishReason { kEndOfGeneration, kStopString, kMaxTokens, kContextFull, kCancelled };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled" as OpenAI names them

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids (an end-of-generation token is not included)
  std::string text;             // what was streamed, stop string excluded
  FinishReason finish = FinishReason::kMaxTokens;
  int64_t n_prompt_evaluated = 0;  // prompt tokens actually computed (reused prefix excluded)
  std::vector<TokenLogprob> logprobs;  // one per token, when GenerationRequest::top_logprobs >= 0
  std::vector<float> embedding;        // n_embd floats, when GenerationRequest::embed is set
  double prompt_seconds = 0, generate_seconds = 0;
  int64_t draft_tokens = 0, draft_accepted = 0;  // prompt-lookup decoding: guessed, and right
};

// The tokens of a chat: messages rendered through the chat template (with
// the model's BOS/EOS texts and a generation prompt), special tokens parsed,
// BOS added if the model wants one and the template did not write it.
// The text those tokens come from: the rendered template, with the model's
// BOS/EOS texts unless options name others.
std::string chat_prompt_text(const Tokenizer& tokenizer, const ChatTemplate& chat_template,
                             const std::vector<ChatMessage>& messages, ChatTemplateOptions options = {});
std::vector<int32_t> chat_prompt_tokens(const Tokenizer& tokenizer, const ChatTemplate& chat_template,
                                        const std::vector<ChatMessage>& messages,
                                        ChatTemplateOptions options = {});

// A sequence: its KV cache and the tokens in it. Consecutive requests that
// share a prefix with what is cached reuse it (multi-turn chat).
class Sequence {
 public:
  Sequence(const Model& model, const Tokenizer& tokenizer, ThreadPool* pool, SequenceOptions options = {});

  const Model& model() const { return model_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  ThreadPool* pool() const { return pool_; }
  int64_t n_ctx() const { return cache_.capacity(); }
  int64_t n_batch() const { return options_.n_batch; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  const std::vector<float>& logits() const { return logits_; }  // after the last evaluated token
  size_t kv_bytes() const { return cache_.bytes(); }
  const LoraWeights* lora() const { return options_.lora.get(); }

  // Checks the prompt fits, drops what is cached beyond its common prefix
  // with the prompt, and returns how many prompt tokens are already cached
  // (always fewer than the prompt, so its last token gets evaluated).
  size_t reuse_prefix(const std::vector<int32_t>& prompt);
  // Evaluates tokens at the end of the sequence (one forward pass of up to
  // n_batch tokens at a time); logits() then holds the last token's row.
  // hidden (n x n_embd): every token's final hidden state, and no logits.
  void eval(const int32_t* tokens, int64_t n, float* hidden = nullptr);
  // The same, writing every token's logits row (n x n_vocab) to `logits`.
  void eval_logits(const int32_t* tokens, int64_t n, float* logits);
  // Empties the cache (an embedding reads every token's hidden state).
  void clear();
  // Keeps the first n tokens (and their keys and values), dropping the rest.
  void truncate(size_t n);
  // Evaluates counts[i] tokens at the end of sequences[i], for n distinct
  // sequences of one model, in a single forward pass (batched decode, with
  // prompt chunks riding along: the weights are read once for all); each
  // sequence's logits() is then its last token's row.
  // rows (optional): where rows[i] is set, every one of sequence i's tokens
  // gets its logits row there (counts[i] x n_vocab), as eval_logits.
  static void eval_batch(Sequence* const* sequences, const int32_t* const* tokens, const int64_t* counts, int64_t n,
                         float* const* rows = nullptr);
  // A prompt chunk evaluated one layer at a time (Model::Pass), so that a
  // scheduler can run a few layers, let more urgent work in, and resume it
  // later without recomputing. Until it is done or dropped nothing else may
  // evaluate on this sequence; dropping it leaves the sequence as it was.
  class ChunkEval {
   public:
    // hidden: as for eval, valid until the last step.
    ChunkEval(Sequence& sequence, const int32_t* tokens, int64_t n, float* hidden = nullptr);
    int64_t n_tokens() const { return static_cast<int64_t>(tokens_.size()); }
    int64_t steps() const { return pass_.steps(); }
    bool done() const { return pass_.done(); }
    // The next layer (the last step: the output head; then the tokens are
    // in the sequence and its logits() are the last token's row).
    void step();

   private:
    Sequence& seq_;
    std::vector<int32_t> tokens_;
    Model::Pass pass_;
  };
  bool full() const { return cache_.size() >= cache_.capacity(); }
  // For the context layer, which saves and restores KV chunks: the cache, and
  // adopting tokens whose keys/values were written into it directly (their
  // logits are not known; the next prompt re-evaluates its last token).
  KvCache& kv_cache() { return cache_; }
  const KvCache& kv_cache() const { return cache_; }
  void adopt_restored(std::vector<int32_t> tokens);

  // Evaluates the prompt (reusing the cached common prefix) and returns the
  // logits after its last token. Throws Error if it does not fit the context.
  const std::vector<float>& prefill(const std::vector<int32_t>& prompt);
  // Logits for every prompt position, computed from an empty cache.
  std::vector<float> all_logits(const std::vector<int32_t>& prompt);

  // Generates after `request.prompt` to the end. on_text receives complete
  // UTF-8 pieces as they are decided; returning false cancels.
  GenerationResult generate(const GenerationRequest& request,
                            const std::function<bool(std::string_view)>& on_text = nullptr);

 private:
  const Model& model_;
  const Tokenizer& tokenizer_;
  ThreadPool* pool_;
  SequenceOptions options_;
  KvCache cache_;
  std::vector<int32_t> tokens_;
  std::vector<float> logits_;
};

// One request in progress on a Sequence, advanced in small steps so that a
// scheduler can interleave many requests: prompt chunks, then one token per
// step. Sequence::generate is the same thing run to the end.
class Generation {
 public:
  // Throws Error if the prompt is empty or does not fit the context.
  Generation(Sequence& sequence, GenerationRequest request);
  ~Generation();
  Generation(const Generation&) = delete;  // the grammar guard points into it
  Generation& operator=(const Generation&) = delete;

  bool done() const { return done_; }
  bool in_prefill() const { return !done_ && prompt_done_ < request_.prompt.size(); }
  size_t prompt_remaining() const { return request_.prompt.size() - prompt_done_; }
  // Prefill: evaluates up to max_prompt_tokens more prompt tokens. Decode:
  // samples one token, evaluates it, and returns the text it completed.
  std::string step(int64_t max_prompt_tokens);
  // Decode in two halves, so that a scheduler can evaluate the tokens of
  // many generations in one batched pass: decide() samples the next token
  // and returns the text it completed; when the generation goes on, that
  // token waits in pending_token() until the caller has evaluated it in the
  // sequence (Sequence::eval_batch) and called evaluated().
  std::string decide();
  // Prefill in two halves likewise: the next prompt tokens (at most max),
  // and, once the caller has evaluated them in the sequence, the count done.
  int64_t next_prompt_tokens(int64_t max_tokens, const int32_t** tokens) const;
  // Embedding: where the caller evaluates the next n prompt tokens' hidden
  // states into (Sequence::eval / ChunkEval); null when not embedding.
  float* hidden_rows(int64_t n);
  void prompt_evaluated(int64_t n);
  bool has_pending() const { return pending_; }
  int32_t pending_token() const { return pending_token_; }
  void evaluated() { pending_ = false; }
  // Prompt lookup in the same two halves: the tokens to evaluate now (the
  // pending token, then the guesses after it; the pending token alone when
  // lookup is off or finds nothing) and, once the caller has evaluated them
  // with every row's logits into guess_rows(), the text decided along the
  // guesses. A token decided where a guess was wrong stays pending (decided
  // already: the caller evaluates it next without calling decide()).
  const std::vector<int32_t>& pending_with_guesses();
  float* guess_rows();  // room for pending_with_guesses().size() rows
  std::string evaluated_with_rows();
  Sequence& sequence() { return seq_; }
  void cancel();
  const GenerationResult& result() const { return result_; }
  size_t n_generated() const { return result_.tokens.size(); }

 private:
  std::string finish(FinishReason reason);
  // decide() from a given row of logits (the next token's distribution).
  std::string decide_from(std::span<const float> raw);
  // pending_with_guesses(), evaluated here (Sequence::generate's step).
  std::string evaluate_pending_with_guesses();
  // Feeds a sampled token to the grammar (activating a lazy one on its
  // trigger); false if the grammar cannot take it.
  bool advance_grammar(int32_t token);
  void pool_hidden(int64_t n);  // embedding: adds the n rows in hidden_ (embedding.cpp)
  void finish_embedding();
  Sequence& seq_;
  GenerationRequest request_;
  Sampler sampler_;
  StopStringMatcher stops_;
  StreamingDecoder decoder_;
  std::vector<int32_t> history_;
  std::unique_ptr<GrammarMatcher> grammar_;
  std::unique_ptr<TokenConstraint> trigger_guard_;  // lazy grammar before its trigger
  std::unique_ptr<ArgumentCopyBias> copy_;          // null when request.copy is off
  std::unique_ptr<CallGate> gate_;                  // null when request.call_gate is off
  bool grammar_active_ = false;
  TriggerWatch grammar_watch_;  // lazy grammar: looks for its trigger in the output
  size_t prompt_done_ = 0;
  bool done_ = false;
  bool pending_ = false;  // pending_token_ is sampled but not evaluated yet
  int32_t pending_token_ = -1;
  GenerationResult result_;
  std::vector<int32_t> guessed_;      // prompt lookup: the pending token and the guesses after it
  std::vector<float> rows_;           // their logits rows
  int32_t draft_window_ = 0;          // tokens to guess next (adapts; 0: not yet set)
  size_t prediction_cursor_ = 0;      // where in request_.predicted the output is (predicted_draft)
  std::vector<float> hidden_;         // embedding: the rows of the chunk being evaluated
  std::vector<double> pooled_;        // embedding: their running sum (mean) or the chosen row
  std::chrono::steady_clock::time_point t_start_, t_first_token_;
};

}  // namespace onellm

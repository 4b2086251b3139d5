#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>

#include "base/error.h"
#include "engine/engine.h"
#include "engine/prompt_lookup.h"

namespace onellm {
namespace {

double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Before a lazy grammar's trigger: any token, except one that would complete
// a trigger and continue with text the grammar does not accept.
class TriggerGuard : public TokenConstraint {
 public:
  TriggerGuard(const TriggerWatch& watch, GrammarMatcher& grammar, const GrammarVocab& vocab)
      : watch_(watch), grammar_(grammar), vocab_(vocab) {}
  bool allows(int32_t id) override {
    if (id < 0 || id >= vocab_.n_vocab()) return false;
    if (vocab_.is_eog(id)) return true;
    const std::string text = watch_.recent() + vocab_.piece(id);
    const size_t at = watch_.find_in(text);
    return at == std::string::npos || grammar_.would_accept_text(std::string_view(text).substr(at));
  }
  void fill_allowed(std::vector<uint8_t>& allowed) override {
    for (size_t id = 0; id < allowed.size(); ++id) allowed[id] = allows(int32_t(id));
  }

 private:
  const TriggerWatch& watch_;
  GrammarMatcher& grammar_;
  const GrammarVocab& vocab_;
};

// log-softmax of the model's logits at `tok`, and the `top` most likely ids
// (ties to the lower id).
TokenLogprob token_logprob(std::span<const float> logits, int32_t tok, int top) {
  float max = -INFINITY;
  for (float x : logits) max = std::max(max, x);
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x - max));
  const float log_z = max + static_cast<float>(std::log(sum));
  TokenLogprob t;
  t.token = tok;
  t.logprob = logits[static_cast<size_t>(tok)] - log_z;
  const size_t k = std::min(static_cast<size_t>(top), logits.size());
  if (k == 0) return t;
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(), [&](int32_t a, int32_t b) {
    return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
           (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
  });
  for (size_t i = 0; i < k; ++i) t.top.emplace_back(ids[i], logits[static_cast<size_t>(ids[i])] - log_z);
  return t;
}

// The same from the distribution a token was drawn from (its surviving
// tokens; a token outside it has log-probability -inf).
TokenLogprob drawn_logprob(std::span<const TokenProb> distribution, int32_t tok, int top) {
  std::vector<TokenProb> drawn(distribution.begin(), distribution.end());
  std::sort(drawn.begin(), drawn.end(), [](const TokenProb& a, const TokenProb& b) {
    return a.p > b.p || (a.p == b.p && a.id < b.id);
  });
  TokenLogprob t;
  t.token = tok;
  t.logprob = -INFINITY;
  for (const TokenProb& c : drawn)
    if (c.id == tok) t.logprob = std::log(c.p);
  const size_t k = std::min(static_cast<size_t>(top), drawn.size());
  for (size_t i = 0; i < k; ++i) t.top.emplace_back(drawn[i].id, std::log(drawn[i].p));
  return t;
}

}  // namespace

Generation::~Generation() = default;

Generation::Generation(Sequence& seq, GenerationRequest request)
    : seq_(seq), request_(std::move(request)),
      sampler_(request_.sampling, static_cast<int32_t>(seq.model().config().n_vocab)),
      stops_(request_.stop), decoder_(seq.tokenizer()), history_(request_.prompt),
      t_start_(std::chrono::steady_clock::now()) {
  if (request_.sampling.dry_multiplier != 0.0f && request_.sampling.dry_penalty_last_n != 0)
    sampler_.set_dry_breakers(dry_breakers(seq.tokenizer(), request_.sampling.dry_sequence_breakers));
  // No reply outgrows the context, so neither need the text it may repeat
  // (a huge prediction would only slow each pass's search through it).
  if (request_.predicted.size() > static_cast<size_t>(seq_.n_ctx()))
    request_.predicted.resize(static_cast<size_t>(seq_.n_ctx()));
  prompt_done_ = seq_.reuse_prefix(request_.prompt);
  if (request_.embed != Pooling::kNone) {  // every token's hidden state is needed: nothing cached is reused
    seq_.clear();
    prompt_done_ = 0;
  }
  result_.n_prompt_evaluated = static_cast<int64_t>(request_.prompt.size() - prompt_done_);
  result_.finish = FinishReason::kMaxTokens;
  if (request_.grammar) {
    grammar_ = std::make_unique<GrammarMatcher>(request_.grammar, GrammarVocab::of(seq.tokenizer()));
    grammar_->set_thread_pool(seq.pool());
    grammar_active_ = request_.grammar_triggers.empty();
    if (!grammar_active_) {
      grammar_watch_ = TriggerWatch(request_.grammar_triggers);
      trigger_guard_ = std::make_unique<TriggerGuard>(grammar_watch_, *grammar_, *GrammarVocab::of(seq.tokenizer()));
    }
  }
  if (request_.copy.bias != 0 && !request_.copy.source.empty())
    copy_ = std::make_unique<ArgumentCopyBias>(request_.copy, GrammarVocab::of(seq.tokenizer()));
  if (request_.call_gate.min_probability > 0 && !request_.call_gate.triggers.empty()) {
    gate_ = std::make_unique<CallGate>(request_.call_gate, seq.tokenizer());
    if (!gate_->enabled()) gate_.reset();
  }
  if (request_.max_tokens == 0 && request_.embed == Pooling::kNone) finish(FinishReason::kMaxTokens);
}

bool Generation::advance_grammar(int32_t tok) {
  if (grammar_active_) {
    try {
      grammar_->accept_token(tok);
    } catch (const Error&) {
      return false;
    }
    return true;
  }
  if (seq_.tokenizer().is_eog(tok)) return true;
  const std::optional<std::string> from_trigger =
      grammar_watch_.feed(seq_.tokenizer().token_to_piece(tok, /*special=*/true));
  if (!from_trigger) return true;
  grammar_active_ = true;
  try {
    grammar_->accept_text(*from_trigger);
  } catch (const Error&) {
    return false;
  }
  return true;
}

std::string Generation::step(int64_t max_prompt_tokens) {
  if (done_) return {};
  if (!in_prefill()) {
    // A token left pending by a wrong guess (prompt lookup) is decided already.
    std::string text = pending_ ? std::string() : decide();
    if (pending_ && request_.lookup_draft > 0) return text + evaluate_pending_with_guesses();
    if (pending_) {
      seq_.eval(&pending_token_, 1);
      pending_ = false;
    }
    return text;
  }
  const int32_t* tokens = nullptr;
  const int64_t n = next_prompt_tokens(max_prompt_tokens, &tokens);
  seq_.eval(tokens, n, hidden_rows(n));
  prompt_evaluated(n);
  return {};
}

int64_t Generation::next_prompt_tokens(int64_t max_tokens, const int32_t** tokens) const {
  *tokens = request_.prompt.data() + prompt_done_;
  return std::min<int64_t>(std::max<int64_t>(1, max_tokens), static_cast<int64_t>(prompt_remaining()));
}

void Generation::prompt_evaluated(int64_t n) {
  if (request_.embed != Pooling::kNone) pool_hidden(n);
  prompt_done_ += static_cast<size_t>(n);
  if (!in_prefill()) {
    t_first_token_ = std::chrono::steady_clock::now();
    result_.prompt_seconds = seconds_between(t_start_, t_first_token_);
    if (request_.embed != Pooling::kNone) finish_embedding();
  }
}

const std::vector<int32_t>& Generation::pending_with_guesses() {
  guessed_.assign(1, pending_token_);
  if (!pending_ || request_.lookup_draft <= 0) return guessed_;
  // Guesses stay clear of the context's end, so that the cache is full (and
  // generation ends) exactly where it would be without them.
  const int64_t room = seq_.n_ctx() - static_cast<int64_t>(seq_.tokens().size()) - 2;
  if (draft_window_ == 0) draft_window_ = request_.lookup_draft;
  int64_t most = std::min<int64_t>(draft_window_, room);
  if (request_.max_tokens >= 0)
    most = std::min<int64_t>(most, request_.max_tokens - static_cast<int64_t>(result_.tokens.size()));
  if (most <= 0) return guessed_;
  std::vector<int32_t> guesses =
      predicted_draft(request_.predicted, result_.tokens, static_cast<size_t>(most), &prediction_cursor_);
  if (guesses.empty()) guesses = lookup_draft(history_, static_cast<size_t>(most));
  guessed_.insert(guessed_.end(), guesses.begin(), guesses.end());
  return guessed_;
}

float* Generation::guess_rows() {
  rows_.resize(guessed_.size() * static_cast<size_t>(seq_.model().config().n_vocab));
  return rows_.data();
}

std::string Generation::evaluated_with_rows() {
  pending_ = false;
  const size_t v = static_cast<size_t>(seq_.model().config().n_vocab);
  const size_t base = seq_.tokens().size() - guessed_.size();  // before the pass
  result_.draft_tokens += static_cast<int64_t>(guessed_.size() - 1);
  std::string text;
  for (size_t j = 0; j + 1 < guessed_.size(); ++j) {  // row j decides the token after guessed_[j]
    text += decide_from(std::span<const float>(rows_.data() + j * v, v));
    if (pending_ && pending_token_ == guessed_[j + 1]) {  // guessed right: already evaluated
      pending_ = false;
      ++result_.draft_accepted;
      continue;
    }
    // Guesses that keep failing cost passes: the window halves after a pass
    // with none right and doubles after one with all right.
    if (j == 0) draft_window_ = std::max<int32_t>(1, draft_window_ / 2);
    // The guesses after guessed_[j] were wrong (or generation ended there); a
    // different token decided from row j waits for the next pass.
    seq_.truncate(base + j + 1);
    return text;
  }
  draft_window_ = std::min<int32_t>(request_.lookup_draft, 2 * draft_window_);
  return text;  // every guess was right: the sequence's logits are the last row's
}

std::string Generation::evaluate_pending_with_guesses() {
  const std::vector<int32_t>& tokens = pending_with_guesses();
  if (tokens.size() == 1) {
    seq_.eval(tokens.data(), 1);
    pending_ = false;
    return {};
  }
  seq_.eval_logits(tokens.data(), static_cast<int64_t>(tokens.size()), guess_rows());
  return evaluated_with_rows();
}

std::string Generation::decide() { return decide_from(seq_.logits()); }

std::string Generation::decide_from(std::span<const float> raw) {
  if (done_ || in_prefill()) return {};
  if (pending_) throw Error("generation: the last sampled token was not evaluated");
  if (grammar_active_ && grammar_->must_end()) return finish(FinishReason::kEndOfGeneration);
  sampler_.set_constraint(grammar_active_ ? grammar_.get() : trigger_guard_.get());
  std::vector<float> logits(raw.begin(), raw.end());
  if (copy_) copy_->apply(logits.data(), logits.size());
  if (gate_ && !grammar_active_) gate_->apply(logits.data(), logits.size(), result_.tokens.empty());
  const int32_t tok = sampler_.sample(logits.data(), history_);
  // The sampler only draws allowed tokens, so this cannot fail unless the
  // model's vocabulary is larger than the tokenizer's.
  if (grammar_ && !advance_grammar(tok)) return finish(FinishReason::kEndOfGeneration);
  if (!request_.ignore_eos && seq_.tokenizer().is_eog(tok)) return finish(FinishReason::kEndOfGeneration);
  result_.tokens.push_back(tok);
  if (request_.top_logprobs >= 0) {
    const int top = request_.top_logprobs;
    result_.logprobs.push_back(request_.post_sampling_probs ? drawn_logprob(sampler_.last_distribution(), tok, top)
                                                            : token_logprob(raw, tok, top));
  }
  history_.push_back(tok);
  if (copy_ || gate_) {
    const std::string piece = seq_.tokenizer().token_to_piece(tok, /*special=*/true);
    if (copy_) copy_->feed(piece);
    if (gate_) gate_->feed(piece);
  }
  std::string text = stops_.feed(decoder_.push(tok));
  result_.text += text;
  if (stops_.stopped()) {
    done_ = true;
    result_.finish = FinishReason::kStopString;
    result_.generate_seconds = seconds_between(t_first_token_, std::chrono::steady_clock::now());
    return text;
  }
  if (request_.max_tokens >= 0 && static_cast<int64_t>(result_.tokens.size()) >= request_.max_tokens)
    return text + finish(FinishReason::kMaxTokens);
  if (seq_.full()) return text + finish(FinishReason::kContextFull);
  pending_token_ = tok;
  pending_ = true;
  return text;
}

void Generation::cancel() {
  if (done_) return;
  done_ = true;
  result_.finish = FinishReason::kCancelled;
  result_.generate_seconds = seconds_between(t_first_token_, std::chrono::steady_clock::now());
}

// Ends the generation and releases text held back for a possible stop string
// or an unfinished character.
std::string Generation::finish(FinishReason reason) {
  done_ = true;
  result_.finish = reason;
  std::string text = stops_.feed(decoder_.flush());
  if (stops_.stopped()) result_.finish = FinishReason::kStopString;
  else text += stops_.flush();
  result_.text += text;
  if (in_prefill() || t_first_token_ == std::chrono::steady_clock::time_point{}) t_first_token_ = t_start_;
  result_.generate_seconds = seconds_between(t_first_token_, std::chrono::steady_clock::now());
  return text;
}

std::string chat_prompt_text(const Tokenizer& tok, const ChatTemplate& chat_template,
                             const std::vector<ChatMessage>& messages, ChatTemplateOptions options) {
  if (options.bos_token.empty() && tok.bos_id() >= 0) options.bos_token = tok.token_text(tok.bos_id());
  if (options.eos_token.empty() && tok.eos_id() >= 0) options.eos_token = tok.token_text(tok.eos_id());
  return chat_template.render(messages, options);
}

std::vector<int32_t> chat_prompt_tokens(const Tokenizer& tok, const ChatTemplate& chat_template,
                                        const std::vector<ChatMessage>& messages, ChatTemplateOptions options) {
  std::vector<int32_t> ids = tok.encode(chat_prompt_text(tok, chat_template, messages, options), false, true);
  if (tok.add_bos() && tok.bos_id() >= 0 && (ids.empty() || ids[0] != tok.bos_id())) ids.insert(ids.begin(), tok.bos_id());
  return ids;
}

}  // namespace onellm

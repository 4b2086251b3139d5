#include <algorithm>

#include "base/error.h"
#include "engine/engine.h"

namespace onellm {
namespace {

int64_t context_size(const Model& model, const SequenceOptions& o) {
  int64_t train = model.config().n_ctx_train;
  if (o.n_ctx > 0) return std::min(o.n_ctx, train);
  return std::min<int64_t>(train, 4096);
}

}  // namespace

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kEndOfGeneration: case FinishReason::kStopString: return "stop";
    case FinishReason::kMaxTokens: case FinishReason::kContextFull: return "length";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "unknown";
}

Sequence::Sequence(const Model& model, const Tokenizer& tokenizer, ThreadPool* pool, SequenceOptions options)
    : model_(model), tokenizer_(tokenizer), pool_(pool), options_(options),
      cache_(model.config(), context_size(model, options),
             options.math == MathMode::kExact ? TensorType::F32 : options.kv_type) {
  if (options_.n_batch <= 0) options_.n_batch = 512;
}

namespace {
// A pass over n tokens of one sequence that ends in the last token's logits,
// or, given `hidden`, in every token's final hidden state and no logits.
Model::ForwardSegment output_segment(const Model& model, const int32_t* tokens, int64_t n, KvCache* cache,
                                     std::vector<float>& logits, const LoraWeights* lora, float* hidden) {
  if (hidden != nullptr) logits.clear();  // not computed
  else logits.resize(static_cast<size_t>(model.config().n_vocab));
  return {tokens, n, cache, hidden != nullptr ? nullptr : logits.data(), hidden != nullptr, lora, hidden};
}
}  // namespace

void Sequence::eval(const int32_t* tokens, int64_t n, float* hidden) {
  const int64_t D = model_.config().n_embd;
  for (int64_t done = 0; done < n;) {
    int64_t chunk = std::min(options_.n_batch, n - done);
    const Model::ForwardSegment segment = output_segment(model_, tokens + done, chunk, &cache_, logits_,
                                                         options_.lora.get(), hidden ? hidden + done * D : nullptr);
    model_.forward_batch(&segment, 1, pool_, options_.math);
    tokens_.insert(tokens_.end(), tokens + done, tokens + done + chunk);
    done += chunk;
  }
}

void Sequence::eval_logits(const int32_t* tokens, int64_t n, float* logits) {
  const int64_t V = model_.config().n_vocab;
  for (int64_t done = 0; done < n;) {
    const int64_t chunk = std::min(options_.n_batch, n - done);
    const Model::ForwardSegment segment = {tokens + done, chunk, &cache_, logits + done * V, true,
                                           options_.lora.get()};
    model_.forward_batch(&segment, 1, pool_, options_.math);
    tokens_.insert(tokens_.end(), tokens + done, tokens + done + chunk);
    done += chunk;
  }
  if (n > 0) logits_.assign(logits + (n - 1) * V, logits + n * V);
}

void Sequence::eval_batch(Sequence* const* sequences, const int32_t* const* tokens, const int64_t* counts,
                          int64_t n, float* const* rows) {
  if (n <= 0) return;
  if (n == 1 && rows && rows[0]) return sequences[0]->eval_logits(tokens[0], counts[0], rows[0]);
  if (n == 1) return sequences[0]->eval(tokens[0], counts[0]);
  const Sequence& first = *sequences[0];
  std::vector<Model::ForwardSegment> segments(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    Sequence& s = *sequences[i];
    if (&s.model_ != &first.model_) throw Error("batched decode: the sequences use different models");
    if (s.options_.math != first.options_.math) throw Error("batched decode: the sequences use different math modes");
    s.logits_.resize(static_cast<size_t>(s.model_.config().n_vocab));
    float* all = rows ? rows[i] : nullptr;
    segments[static_cast<size_t>(i)] = {tokens[i], counts[i], &s.cache_, all ? all : s.logits_.data(), all != nullptr,
                                        s.options_.lora.get()};
  }
  first.model_.forward_batch(segments.data(), n, first.pool_, first.options_.math);
  for (int64_t i = 0; i < n; ++i) {
    Sequence& s = *sequences[i];
    s.tokens_.insert(s.tokens_.end(), tokens[i], tokens[i] + counts[i]);
    if (rows && rows[i] && counts[i] > 0) {  // the last row is the sequence's logits, as after eval_logits
      const float* last = rows[i] + (counts[i] - 1) * static_cast<int64_t>(s.logits_.size());
      s.logits_.assign(last, last + s.logits_.size());
    }
  }
}

namespace {
Model::Pass begin_chunk_pass(Sequence& seq, KvCache& cache, std::vector<float>& logits, const int32_t* tokens,
                             int64_t n, MathMode math, float* hidden) {
  const Model::ForwardSegment segment = output_segment(seq.model(), tokens, n, &cache, logits, seq.lora(), hidden);
  return seq.model().begin_pass(&segment, 1, seq.pool(), math);
}
}  // namespace

Sequence::ChunkEval::ChunkEval(Sequence& sequence, const int32_t* tokens, int64_t n, float* hidden)
    : seq_(sequence), tokens_(tokens, tokens + std::max<int64_t>(n, 0)),
      pass_(begin_chunk_pass(sequence, sequence.cache_, sequence.logits_, tokens_.data(), n, sequence.options_.math,
                             hidden)) {}

void Sequence::clear() {
  cache_.clear();
  tokens_.clear();
  logits_.clear();
}

void Sequence::ChunkEval::step() {
  pass_.step();
  if (pass_.done()) seq_.tokens_.insert(seq_.tokens_.end(), tokens_.begin(), tokens_.end());
}

void Sequence::adopt_restored(std::vector<int32_t> tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n > cache_.capacity() || n > cache_.reserved())
    throw Error("restored " + std::to_string(n) + " tokens, more than the cache holds (" +
                std::to_string(cache_.reserved()) + ")");
  tokens_ = std::move(tokens);
  cache_.set_size(n);
  logits_.clear();
}

void Sequence::truncate(size_t n) {
  if (n >= tokens_.size()) return;
  tokens_.resize(n);
  cache_.truncate(static_cast<int64_t>(n));
}

size_t Sequence::reuse_prefix(const std::vector<int32_t>& prompt) {
  if (prompt.empty()) throw Error("the prompt is empty (no tokens to evaluate)");
  if (static_cast<int64_t>(prompt.size()) > cache_.capacity())
    throw Error("the prompt has " + std::to_string(prompt.size()) + " tokens, more than the context of " +
                std::to_string(cache_.capacity()) + " (raise -c up to the model's " +
                std::to_string(model_.config().n_ctx_train) + ")");
  size_t keep = 0;
  while (keep < tokens_.size() && keep < prompt.size() && tokens_[keep] == prompt[keep]) ++keep;
  if (keep == prompt.size()) --keep;  // the last token must be evaluated to get its logits
  truncate(keep);
  return keep;
}

const std::vector<float>& Sequence::prefill(const std::vector<int32_t>& prompt) {
  size_t keep = reuse_prefix(prompt);
  eval(prompt.data() + keep, static_cast<int64_t>(prompt.size() - keep));
  return logits_;
}

std::vector<float> Sequence::all_logits(const std::vector<int32_t>& prompt) {
  if (prompt.empty()) throw Error("the prompt is empty (no tokens to evaluate)");
  const int64_t n = static_cast<int64_t>(prompt.size());
  if (n > cache_.capacity())
    throw Error("the prompt has " + std::to_string(n) + " tokens, more than the context of " +
                std::to_string(cache_.capacity()));
  clear();
  std::vector<float> out(static_cast<size_t>(n * model_.config().n_vocab));
  eval_logits(prompt.data(), n, out.data());
  return out;
}

GenerationResult Sequence::generate(const GenerationRequest& req,
                                    const std::function<bool(std::string_view)>& on_text) {
  Generation gen(*this, req);
  while (!gen.done()) {
    std::string text = gen.step(options_.n_batch);
    if (!text.empty() && on_text && !on_text(text)) gen.cancel();
  }
  return gen.result();
}

}  // namespace onellm

// Embeddings: the prompt's final hidden states (after the output norm),
// pooled over its tokens as the model's pooling_type says, as llama.cpp
// computes them for /v1/embeddings.
#include <cmath>

#include "base/error.h"
#include "engine/engine.h"

namespace onellm {

std::optional<Pooling> pooling_named(std::string_view name) {
  if (name == "mean") return Pooling::kMean;
  if (name == "cls") return Pooling::kCls;
  if (name == "last") return Pooling::kLast;
  return std::nullopt;
}

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::kMean: return "mean";
    case Pooling::kCls: return "cls";
    case Pooling::kLast: return "last";
    case Pooling::kNone: break;
  }
  return "none";
}

Pooling default_pooling(const ModelConfig& config) {
  switch (config.pooling_type) {
    case 2: return Pooling::kCls;
    case 3: return Pooling::kLast;
    case 4: throw Error("the model's pooling_type is 4 (rank): a reranker, whose scores onellm does not compute; "
                        "name a pooling (mean, cls, last) to embed with it anyway");
    default: return Pooling::kMean;
  }
}

float* Generation::hidden_rows(int64_t n) {
  if (request_.embed == Pooling::kNone) return nullptr;
  hidden_.resize(static_cast<size_t>(n * seq_.model().config().n_embd));
  return hidden_.data();
}

// Called before prompt_done_ counts these rows: the first token is row 0 of
// the chunk that starts at 0, the last one row n - 1 of the chunk that ends
// the prompt.
void Generation::pool_hidden(int64_t n) {
  const size_t D = static_cast<size_t>(seq_.model().config().n_embd);
  if (hidden_.size() < static_cast<size_t>(n) * D) throw Error("embedding: hidden rows were not evaluated");
  pooled_.resize(D, 0.0);
  auto take = [&](int64_t row) {
    for (size_t i = 0; i < D; ++i) pooled_[i] = hidden_[static_cast<size_t>(row) * D + i];
  };
  switch (request_.embed) {
    case Pooling::kMean:
      for (int64_t r = 0; r < n; ++r)
        for (size_t i = 0; i < D; ++i) pooled_[i] += hidden_[static_cast<size_t>(r) * D + i];
      break;
    case Pooling::kCls:
      if (prompt_done_ == 0 && n > 0) take(0);
      break;
    case Pooling::kLast:
      if (n > 0) take(n - 1);
      break;
    case Pooling::kNone: break;
  }
}

void Generation::finish_embedding() {
  const double count = request_.embed == Pooling::kMean ? static_cast<double>(request_.prompt.size()) : 1.0;
  double norm = 0;
  for (double& v : pooled_) {
    v /= count;
    norm += v * v;
  }
  norm = std::sqrt(norm);
  const double scale = request_.embed_normalize && norm > 0 ? 1.0 / norm : 1.0;
  result_.embedding.resize(pooled_.size());
  for (size_t i = 0; i < pooled_.size(); ++i) result_.embedding[i] = static_cast<float>(pooled_[i] * scale);
  hidden_ = {};
  finish(FinishReason::kEndOfGeneration);
}

}  // namespace onellm

#include "engine/call_gate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "base/error.h"
#include "base/recent_cache.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace onellm {
namespace {

CallGate::Tokens scan_vocabulary(const Tokenizer& tokenizer, const std::vector<std::string>& triggers) {
  CallGate::Tokens out;
  for (int32_t id = 0; id < tokenizer.n_vocab(); ++id) {
    if (tokenizer.is_eog(id)) {
      out.eog.push_back(id);
      continue;
    }
    const std::string piece = tokenizer.token_to_piece(id, /*special=*/true);
    if (piece.empty()) continue;
    for (const std::string& t : triggers)
      if (!t.empty() && (t.starts_with(piece) || piece.starts_with(t))) {
        out.call_starts.push_back(id);
        break;
      }
  }
  return out;
}

// Keyed by the tokenizer's instance id, as GrammarVocab::of is: a daemon's
// requests share one model and one chat template.
std::shared_ptr<const CallGate::Tokens> tokens_of(const Tokenizer& tokenizer,
                                                  const std::vector<std::string>& triggers) {
  static RecentCache<std::pair<uint64_t, std::vector<std::string>>, CallGate::Tokens> found;
  return found.get({tokenizer.instance_id(), triggers}, [&] { return scan_vocabulary(tokenizer, triggers); });
}

}  // namespace

float checked_min_call_probability(double p, const std::string& what) {
  if (!(p >= 0 && p < 1)) throw Error(what + " is " + std::to_string(p) + ", not in [0, 1)");
  return static_cast<float>(p);
}

float recommended_min_call_probability(const GgufFile& file) {
  return checked_min_call_probability(file.get_float_or(kMinCallProbabilityKey, 0.0), kMinCallProbabilityKey);
}

CallGate::CallGate(const CallGateOptions& options, const Tokenizer& tokenizer)
    : min_probability_(options.min_probability), watch_(options.triggers),
      tokens_(min_probability_ > 0 ? tokens_of(tokenizer, options.triggers) : std::make_shared<const Tokens>()) {}

bool CallGate::apply(float* logits, size_t n_logits, bool first_token) const {
  if (!enabled() || call_written_) return false;
  float top = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n_logits; ++i) top = std::max(top, logits[i]);
  if (!std::isfinite(top)) return false;
  double all = 0, call = 0;
  for (size_t i = 0; i < n_logits; ++i) all += std::exp(double(logits[i]) - top);
  for (int32_t id : tokens_->call_starts)
    if (size_t(id) < n_logits) call += std::exp(double(logits[id]) - top);
  if (call >= min_probability_ * all) return false;
  const float masked = -std::numeric_limits<float>::infinity();
  for (int32_t id : tokens_->call_starts)
    if (size_t(id) < n_logits) logits[id] = masked;
  if (first_token)
    for (int32_t id : tokens_->eog)
      if (size_t(id) < n_logits) logits[id] = masked;
  return true;
}

void CallGate::feed(std::string_view piece) {
  if (call_written_ || !enabled()) return;
  if (watch_.feed(piece)) call_written_ = true;
}

}  // namespace onellm

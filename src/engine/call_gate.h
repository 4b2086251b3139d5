// A confidence gate on starting a tool call.
//
// A small model trained to call tools calls one for nearly everything: "Good
// morning!" comes back as navigate {"destination": "Morning"}. Its first
// token says how sure it is: for the requests it should answer in words the
// probability of the call's first token is often well below that of a real
// request (run 13 of docs/training.md: 0.3 and up, median 0.96, for its
// wrongly called chit-chat; 0.99 or more for 465 of the 467 calls it gets
// right). With the gate, a call may only start where the model gives the
// tokens that begin one (a piece that begins a trigger, e.g. "<tool_call>")
// at least `min_probability` together; below it they are masked and the model
// answers in words. At the reply's first token an end of generation is masked too,
// so a gated call is never an empty reply. Once a trigger has been written
// the gate does nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/trigger_watch.h"

namespace onellm {

class GgufFile;
class Tokenizer;

struct CallGateOptions {
  float min_probability = 0;          // 0: off
  std::vector<std::string> triggers;  // strings that start a call (tool_call_triggers)
};

// The gate a model recommends for itself: GGUF key
// onellm.min_call_probability (written by `onellm train --min-call-prob`),
// else 0. Run, chat and serve use it unless told otherwise.
inline constexpr const char* kMinCallProbabilityKey = "onellm.min_call_probability";
float recommended_min_call_probability(const GgufFile& file);
// `p` if it is in [0, 1) (NaN is not); else Error naming `what`.
float checked_min_call_probability(double p, const std::string& what);

class CallGate {
 public:
  CallGate(const CallGateOptions& options, const Tokenizer& tokenizer);

  bool enabled() const { return min_probability_ > 0 && !tokens_->call_starts.empty(); }
  // Masks the call-starting tokens of a row of logits (and, with
  // `first_token`, the end-of-generation ones) when together they are less
  // likely than the threshold; returns whether it did.
  bool apply(float* logits, size_t n_logits, bool first_token) const;
  // The bytes of the next generated token.
  void feed(std::string_view piece);
  // The ids counted as starting a call (ascending).
  const std::vector<int32_t>& call_starts() const { return tokens_->call_starts; }

  // What the gate needs of a vocabulary, found once per tokenizer and
  // triggers (a scan of every token's bytes), not once per request.
  struct Tokens {
    std::vector<int32_t> call_starts, eog;
  };

 private:
  float min_probability_;
  TriggerWatch watch_;
  std::shared_ptr<const Tokens> tokens_;
  bool call_written_ = false;
};

}  // namespace onellm

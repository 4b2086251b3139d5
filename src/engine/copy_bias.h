// Copy-aware decoding of tool-call arguments.
//
// Most argument values of a device request are spans of the request itself
// ("tell Ben that traffic is terrible" -> "body": "traffic is terrible"). A
// small model knows which span to start but often loses it half-way: its
// language prior beats the copy ("terri" -> "day"). Inside an argument
// string of a tool call, this nudges the logits toward copying: the same idea
// as prompt-lookup decoding, used as a soft bias instead of a draft, and only
// where copying is the job. With the value so far a span of the source (the
// user's request), and B the bias:
//   - a token that continues the current word of the span gets +B;
//   - one that continues the span with its next word gets +B/4, as does, at
//     the value's first token, one that begins a word of the source;
//   - one that neither continues the span nor closes the string gets -B/3.
// So a copy is kept to the word and may stop at any word end, where the
// model's own preference decides whether the value goes on. Outside argument
// strings, and once the value so far is no span of the source, nothing changes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/trigger_watch.h"

namespace onellm {

class GgufFile;
class GrammarVocab;

struct CopyBiasOptions {
  float bias = 0;  // B above; 0: off
  // The text values are copied from: the request and the tool results that
  // followed it (tool_call_copy_source). Only its first kMaxSource bytes are
  // searched, so a huge prompt costs bounded time per token.
  std::string source;
  std::vector<std::string> triggers;  // strings that start a call (tool_call_triggers)
  // Arguments ("tool.argument") whose values are always spans of the source
  // (send_message.to, not set_timer.duration: "half an hour" is "30
  // minutes"). Their values are held to one: a value starts where a word of
  // the source starts, goes on only as the source does, and ends only where
  // a word ends; any other token gets -kHeldToSpan instead of -B/3 (so the
  // model's order among the others stays, should a grammar allow nothing
  // else).
  std::vector<std::string> copy_arguments;
  static constexpr size_t kMaxSource = 64 * 1024;
  static constexpr float kHeldToSpan = 1000;
};

// The bias a model recommends for itself: GGUF key onellm.copy_bias (written
// by `onellm train --copy-bias`), else 0. Run, chat and serve use it unless
// told otherwise. Throws Error naming the key for a value outside [0, 100].
inline constexpr const char* kCopyBiasKey = "onellm.copy_bias";
float recommended_copy_bias(const GgufFile& file);
// `bias` if it is in [0, 100] (NaN is not); else Error naming `what` (the
// flag or key it came from).
float checked_copy_bias(double bias, const std::string& what);
// The arguments a model copies verbatim (CopyBiasOptions::copy_arguments):
// GGUF key onellm.copy_arguments, an array of "tool.argument" strings
// (written by `onellm train --copy-arguments`, found in the corpus by
// `make-corpus`), else none. Error naming the key for a malformed entry.
inline constexpr const char* kCopyArgumentsKey = "onellm.copy_arguments";
// What the words of a copied value are made of: letters, digits and any byte
// of a multi-byte UTF-8 character.
bool copy_word_byte(char c);
std::vector<std::string> recommended_copy_arguments(const GgufFile& file);
// `names` if each is "tool.argument" (both non-empty); else Error naming `what`.
std::vector<std::string> checked_copy_arguments(std::vector<std::string> names, const std::string& what);

// What the bias adds to the next token's logits: `tokens` (ascending ids)
// get their own amount, every other token gets `others`.
struct CopyAdjustment {
  std::vector<std::pair<int32_t, float>> tokens;
  float others = 0;
  bool empty() const { return tokens.empty() && others == 0; }
};

// Follows the generated text: outside calls it looks for a trigger; inside a
// call it lexes the JSON (containers, keys and values, escapes) to know when
// an argument value string is being written.
class ArgumentCopyBias {
 public:
  ArgumentCopyBias(const CopyBiasOptions& options, std::shared_ptr<const GrammarVocab> vocab);

  bool enabled() const { return bias_ != 0 && !source_.empty(); }
  // The bytes of the next generated token.
  void feed(std::string_view piece);
  // Inside an argument value string; value() is its bytes so far, JSON-escaped
  // as written.
  bool in_argument_value() const;
  const std::string& value() const { return value_; }
  CopyAdjustment adjustment() const;
  // Adds adjustment() to a row of n_logits logits.
  void apply(float* logits, size_t n_logits) const;

 private:
  enum class Mode { kText, kBeforeObject, kJson };
  void feed_before_object(char c);
  void feed_json(char c);
  std::vector<std::string_view> continuations(const std::vector<size_t>& ends) const;
  void add_value_start(std::vector<std::pair<int32_t, float>>& out) const;

  float bias_;
  std::string source_;  // JSON-escaped (as a value string would spell it), without quotes
  std::vector<size_t> word_starts_;  // where the source's words begin (the first ones)
  TriggerWatch watch_;  // kText: looks for the call's start
  std::shared_ptr<const GrammarVocab> vocab_;
  Mode mode_ = Mode::kText;
  std::string containers_;  // open '{' and '[' of the call
  bool expect_key_ = false, in_string_ = false, string_is_value_ = false, escape_ = false;
  std::string value_;  // the current string's bytes (a key's too)
  // The call's tool name, the argument whose value is being written, and
  // whether it is one of copy_arguments.
  std::string tool_, key_;
  std::vector<std::string> copy_arguments_;  // sorted
  bool held_to_span() const;
};

}  // namespace onellm

#include "engine/copy_bias.h"

#include <algorithm>
#include <optional>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "engine/grammar.h"
#include "gguf/gguf.h"

namespace onellm {
namespace {

// A suffix shorter than this only counts when it is the whole value so far:
// two bytes like "e " occur everywhere and would pull any value anywhere.
constexpr size_t kMinSuffix = 3;
// Longest suffix tried; longer ones add nothing to where the copy goes on.
constexpr size_t kMaxSuffix = 256;
// Distinct places a copy may go on from (or, for a value's first token,
// words it may start with) that are looked at.
constexpr size_t kMaxSpans = 64;
constexpr size_t kMaxLooked = 1024;

// Whether a value held to a span may end after `before`, k bytes into
// `next` (where the source goes on): not after white space, and before white
// space, the end, an apostrophe (possessive: "Rosa's" -> "Rosa") or
// punctuation that ends the word ("reply." ends, "hiro@studio.jp" does not
// end at "studio").
bool may_end_value(std::string_view next, size_t k, char before) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  if (space(before)) return false;
  if (k >= next.size()) return true;
  const char c = next[k];
  if (space(c) || c == '\'') return true;
  if (copy_word_byte(c)) return !copy_word_byte(before);
  return k + 1 >= next.size() || !copy_word_byte(next[k + 1]);
}

std::string json_escaped(std::string_view text) {
  const std::string quoted =
      nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return quoted.substr(1, quoted.size() - 2);
}

}  // namespace

float checked_copy_bias(double bias, const std::string& what) {
  if (!(bias >= 0 && bias <= 100)) throw Error(what + " is " + std::to_string(bias) + ", not in [0, 100]");
  return static_cast<float>(bias);
}

bool copy_word_byte(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  return u >= 0x80 || (u >= '0' && u <= '9') || ((u | 0x20) >= 'a' && (u | 0x20) <= 'z');
}

std::vector<std::string> checked_copy_arguments(std::vector<std::string> names, const std::string& what) {
  for (const std::string& n : names) {
    const size_t dot = n.find('.');
    if (dot == 0 || dot == std::string::npos || dot + 1 == n.size())
      throw Error(what + ": '" + n + "' is not tool.argument");
  }
  return names;
}

std::vector<std::string> recommended_copy_arguments(const GgufFile& file) {
  if (!file.find(kCopyArgumentsKey)) return {};
  std::vector<std::string> names;
  try {
    const GgufValue& list = file.get_array(kCopyArgumentsKey);
    for (size_t k = 0; k < list.size(); ++k) names.emplace_back(list.string_at(k));
  } catch (const Error& e) {
    throw Error(std::string(kCopyArgumentsKey) + ": " + e.what());
  }
  return checked_copy_arguments(std::move(names), kCopyArgumentsKey);
}

float recommended_copy_bias(const GgufFile& file) {
  return checked_copy_bias(file.get_float_or(kCopyBiasKey, 0.0), kCopyBiasKey);
}

ArgumentCopyBias::ArgumentCopyBias(const CopyBiasOptions& options, std::shared_ptr<const GrammarVocab> vocab)
    : bias_(options.bias),
      source_(json_escaped(std::string_view(options.source).substr(0, CopyBiasOptions::kMaxSource))),
      watch_(options.triggers), vocab_(std::move(vocab)), copy_arguments_(options.copy_arguments) {
  std::sort(copy_arguments_.begin(), copy_arguments_.end());
  for (size_t at = 0; at < source_.size() && word_starts_.size() < kMaxLooked; ++at)
    if (copy_word_byte(source_[at]) && (at == 0 || !copy_word_byte(source_[at - 1]))) word_starts_.push_back(at);
}

void ArgumentCopyBias::feed(std::string_view piece) {
  for (size_t i = 0; i < piece.size(); ++i) {
    if (mode_ == Mode::kText) {
      const std::optional<std::string> from_trigger = watch_.feed(piece.substr(i));
      if (!from_trigger) return;
      // The call's JSON may begin inside the trigger ({"name" of Llama 3),
      // and another call may follow this one in the same piece.
      mode_ = Mode::kBeforeObject;
      return feed(*from_trigger);
    }
    mode_ == Mode::kJson ? feed_json(piece[i]) : feed_before_object(piece[i]);
  }
}

void ArgumentCopyBias::feed_before_object(char c) {
  if (c != '{') return;
  mode_ = Mode::kJson;
  containers_ = "{";
  tool_.clear();
  key_.clear();
  expect_key_ = true;
  in_string_ = escape_ = false;
}

void ArgumentCopyBias::feed_json(char c) {
  if (in_string_) {
    if (escape_) {
      escape_ = false;
    } else if (c == '\\') {
      escape_ = true;
    } else if (c == '"') {
      in_string_ = false;
      if (!string_is_value_) key_ = value_;
      else if (containers_.size() == 1 && key_ == "name") tool_ = value_;
      return;
    }
    value_ += c;
    return;
  }
  switch (c) {
    case '"':
      in_string_ = true;
      string_is_value_ = !(containers_.back() == '{' && expect_key_);
      value_.clear();
      break;
    case '{':
      containers_ += '{';
      expect_key_ = true;
      break;
    case '[':
      containers_ += '[';
      break;
    case '}':
    case ']':
      containers_.pop_back();
      if (containers_.empty()) mode_ = Mode::kText;  // the call is complete
      else expect_key_ = false;
      break;
    case ':':
      expect_key_ = false;
      break;
    case ',':
      if (containers_.back() == '{') expect_key_ = true;
      break;
    default:
      break;  // numbers, literals, white space
  }
}

bool ArgumentCopyBias::in_argument_value() const {
  // Depth 2 and more: the arguments object of {"name": ..., "arguments": {...}}
  // (or "parameters"), not the tool's name at the top.
  return mode_ == Mode::kJson && in_string_ && string_is_value_ && containers_.size() >= 2;
}

// Where the source goes on after each of `ends` (positions in it): the next
// max_piece bytes, each distinct text once; at most kMaxSpans of them, from
// the first kMaxLooked ends, so that a long source costs little more than a
// short one.
std::vector<std::string_view> ArgumentCopyBias::continuations(const std::vector<size_t>& ends) const {
  std::vector<std::string_view> out;
  std::unordered_set<std::string_view> seen;
  for (size_t i = 0; i < ends.size() && i < kMaxLooked && out.size() < kMaxSpans; ++i) {
    const std::string_view next = std::string_view(source_).substr(ends[i], vocab_->max_piece());
    if (seen.insert(next).second) out.push_back(next);
  }
  return out;
}

bool ArgumentCopyBias::held_to_span() const {
  return containers_.size() == 2 && !tool_.empty() &&
         std::binary_search(copy_arguments_.begin(), copy_arguments_.end(), tool_ + "." + key_);
}

void ArgumentCopyBias::add_value_start(std::vector<std::pair<int32_t, float>>& out) const {
  for (std::string_view word : continuations(word_starts_))
    for (int32_t id : vocab_->prefix_pieces(word)) out.emplace_back(id, bias_ / 4);
}

CopyAdjustment ArgumentCopyBias::adjustment() const {
  CopyAdjustment adj;
  if (!enabled() || !in_argument_value() || escape_) return adj;
  std::vector<std::pair<int32_t, float>> found;
  const std::string_view v(value_), source(source_);
  const bool held = held_to_span();
  if (v.empty()) {
    add_value_start(found);
    if (held) adj.others = -CopyBiasOptions::kHeldToSpan;
  } else {
    // The longest suffix of the value that occurs in the source: occurrence
    // is monotone in the length (a shorter suffix of an occurring one
    // occurs), so a binary search finds it.
    size_t lo = 0, hi = std::min(v.size(), kMaxSuffix);
    while (lo < hi) {
      const size_t mid = (lo + hi + 1) / 2;
      if (source.find(v.substr(v.size() - mid)) != std::string_view::npos) lo = mid;
      else hi = mid - 1;
    }
    if (lo == 0 || (lo < kMinSuffix && lo < v.size())) return adj;
    const std::string_view suffix = v.substr(v.size() - lo);
    // A whole value is a span that starts at a word: "p" of "population"
    // continues with "o", not with the "u" of its second "p".
    auto starts_word = [&](size_t at) {
      return at == 0 || !copy_word_byte(source[at - 1]) || !copy_word_byte(source[at]);
    };
    std::vector<size_t> ends, word_ends;
    for (size_t at = source.find(suffix); at != std::string_view::npos; at = source.find(suffix, at + 1)) {
      ends.push_back(at + suffix.size());
      if (lo == v.size() && starts_word(at)) word_ends.push_back(at + suffix.size());
    }
    // A value held to a span stays one that starts at a word of the source.
    const bool spanned = held && lo == v.size() && !word_ends.empty();
    for (std::string_view next : continuations(word_ends.empty() ? ends : word_ends)) {
      const float b = !next.empty() && copy_word_byte(v.back()) && copy_word_byte(next[0]) ? bias_ : bias_ / 4;
      for (int32_t id : vocab_->prefix_pieces(next)) found.emplace_back(id, b);
      // Copy the next k bytes and close the string: not a deviation (held to
      // a span: only where a word ends). No piece starts with next[0, k)
      // once none starts with a shorter prefix.
      std::string closing;
      for (size_t k = 0; k <= next.size(); ++k) {
        if (k > 0 && vocab_->pieces_starting_with(next.substr(0, k)).empty()) break;
        if (spanned && !may_end_value(next, k, k == 0 ? v.back() : next[k - 1])) continue;
        closing.assign(next.substr(0, k)).push_back('"');
        for (int32_t id : vocab_->pieces_starting_with(closing)) found.emplace_back(id, 0.0f);
      }
    }
    adj.others = spanned ? -CopyBiasOptions::kHeldToSpan : -bias_ / 3;
  }
  // One entry per token, the largest amount.
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second > b.second;
  });
  for (const auto& f : found)
    if (adj.tokens.empty() || adj.tokens.back().first != f.first) adj.tokens.push_back(f);
  if (adj.tokens.empty()) adj.others = 0;  // no span found: nothing to keep to
  return adj;
}

void ArgumentCopyBias::apply(float* logits, size_t n_logits) const {
  const CopyAdjustment adj = adjustment();
  if (adj.empty()) return;
  if (adj.others != 0)
    for (size_t i = 0; i < n_logits; ++i) logits[i] += adj.others;
  for (const auto& [id, amount] : adj.tokens)
    if (size_t(id) < n_logits) logits[id] += amount - adj.others;
}

}  // namespace onellm

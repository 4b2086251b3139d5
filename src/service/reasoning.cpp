#include "service/reasoning.h"

#include <algorithm>

namespace onellm {
namespace {

constexpr std::string_view kOpen = "<think>", kClose = "</think>";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// How many trailing bytes of `s` could begin `tag`.
size_t partial_tag(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(tag.size() - 1, s.size()); n > 0; --n)
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  return 0;
}

}  // namespace

ReasoningFormat reasoning_format(const std::string& template_source, const Tokenizer& tokenizer,
                                 const std::vector<int32_t>& prompt) {
  ReasoningFormat f;
  f.active = template_source.find(kOpen) != std::string::npos;
  if (!f.active || prompt.empty()) return f;
  const size_t tail = std::min<size_t>(prompt.size(), 6);
  const std::string end = tokenizer.decode(std::vector<int32_t>(prompt.end() - tail, prompt.end()), false, true);
  const std::string_view t = trim(end);
  f.starts_inside = t.size() >= kOpen.size() && t.substr(t.size() - kOpen.size()) == kOpen;
  return f;
}

ReasoningSplit split_reasoning(std::string_view text, const ReasoningFormat& format) {
  ReasoningStream stream(format);
  ReasoningSplit a = stream.feed(text), b = stream.finish();
  return {std::string(trim(a.reasoning + b.reasoning)), a.content + b.content};
}

ReasoningStream::ReasoningStream(const ReasoningFormat& format)
    : state_(format.starts_inside ? State::kThinking : State::kStart), active_(format.active) {}

ReasoningSplit ReasoningStream::feed(std::string_view text) {
  ReasoningSplit out;
  if (!active_) {
    out.content = text;
    return out;
  }
  held_ += text;
  while (!held_.empty()) {
    if (state_ == State::kStart) {
      // Leading whitespace, then either <think> or the answer itself.
      const size_t first = held_.find_first_not_of(" \n\t\r");
      if (first == std::string::npos) return out;
      const std::string_view rest = std::string_view(held_).substr(first);
      if (rest.size() < kOpen.size() && kOpen.substr(0, rest.size()) == rest) return out;  // maybe the tag
      if (rest.substr(0, kOpen.size()) == kOpen) {
        held_.erase(0, first + kOpen.size());
        state_ = State::kThinking;
      } else {
        held_.erase(0, first);
        state_ = State::kContent;
      }
      continue;
    }
    if (state_ == State::kAfterThinking) {  // the blank lines after </think> are not content
      const size_t first = held_.find_first_not_of(" \n\t\r");
      if (first == std::string::npos) {
        held_.clear();
        return out;
      }
      held_.erase(0, first);
      state_ = State::kContent;
    }
    if (state_ == State::kContent) {
      out.content += held_;
      held_.clear();
      return out;
    }
    const size_t close = held_.find(kClose);
    if (close != std::string::npos) {
      out.reasoning += held_.substr(0, close);
      held_.erase(0, close + kClose.size());
      state_ = State::kAfterThinking;
      continue;
    }
    const size_t keep = partial_tag(held_, kClose);
    out.reasoning += held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    return out;
  }
  return out;
}

ReasoningSplit ReasoningStream::finish() {
  ReasoningSplit out;
  if (state_ == State::kThinking) out.reasoning = held_;
  else out.content = held_;
  held_.clear();
  return out;
}

}  // namespace onellm

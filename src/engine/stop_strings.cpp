#include "engine/stop_strings.h"

#include <algorithm>

namespace onellm {
namespace {

// Bytes at the end of text that start a UTF-8 sequence not yet complete.
size_t incomplete_utf8_tail(std::string_view text) {
  // Look back over at most 3 bytes for the lead byte of the last sequence.
  for (size_t back = 1; back <= std::min<size_t>(3, text.size()); ++back) {
    unsigned char c = static_cast<unsigned char>(text[text.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking
    size_t needed = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return needed > back ? back : 0;
  }
  return 0;  // ASCII, complete, or not UTF-8 at all: nothing to wait for
}

}  // namespace

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

std::string StopStringMatcher::feed(std::string_view text) {
  if (stopped_) return {};
  pending_.append(text);
  // Generation stops where the first stop string is complete (its earliest end),
  // and the cut is at the earliest start of any stop string that fits in the
  // text up to there. This does not depend on how the text was split into feeds.
  size_t first_end = std::string::npos;
  for (const std::string& stop : stops_) {
    size_t at = pending_.find(stop);
    if (at != std::string::npos) first_end = std::min(first_end, at + stop.size());
  }
  if (first_end != std::string::npos) {
    std::string_view decided = std::string_view(pending_).substr(0, first_end);
    size_t stop_at = std::string::npos;
    for (const std::string& stop : stops_) stop_at = std::min(stop_at, decided.find(stop));
    stopped_ = true;
    std::string out = pending_.substr(0, stop_at);
    pending_.clear();
    return out;
  }
  size_t keep = held_back_length();
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StopStringMatcher::flush() {
  std::string out = stopped_ ? std::string() : std::move(pending_);
  pending_.clear();
  return out;
}

// The longest suffix of pending_ that could still grow into a stop string,
// or the incomplete UTF-8 tail if that is longer.
size_t StopStringMatcher::held_back_length() const {
  std::string_view text = pending_;
  size_t keep = incomplete_utf8_tail(text);
  for (const std::string& stop : stops_) {
    // No full match is in text, so only proper prefixes of stop can be a suffix.
    for (size_t len = std::min(stop.size() - 1, text.size()); len > keep; --len) {
      if (text.ends_with(std::string_view(stop).substr(0, len))) {
        keep = len;
        break;
      }
    }
  }
  return keep;
}

}  // namespace onellm

// Stop strings for streamed generation: text is fed as it is decoded, and
// only what can no longer turn into a stop string is released.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace onellm {

class StopStringMatcher {
 public:
  // Empty stop strings are ignored (they would stop before any output).
  explicit StopStringMatcher(std::vector<std::string> stops);

  // Feeds newly decoded text and returns what is safe to emit now. Held back:
  // any suffix that is a prefix of a stop string, and an incomplete UTF-8
  // sequence at the end (so streamed pieces never split a character). Once a
  // whole stop string is seen, stopped() is true, the returned text ends just
  // before the earliest stop string in the text up to the end of the first
  // complete one, and later feeds return nothing. The total output does not
  // depend on how the text is split into feeds.
  std::string feed(std::string_view text);

  // At the end of generation: releases what was held back (nothing if stopped).
  std::string flush();

  bool stopped() const { return stopped_; }

 private:
  size_t held_back_length() const;

  std::vector<std::string> stops_;
  std::string pending_;  // text received but not yet emitted
  bool stopped_ = false;
};

}  // namespace onellm

// Watches generated text for the strings that start a tool call (a lazy
// grammar's triggers, tool_call_triggers). A trigger may arrive split across
// tokens, so the last bytes are kept; only as many as the longest trigger.
// The lazy grammar, the copy bias and the call gate all follow the output
// this way.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace onellm {

class TriggerWatch {
 public:
  TriggerWatch() = default;
  explicit TriggerWatch(std::vector<std::string> triggers);  // empty strings are dropped

  bool empty() const { return triggers_.empty(); }
  // Where the first trigger in `text` begins, or npos.
  size_t find_in(std::string_view text) const;
  // Appends the bytes of the next token. When a trigger has appeared: the
  // text from its first byte on (the trigger and what followed it), and the
  // watch starts over; else nullopt.
  std::optional<std::string> feed(std::string_view piece);
  // The bytes kept from earlier tokens (where a split trigger begins).
  const std::string& recent() const { return recent_; }

 private:
  std::vector<std::string> triggers_;
  size_t longest_ = 0;
  std::string recent_;
};

}  // namespace onellm

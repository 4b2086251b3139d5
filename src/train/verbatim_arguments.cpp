// Which arguments of the device's tools are copied verbatim from requests:
// measured on the corpus, so that the list follows the generator (a new
// tool or phrasing changes it) instead of being written down by hand.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/copy_bias.h"
#include "train/train.h"

namespace onellm {
namespace {

// Whether `value` occurs in `text` with no word byte joined to either end.
bool word_span(const std::string& text, const std::string& value) {
  if (value.empty()) return false;
  for (size_t at = text.find(value); at != std::string::npos; at = text.find(value, at + 1)) {
    const size_t end = at + value.size();
    const bool starts = at == 0 || !copy_word_byte(text[at - 1]) || !copy_word_byte(value.front());
    const bool ends = end == text.size() || !copy_word_byte(text[end]) || !copy_word_byte(value.back());
    if (starts && ends) return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> verbatim_arguments(const std::vector<DeviceExample>& examples, double min_share,
                                            int64_t min_count) {
  std::map<std::string, std::pair<int64_t, int64_t>> counts;  // name -> (spans, string values)
  for (const DeviceExample& ex : examples) {
    const ChatMessage* request = nullptr;  // the user message the first reply answers
    for (const ChatMessage& m : ex.messages) {
      if (m.role == "assistant") break;
      if (m.role == "user") request = &m;
    }
    if (!request) continue;
    for (const ChatJson& call : ex.expected_calls) {
      const ChatJson* args = call.contains("arguments") ? &call["arguments"] : nullptr;
      if (!args || !args->is_object() || !call.contains("name") || !call["name"].is_string()) continue;
      for (const auto& [key, value] : args->items()) {
        if (!value.is_string()) continue;
        auto& [spans, total] = counts[call["name"].get<std::string>() + "." + key];
        spans += word_span(request->content, value.get<std::string>());
        ++total;
      }
    }
  }
  std::vector<std::string> out;
  for (const auto& [name, c] : counts)
    if (c.second >= min_count && static_cast<double>(c.first) >= min_share * static_cast<double>(c.second))
      out.push_back(name);
  return out;
}

}  // namespace onellm

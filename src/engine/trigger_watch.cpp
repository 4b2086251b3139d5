#include "engine/trigger_watch.h"

#include <algorithm>

namespace onellm {

TriggerWatch::TriggerWatch(std::vector<std::string> triggers) : triggers_(std::move(triggers)) {
  std::erase_if(triggers_, [](const std::string& t) { return t.empty(); });
  for (const std::string& t : triggers_) longest_ = std::max(longest_, t.size());
}

size_t TriggerWatch::find_in(std::string_view text) const {
  size_t at = std::string_view::npos;
  for (const std::string& t : triggers_) at = std::min(at, text.find(t));
  return at;
}

std::optional<std::string> TriggerWatch::feed(std::string_view piece) {
  if (triggers_.empty()) return std::nullopt;
  recent_ += piece;
  const size_t at = find_in(recent_);
  if (at != std::string::npos) {
    std::string from_trigger = recent_.substr(at);
    recent_.clear();
    return from_trigger;
  }
  if (recent_.size() > longest_) recent_.erase(0, recent_.size() - longest_);
  return std::nullopt;
}

}  // namespace onellm

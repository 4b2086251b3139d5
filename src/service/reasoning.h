// Replies of models that think aloud (Qwen3, DeepSeek-R1 and its distills)
// start with <think>...</think>; OpenAI-style servers (vLLM's reasoning
// parsers, llama-server) return that part as message.reasoning_content and the
// rest as content. Requests opt out with "reasoning_format": "none".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace onellm {

struct ReasoningFormat {
  bool active = false;         // the model's template knows <think>
  bool starts_inside = false;  // the prompt ends with <think>: the reply begins in the reasoning
};

// From the chat template's source and the tokens of the rendered prompt.
ReasoningFormat reasoning_format(const std::string& template_source, const Tokenizer& tokenizer,
                                 const std::vector<int32_t>& prompt);

struct ReasoningSplit {
  std::string reasoning, content;
};
// A whole reply: the text inside the first <think>...</think> (or up to the
// end, if the reply stops while thinking), trimmed, and the content after it
// without its leading whitespace (what the stream shows).
ReasoningSplit split_reasoning(std::string_view text, const ReasoningFormat& format);

// The same split while the reply streams: feed() returns what may be shown
// of each part so far, holding back a tail that could be the start of a tag.
class ReasoningStream {
 public:
  explicit ReasoningStream(const ReasoningFormat& format);
  ReasoningSplit feed(std::string_view text);
  ReasoningSplit finish();  // what was held back

 private:
  enum class State { kStart, kThinking, kAfterThinking, kContent } state_;
  bool active_;
  std::string held_;
};

}  // namespace onellm

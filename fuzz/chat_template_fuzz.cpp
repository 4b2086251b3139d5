// Parses arbitrary bytes as a chat template and renders it for a small
// conversation with tools: every input must end in output or onellm::Error,
// within the step and size limits (no hang, no stack overflow).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<onellm::ChatMessage> messages = [] {
    std::vector<onellm::ChatMessage> m = {
        {"system", "You are helpful."}, {"user", "Hi <think>x</think>"}, {"assistant", ""}, {"tool", "{\"t\": 1}"}};
    m[2].extra["tool_calls"] = onellm::ChatJson::parse(
        R"([{"type": "function", "function": {"name": "f", "arguments": {"a": [1, 2.5, null, true]}}}])");
    return m;
  }();
  onellm::ChatTemplateOptions opts;
  opts.bos_token = "<s>";
  opts.eos_token = "</s>";
  opts.tools = onellm::ChatJson::parse(R"([{"type": "function", "function": {"name": "f", "parameters": {}}}])");
  opts.extra_context = {{"enable_thinking", false}, {"date_string", "1 Jan 2025"}};
  opts.limits.max_steps = 200'000;
  opts.limits.max_output_bytes = 1 << 20;
  try {
    onellm::ChatTemplate tmpl(std::string(reinterpret_cast<const char*>(data), size));
    (void)tmpl.render(messages, opts);
  } catch (const onellm::Error&) {
  }
  return 0;
}

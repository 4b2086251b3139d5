// Chat templates: renders a conversation into a prompt with the model's own
// Jinja template (tokenizer.chat_template), the way transformers'
// apply_chat_template does (trim_blocks and lstrip_blocks on, tojson as
// json.dumps with ensure_ascii=False), or with a built-in fallback template.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace onellm {

// Insertion-ordered JSON: tool schemas and arguments render in the order the
// caller gave them, as Python dicts do. A plain nlohmann::json converts
// implicitly (its keys come out sorted).
using ChatJson = nlohmann::ordered_json;

struct ChatMessage {
  std::string role;
  std::string content;
  // Other message fields, merged into the message dict after role and
  // content: tool_calls, name, tool_call_id, reasoning_content... A
  // "content" key here replaces `content` (e.g. null, or a list of parts).
  ChatJson extra = ChatJson::object();
  // The request's content was null or absent (an assistant turn of only tool
  // calls): while `content` stays empty the template sees None, as
  // transformers passes it (DeepSeek-R1's template writes the calls only then).
  bool null_content = false;
};

struct ChatTemplateLimits {
  size_t max_output_bytes = size_t{64} << 20;
  uint64_t max_steps = 50'000'000;  // evaluated nodes and loop iterations
};

struct ChatTemplateOptions {
  bool add_generation_prompt = true;
  std::string bos_token, eos_token;
  ChatJson tools;          // null, or an array of OpenAI tool objects
  ChatJson extra_context;  // object of other variables (enable_thinking, date_string...)
  ChatTemplateLimits limits;
};

class ChatTemplate {
 public:
  // Parses `source`; throws onellm::Error with line and column on syntax
  // errors, unknown filters/tests and unsupported statements.
  explicit ChatTemplate(std::string source);
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // Throws onellm::Error for raise_exception(...) (its message included),
  // runtime errors (with line and column) and exceeded limits. A template
  // that fails on the conversation as given is tried again with tool-call
  // arguments as JSON text and/or null contents as "" (chat_template.cpp)
  // before the first error is thrown.
  std::string render(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& opts) const;

  const std::string& source() const { return source_; }

 private:
  std::string render_once(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& opts,
                          int adapt) const;
  struct Parsed;
  std::string source_;
  std::unique_ptr<Parsed> parsed_;
};

// Variables a request hands to the template beside the conversation: vLLM's
// and llama.cpp's chat_template_kwargs, e.g. {"enable_thinking": false} for
// Qwen3. Later keys win. Throws Error unless `kwargs` is an object, and for
// the names the conversation itself fills (messages, tools, documents).
void add_template_kwargs(ChatTemplateOptions& options, const ChatJson& kwargs);

// Built-in templates for models without tokenizer.chat_template and for a
// --chat-template NAME override: "chatml", "llama2", "llama3", "zephyr",
// "phi3", "gemma". Throws onellm::Error for unknown names.
std::string builtin_chat_template(const std::string& name);
std::vector<std::string> builtin_chat_template_names();

}  // namespace onellm

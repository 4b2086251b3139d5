// What a chat request asks of the model's output beyond text: tool calls
// (tools / tool_choice / parallel_tool_calls), response_format, or
// llama-server's grammar / json_schema. Shared by
// /v1/chat/completions and native session messages (private to the service).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/tool_calls.h"
#include "service/api_util.h"
#include "tokenizer/chat_template.h"

namespace onellm {

struct OutputConstraint {
  bool tools_active = false;  // tools given and tool_choice is not none: replies are parsed for calls
  std::vector<ToolSpec> tools;
  api::Json tools_json;  // as the request gave them, for the chat template
  ToolChoice choice;
  ToolCallStyle style = ToolCallStyle::kHermes;
  bool template_has_tools = false;
  std::shared_ptr<const Grammar> grammar;
  std::vector<std::string> triggers;  // non-empty: the grammar is lazy (auto tool choice)
  // Copy-aware decoding of call arguments (engine/copy_bias.h): "copy_bias"
  // of the request, else ChatDefaults::copy_bias; off
  // when tool_choice is none. The source is set by set_copy_source.
  CopyBiasOptions copy;
  // The confidence a call must have to start (engine/call_gate.h):
  // "min_call_probability" of the request, else
  // ChatDefaults::min_call_probability; off when tool_choice is none.
  CallGateOptions call_gate;

  void apply(GenerationRequest& request) const {
    request.grammar = grammar;
    request.grammar_triggers = triggers;
    request.copy = copy;
    request.call_gate = call_gate;
  }
  // The request's text the arguments are copied from (tool_call_copy_source).
  void set_copy_source(const std::vector<ChatMessage>& messages) {
    if (copy.bias != 0) copy.source = tool_call_copy_source(messages);
  }
};

// What a chat request gets unless it says otherwise: the model's decoding
// settings (or serve's overrides of them) and, for a request without tools,
// the lazy constraint of the model's built-in tools (builtin_tool_constraint).
struct ChatDefaults {
  float copy_bias = 0;
  std::vector<std::string> copy_arguments;  // CopyBiasOptions::copy_arguments: the model's
  float min_call_probability = 0;
  ToolCallConstraint builtin_tools;  // no grammar: none (or serve --no-builtin-tools)
};

// Reads the fields; BAD_REQUEST naming the field for anything malformed or
// unsupported (e.g. a schema keyword that cannot be enforced). A request
// without tools, response_format or tool_choice "none" is held to the
// built-in tools of `defaults`; its reply stays text, as without them.
OutputConstraint read_output_constraint(const api::Json& body, const ChatTemplate& chat_template,
                                        const ChatDefaults& defaults = {});

// A text completion's constraint: llama-server's "grammar" (GBNF text) or
// "json_schema" (a schema), or response_format (json_object / json_schema);
// null for free text. BAD_REQUEST naming the field otherwise. (Chat requests
// take the first two through read_output_constraint, without tools.)
std::shared_ptr<const Grammar> read_text_grammar(const api::Json& body);

// Makes the tools visible to the model: through the template's `tools`
// variable, or as a system message when the template has none.
void add_tools_to_prompt(const OutputConstraint& oc, std::vector<ChatMessage>& messages, ChatTemplateOptions& options);

// A chat request made ready for the chat template: its output constraint,
// the template options (`options` as the caller set them, plus the body's
// chat_template_kwargs), and its messages with the copy source taken and the
// tools shown. Every chat endpoint (OpenAI, sessions, Ollama, /apply-template,
// `onellm template`) goes through it, so all give the model the same prompt.
struct ChatPrompt {
  OutputConstraint output;
  std::vector<ChatMessage> messages;
  ChatTemplateOptions options;
};
ChatPrompt prepare_chat_prompt(const api::Json& body, std::vector<ChatMessage> messages,
                               const ChatTemplate& chat_template, const ChatDefaults& defaults = {},
                               ChatTemplateOptions options = {});

// The model's reply as an OpenAI assistant message: content (null when it
// only called tools) and tool_calls with fresh ids.
api::Json assistant_message(const OutputConstraint& oc, const std::string& text, bool& has_calls);

// Streaming with tools: passes text through until a call may be starting,
// then holds everything back (the calls are sent whole at the end).
class ContentStreamFilter {
 public:
  explicit ContentStreamFilter(std::vector<std::string> triggers) : triggers_(std::move(triggers)) {}
  std::string feed(std::string_view text);  // what may be shown now
  const std::string& shown() const { return shown_; }

 private:
  std::vector<std::string> triggers_;
  std::string held_, shown_;
  bool in_call_ = false;
};

}  // namespace onellm

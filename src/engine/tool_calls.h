// Tool calling: OpenAI tool definitions, the way a model writes its calls
// (its chat template decides), the grammar that keeps calls valid against
// each tool's parameter schema, and parsing a reply back into calls.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/grammar.h"
#include "tokenizer/chat_template.h"

namespace onellm {

class GgufFile;

struct ToolSpec {
  std::string name;  // [A-Za-z0-9_-]{1,64}, as OpenAI requires
  std::string description;
  nlohmann::ordered_json parameters;  // a JSON Schema for the arguments object
};

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // a JSON object, as text
};

// How calls look in the model's output:
//  kHermes: <tool_call>{"name": "f", "arguments": {...}}</tool_call> (Qwen2.5/3,
//           Hermes, onellm's own model; also the default for templates without tools)
//  kLlama3: {"name": "f", "parameters": {...}}, optionally after <|python_tag|>
enum class ToolCallStyle { kHermes, kLlama3 };
ToolCallStyle tool_call_style(std::string_view chat_template_source);
// Whether the template renders `tools` itself; if not, the caller describes
// them in a system message (tool_system_prompt).
bool template_renders_tools(std::string_view chat_template_source);
std::string tool_system_prompt(const std::vector<ToolSpec>& tools, ToolCallStyle style);

struct ToolChoice {
  enum Mode { kAuto, kNone, kRequired, kFunction } mode = kAuto;
  std::string function;  // kFunction
};

// From an OpenAI request's "tools" / "tool_choice". Throws Error whose
// message starts with the offending field ("tools[1].function.name: ...").
std::vector<ToolSpec> parse_tool_specs(const nlohmann::ordered_json& tools);
ToolChoice parse_tool_choice(const nlohmann::ordered_json& choice, const std::vector<ToolSpec>& tools);
// The "tool_choice" a command line names: "auto", "required" and "none" as
// they are, any other word as the tool of that name.
nlohmann::ordered_json tool_choice_json(const std::string& name);

// The GBNF text of the calls the model may write under `choice` (one call,
// or several when `parallel`), with root rule `root_name`; includes JSON
// primitives unless `with_primitives` is false. kNone has no grammar.
std::string tool_calls_gbnf(ToolCallStyle style, const std::vector<ToolSpec>& tools, const ToolChoice& choice,
                            bool parallel, const std::string& root_name = "root", bool with_primitives = true);
// Strings that start a call in `style`: a lazy grammar's triggers (auto mode).
std::vector<std::string> tool_call_triggers(ToolCallStyle style);

// What a chat's output is held to when tools are given (choice not kNone).
// kAuto without a formatted answer: a lazy grammar, free text until one of
// `triggers` starts a call, which is then held to the tools' schemas. kAuto
// with an answer rule (`answer_root`, defined by `answer_rules`, e.g. a
// response_format schema): a call or that answer, from the first token.
// kRequired / kFunction: calls only. Throws Error for a grammar that does not
// compile (e.g. a schema keyword that cannot be enforced).
struct ToolCallConstraint {
  std::shared_ptr<const Grammar> grammar;
  std::vector<std::string> triggers;  // non-empty: the grammar is lazy
};
ToolCallConstraint tool_call_constraint(ToolCallStyle style, const std::vector<ToolSpec>& tools,
                                        const ToolChoice& choice, bool parallel, const std::string& answer_root = "",
                                        const std::string& answer_rules = "");

// The tools a model was trained to call without being shown them, as the
// device model calls the phone's tools: GGUF key onellm.builtin_tools, an
// OpenAI "tools" array as JSON text (written by `onellm train
// --builtin-tools`). None without the key; Error naming the key for text that
// is not a valid, non-empty tools array.
inline constexpr const char* kBuiltinToolsKey = "onellm.builtin_tools";
std::vector<ToolSpec> builtin_tools(const GgufFile& file);
// `text` read as such a tools array; Error naming `what` for text that is not
// JSON or not a non-empty tools array (the key above, or train's option).
std::vector<ToolSpec> parse_builtin_tools(const std::string& text, const std::string& what);
// What a chat that gives no tools of its own is held to: a call the model
// starts keeps to its built-in tools' names and schemas (lazy, several calls
// allowed), and the tools are not shown to it, as in training. Without
// built-in tools: no grammar.
ToolCallConstraint builtin_tool_constraint(const GgufFile& file, ToolCallStyle style);

// Makes the tools visible to the model: through the template's `tools`
// variable when it renders them (template_renders_tools; `tools_json` as the
// client gave them), else described in the system message (added if none).
void add_tools_to_messages(const std::vector<ToolSpec>& tools, const nlohmann::ordered_json& tools_json,
                           ToolCallStyle style, bool template_renders, std::vector<ChatMessage>& messages,
                           ChatTemplateOptions& options);

struct AssistantReply {
  std::string content;          // the text outside the calls, trimmed
  std::vector<ToolCall> calls;  // ids left empty for the caller to assign
  // A call began but is not complete (cut by max_tokens): content holds the
  // text before it, as a stream shows it.
  bool cut_call = false;
};
AssistantReply parse_assistant_reply(ToolCallStyle style, std::string_view text);

// The text a call's argument values are copied from (CopyBiasOptions::source):
// the last user message and the tool results after it, one per line.
std::string tool_call_copy_source(const std::vector<ChatMessage>& messages);

// Prepares OpenAI messages for a chat template: an assistant message's
// tool_calls[].function.arguments given as a JSON string becomes an object
// (templates apply tojson to it). `extra` is ChatMessage::extra.
void normalize_tool_call_arguments(nlohmann::ordered_json& extra);

}  // namespace onellm

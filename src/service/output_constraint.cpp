#include "service/output_constraint.h"

#include <atomic>

#include "base/error.h"
#include "engine/json_schema.h"

namespace onellm {
namespace {

std::atomic<uint64_t> g_call_counter{0};

std::string new_call_id() {
  static const uint64_t start = static_cast<uint64_t>(api::unix_now() * 1000);
  return "call_" + std::to_string(start) + "_" + std::to_string(g_call_counter++);
}

// response_format -> GBNF (without tools), or "" for plain text.
std::string response_format_gbnf(const api::Json& body, std::string& root_rule) {
  auto rf = body.find("response_format");
  if (rf == body.end() || rf->is_null()) return "";
  if (!rf->is_object() || !rf->contains("type") || !(*rf)["type"].is_string())
    throw api::bad_request("'response_format' must be an object with a 'type'", "response_format");
  const std::string type = (*rf)["type"];
  if (type == "text") return "";
  if (type == "json_object") {
    root_rule = "json-object";
    return "";  // the primitives define it
  }
  if (type != "json_schema")
    throw api::bad_request("response_format type '" + type + "' is not text, json_object or json_schema",
                           "response_format.type");
  auto spec = rf->find("json_schema");
  if (spec == rf->end() || !spec->is_object() || !spec->contains("schema"))
    throw api::bad_request("response_format json_schema needs {\"json_schema\": {\"name\", \"schema\"}}",
                           "response_format.json_schema");
  try {
    root_rule = "response";
    return json_schema_gbnf_rules((*spec)["schema"], "response");
  } catch (const Error& e) {
    throw api::bad_request(e.what(), "response_format.json_schema.schema");
  }
}

// `root ::= root_rule` over `rules` and the JSON primitives.
std::shared_ptr<const Grammar> json_grammar(const std::string& root_rule, const std::string& rules) {
  return Grammar::parse("root ::= " + root_rule + "\n" + rules + json_primitives_gbnf());
}

// llama-server's "grammar" (GBNF text) or "json_schema" (a schema object), or
// null when the request has neither.
std::shared_ptr<const Grammar> grammar_fields(const api::Json& body) {
  auto g = body.find("grammar");
  auto js = body.find("json_schema");
  const bool has_grammar = g != body.end() && !g->is_null(), has_schema = js != body.end() && !js->is_null();
  if (has_grammar && has_schema) throw api::bad_request("give 'grammar' or 'json_schema', not both", "grammar");
  if (has_grammar) {
    if (!g->is_string()) throw api::bad_request("'grammar' must be GBNF text", "grammar");
    try {
      return Grammar::parse(g->get<std::string>());
    } catch (const Error& e) {
      throw api::bad_request(e.what(), "grammar");
    }
  }
  if (!has_schema) return nullptr;
  if (!js->is_object() && !js->is_boolean())
    throw api::bad_request("'json_schema' must be a JSON Schema", "json_schema");
  try {
    return json_grammar("response", json_schema_gbnf_rules(*js, "response"));
  } catch (const Error& e) {
    throw api::bad_request(e.what(), "json_schema");
  }
}

}  // namespace

std::shared_ptr<const Grammar> read_text_grammar(const api::Json& body) {
  std::shared_ptr<const Grammar> grammar = grammar_fields(body);
  std::string root;
  const std::string rules = response_format_gbnf(body, root);
  if (root.empty()) return grammar;
  if (grammar) throw api::bad_request("'response_format' cannot be combined with 'grammar' or 'json_schema'",
                                      "response_format");
  try {
    return json_grammar(root, rules);
  } catch (const Error& e) {
    throw api::bad_request(e.what(), "response_format");
  }
}

OutputConstraint read_output_constraint(const api::Json& body, const ChatTemplate& chat_template,
                                        const ChatDefaults& defaults) {
  OutputConstraint oc;
  oc.style = tool_call_style(chat_template.source());
  oc.copy.bias = static_cast<float>(api::number_field(body, "copy_bias", defaults.copy_bias, 0.0, 100.0));
  oc.copy.triggers = tool_call_triggers(oc.style);
  oc.copy.copy_arguments = defaults.copy_arguments;
  oc.call_gate.min_probability =
      static_cast<float>(api::number_field(body, "min_call_probability", defaults.min_call_probability, 0.0, 0.999999));
  oc.call_gate.triggers = oc.copy.triggers;
  oc.template_has_tools = template_renders_tools(chat_template.source());
  std::string response_root;
  std::string response_rules = response_format_gbnf(body, response_root);
  auto tools = body.find("tools");
  if (tools != body.end() && !tools->is_null() && !(tools->is_array() && tools->empty())) {
    try {
      oc.tools = parse_tool_specs(*tools);
    } catch (const Error& e) {
      throw api::bad_request(e.what(), "tools");
    }
    oc.tools_json = *tools;
    try {
      oc.choice = parse_tool_choice(body.value("tool_choice", api::Json()), oc.tools);
    } catch (const Error& e) {
      throw api::bad_request(e.what(), "tool_choice");
    }
    oc.tools_active = oc.choice.mode != ToolChoice::kNone;
    if (!oc.tools_active) {  // no calls wanted: nothing to copy into, nothing to gate
      oc.copy.bias = 0;
      oc.call_gate.min_probability = 0;
    }
  } else if (body.contains("tool_choice") && !body["tool_choice"].is_null() && body["tool_choice"] != "none" &&
             body["tool_choice"] != "auto") {
    throw api::bad_request("'tool_choice' needs 'tools'", "tool_choice");
  }
  const bool parallel = api::bool_field(body, "parallel_tool_calls", true);
  if (std::shared_ptr<const Grammar> custom = grammar_fields(body)) {  // the reply is a sentence of it
    if (oc.tools_active || !response_root.empty())
      throw api::bad_request("'grammar' / 'json_schema' cannot be combined with tools or 'response_format'",
                             oc.tools_active ? "tools" : "response_format");
    oc.grammar = std::move(custom);
    return oc;
  }
  try {
    if (oc.tools_active) {
      ToolCallConstraint tc = tool_call_constraint(oc.style, oc.tools, oc.choice, parallel, response_root, response_rules);
      oc.grammar = std::move(tc.grammar);
      oc.triggers = std::move(tc.triggers);
    } else if (!response_root.empty()) {
      oc.grammar = json_grammar(response_root, response_rules);
    } else if (oc.tools.empty() && body.value("tool_choice", api::Json()) != "none") {
      oc.grammar = defaults.builtin_tools.grammar;  // the model's own tools, not shown (tool_calls.h)
      oc.triggers = defaults.builtin_tools.triggers;
    }
  } catch (const Error& e) {
    throw api::bad_request(e.what(), oc.tools_active ? "tools" : "response_format");
  }
  return oc;
}

void add_tools_to_prompt(const OutputConstraint& oc, std::vector<ChatMessage>& messages, ChatTemplateOptions& options) {
  for (ChatMessage& m : messages) normalize_tool_call_arguments(m.extra);
  if (oc.tools_active)
    add_tools_to_messages(oc.tools, oc.tools_json, oc.style, oc.template_has_tools, messages, options);
}

ChatPrompt prepare_chat_prompt(const api::Json& body, std::vector<ChatMessage> messages,
                               const ChatTemplate& chat_template, const ChatDefaults& defaults,
                               ChatTemplateOptions options) {
  ChatPrompt p{read_output_constraint(body, chat_template, defaults), std::move(messages), std::move(options)};
  api::read_template_kwargs(body, p.options);
  p.output.set_copy_source(p.messages);
  add_tools_to_prompt(p.output, p.messages, p.options);
  return p;
}

api::Json assistant_message(const OutputConstraint& oc, const std::string& text, bool& has_calls) {
  api::Json message = {{"role", "assistant"}, {"content", text}};
  has_calls = false;
  if (!oc.tools_active) return message;
  AssistantReply reply = parse_assistant_reply(oc.style, text);
  if (reply.cut_call && reply.calls.empty()) message["content"] = reply.content;  // as the stream showed it
  if (reply.calls.empty()) return message;
  has_calls = true;
  api::Json calls = api::Json::array();
  for (const ToolCall& call : reply.calls)
    calls.push_back({{"id", new_call_id()}, {"type", "function"},
                     {"function", {{"name", call.name}, {"arguments", call.arguments}}}});
  message["content"] = reply.content.empty() ? api::Json() : api::Json(reply.content);
  message["tool_calls"] = calls;
  return message;
}

std::string ContentStreamFilter::feed(std::string_view text) {
  if (in_call_) return {};
  held_ += text;
  size_t cut = held_.size();
  for (const std::string& t : triggers_) {
    size_t at = held_.find(t);
    if (at != std::string::npos && at < cut) {
      cut = at;
      in_call_ = true;
    }
  }
  if (!in_call_) {
    // Hold back a tail that could be the start of a trigger.
    for (const std::string& t : triggers_)
      for (size_t n = std::min(t.size() - 1, held_.size()); n > 0; --n)
        if (held_.compare(held_.size() - n, n, t, 0, n) == 0) {
          cut = std::min(cut, held_.size() - n);
          break;
        }
  }
  std::string out = held_.substr(0, cut);
  held_.erase(0, cut);
  if (in_call_) held_.clear();
  shown_ += out;
  return out;
}

}  // namespace onellm

// Tool calls in and out of the model: see tool_calls.h.
#include "engine/tool_calls.h"

#include <cctype>
#include <set>

#include "base/error.h"
#include "engine/json_schema.h"
#include "gguf/gguf.h"

namespace onellm {
namespace {

using Json = nlohmann::ordered_json;

bool valid_tool_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

// {"name": ..., "arguments"|"parameters": {...}} -> a call, if it is one.
bool call_from_json(std::string_view text, ToolCall& call) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return false;
  call.name = j["name"].get<std::string>();
  const char* key = j.contains("arguments") ? "arguments" : "parameters";
  if (!j.contains(key)) {
    call.arguments = "{}";
  } else if (j[key].is_string()) {  // some models write the arguments as a JSON string
    call.arguments = j[key].get<std::string>();
  } else {
    call.arguments = j[key].dump();
  }
  return true;
}

// The end (one past the closing brace) of the JSON object that starts at
// `open`, skipping braces inside strings; npos when it is not closed. A call's
// string argument may contain "</tool_call>" (the grammar allows any string),
// so the call ends where its JSON does, not at the first closing tag.
size_t json_object_end(std::string_view text, size_t open) {
  int depth = 0;
  bool in_string = false, escape = false;
  for (size_t i = open; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escape) escape = false;
      else if (c == '\\') escape = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

}  // namespace

ToolCallStyle tool_call_style(std::string_view source) {
  if (source.find("<tool_call>") != std::string_view::npos) return ToolCallStyle::kHermes;
  if (source.find("<|python_tag|>") != std::string_view::npos || source.find("ipython") != std::string_view::npos)
    return ToolCallStyle::kLlama3;
  return ToolCallStyle::kHermes;
}

bool template_renders_tools(std::string_view source) { return source.find("tools") != std::string_view::npos; }

std::string tool_system_prompt(const std::vector<ToolSpec>& tools, ToolCallStyle style) {
  std::string out = "You can call these tools:\n";
  for (const ToolSpec& t : tools) {
    Json f = {{"name", t.name}, {"description", t.description}, {"parameters", t.parameters}};
    out += f.dump() + "\n";
  }
  if (style == ToolCallStyle::kHermes)
    out += "To call a tool, reply with <tool_call>{\"name\": <tool name>, \"arguments\": <arguments object>}</tool_call>.";
  else
    out += "To call a tool, reply with {\"name\": <tool name>, \"parameters\": <arguments object>}.";
  return out;
}

void add_tools_to_messages(const std::vector<ToolSpec>& tools, const Json& tools_json, ToolCallStyle style,
                           bool template_renders, std::vector<ChatMessage>& messages, ChatTemplateOptions& options) {
  if (template_renders) {
    options.tools = tools_json;
    return;
  }
  const std::string described = tool_system_prompt(tools, style);
  if (!messages.empty() && messages[0].role == "system") messages[0].content += "\n\n" + described;
  else messages.insert(messages.begin(), ChatMessage{"system", described, ChatJson::object()});
}

std::vector<ToolSpec> parse_tool_specs(const Json& tools) {
  if (!tools.is_array()) throw Error("tools: must be an array");
  std::vector<ToolSpec> out;
  std::set<std::string> names;
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string at = "tools[" + std::to_string(i) + "]";
    const Json& t = tools[i];
    if (!t.is_object() || (t.contains("type") && t["type"] != "function"))
      throw Error(at + ": must be {\"type\": \"function\", \"function\": {...}}");
    const Json& f = t.contains("function") ? t["function"] : t;
    if (!f.is_object()) throw Error(at + ".function: must be an object");
    ToolSpec spec;
    if (!f.contains("name") || !f["name"].is_string()) throw Error(at + ".function.name: missing");
    spec.name = f["name"].get<std::string>();
    if (!valid_tool_name(spec.name))
      throw Error(at + ".function.name: '" + spec.name + "' is not 1-64 letters, digits, '_' or '-'");
    if (!names.insert(spec.name).second) throw Error(at + ".function.name: '" + spec.name + "' is defined twice");
    if (f.contains("description")) {
      if (!f["description"].is_string()) throw Error(at + ".function.description: must be a string");
      spec.description = f["description"].get<std::string>();
    }
    spec.parameters = f.contains("parameters") ? f["parameters"] : Json{{"type", "object"}, {"properties", Json::object()}};
    if (!spec.parameters.is_object() || (spec.parameters.contains("type") && spec.parameters["type"] != "object"))
      throw Error(at + ".function.parameters: must be a JSON Schema of type object");
    try {
      json_schema_gbnf_rules(spec.parameters, "check");
    } catch (const Error& e) {
      throw Error(at + ".function.parameters: " + e.what());
    }
    out.push_back(std::move(spec));
  }
  return out;
}

Json tool_choice_json(const std::string& name) {
  if (name == "auto" || name == "required" || name == "none") return Json(name);
  return Json{{"type", "function"}, {"function", {{"name", name}}}};
}

ToolChoice parse_tool_choice(const Json& choice, const std::vector<ToolSpec>& tools) {
  ToolChoice c;
  if (choice.is_null()) return c;
  if (choice.is_string()) {
    const std::string s = choice.get<std::string>();
    if (s == "auto") c.mode = ToolChoice::kAuto;
    else if (s == "none") c.mode = ToolChoice::kNone;
    else if (s == "required") c.mode = ToolChoice::kRequired;
    else throw Error("tool_choice: '" + s + "' is not auto, none, required or {\"type\":\"function\",...}");
    return c;
  }
  if (!choice.is_object() || !choice.contains("function") || !choice["function"].is_object() ||
      !choice["function"].contains("name") || !choice["function"]["name"].is_string())
    throw Error("tool_choice: must be a string or {\"type\": \"function\", \"function\": {\"name\": ...}}");
  c.mode = ToolChoice::kFunction;
  c.function = choice["function"]["name"].get<std::string>();
  bool known = false;
  for (const ToolSpec& t : tools) known = known || t.name == c.function;
  if (!known) throw Error("tool_choice: no tool is named '" + c.function + "'");
  return c;
}

std::string tool_calls_gbnf(ToolCallStyle style, const std::vector<ToolSpec>& tools, const ToolChoice& choice,
                            bool parallel, const std::string& root, bool with_primitives) {
  if (choice.mode == ToolChoice::kNone) throw Error("tool_choice none has no call grammar");
  if (tools.empty()) throw Error("tools: no tools to call");
  std::string rules, alternatives;
  const char* args_key = style == ToolCallStyle::kHermes ? "arguments" : "parameters";
  for (size_t i = 0; i < tools.size(); ++i) {
    const ToolSpec& t = tools[i];
    if (choice.mode == ToolChoice::kFunction && t.name != choice.function) continue;
    const std::string args = root + "-tool" + std::to_string(i) + "-args";
    rules += json_schema_gbnf_rules(t.parameters, args);
    alternatives += std::string(alternatives.empty() ? "" : " | ") + gbnf_literal(Json(t.name).dump()) +
                    " ws \",\" ws " + gbnf_literal(std::string("\"") + args_key + "\"") + " ws \":\" ws " + args;
  }
  const std::string fn = root + "-function";
  const std::string call = root + "-call";
  std::string out;
  if (style == ToolCallStyle::kHermes) {
    out += call + " ::= \"<tool_call>\" [ \\n]? \"{\" ws \"\\\"name\\\"\" ws \":\" ws " + fn +
           " ws \"}\" [ \\n]? \"</tool_call>\"\n";
    out += root + " ::= " + call + (parallel ? " ( \"\\n\"? " + call + " )*" : "") + "\n";
  } else {
    out += call + " ::= \"{\" ws \"\\\"name\\\"\" ws \":\" ws " + fn + " ws \"}\"\n";
    out += root + " ::= \"<|python_tag|>\"? " + call + "\n";
  }
  out += fn + " ::= " + alternatives + "\n" + rules;
  return with_primitives ? out + json_primitives_gbnf() : out;
}

std::vector<std::string> tool_call_triggers(ToolCallStyle style) {
  if (style == ToolCallStyle::kHermes) return {"<tool_call>"};
  return {"<|python_tag|>", "{\"name\""};
}

ToolCallConstraint tool_call_constraint(ToolCallStyle style, const std::vector<ToolSpec>& tools,
                                        const ToolChoice& choice, bool parallel, const std::string& answer_root,
                                        const std::string& answer_rules) {
  ToolCallConstraint c;
  std::string gbnf = tool_calls_gbnf(style, tools, choice, parallel, "calls", /*with_primitives=*/false);
  if (choice.mode == ToolChoice::kAuto && answer_root.empty()) {
    gbnf += "root ::= calls\n";
    c.triggers = tool_call_triggers(style);
  } else if (choice.mode == ToolChoice::kAuto) {
    gbnf += "root ::= calls | " + answer_root + "\n" + answer_rules;
  } else {
    gbnf += "root ::= calls\n";
  }
  c.grammar = Grammar::parse(gbnf + json_primitives_gbnf());
  return c;
}

std::vector<ToolSpec> parse_builtin_tools(const std::string& text, const std::string& what) {
  try {
    std::vector<ToolSpec> tools = parse_tool_specs(nlohmann::ordered_json::parse(text));
    if (tools.empty()) throw Error("no tools in the array");
    return tools;
  } catch (const nlohmann::json::exception& e) {
    throw Error(what + ": not JSON: " + e.what());
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
}

std::vector<ToolSpec> builtin_tools(const GgufFile& file) {
  const std::string text = file.get_string_or(kBuiltinToolsKey, "");
  return text.empty() ? std::vector<ToolSpec>{} : parse_builtin_tools(text, kBuiltinToolsKey);
}

ToolCallConstraint builtin_tool_constraint(const GgufFile& file, ToolCallStyle style) {
  const std::vector<ToolSpec> tools = builtin_tools(file);
  if (tools.empty()) return {};
  try {
    return tool_call_constraint(style, tools, ToolChoice{}, /*parallel=*/true);
  } catch (const Error& e) {
    throw Error(std::string(kBuiltinToolsKey) + ": " + e.what());
  }
}

AssistantReply parse_assistant_reply(ToolCallStyle style, std::string_view text) {
  AssistantReply reply;
  if (style == ToolCallStyle::kHermes) {
    std::string content;
    size_t pos = 0;
    for (;;) {
      size_t open = text.find("<tool_call>", pos);
      if (open == std::string_view::npos) break;
      size_t body = open + 11;
      const size_t json = text.find_first_not_of(" \t\r\n", body);
      const size_t json_end = json != std::string_view::npos && text[json] == '{' ? json_object_end(text, json)
                                                                                   : std::string_view::npos;
      size_t close = text.find("</tool_call>", json_end == std::string_view::npos ? body : json_end);
      ToolCall call;
      std::string_view inner = text.substr(body, close == std::string_view::npos ? std::string_view::npos : close - body);
      if (!call_from_json(trim(inner), call)) {
        // An unclosed call is one cut short (max_tokens): not content. Otherwise keep the text.
        if (close == std::string_view::npos) text = text.substr(0, open), reply.cut_call = true;
        break;
      }
      content += text.substr(pos, open - pos);
      reply.calls.push_back(std::move(call));
      pos = close == std::string_view::npos ? text.size() : close + 12;
    }
    content += text.substr(pos);
    reply.content = trim(content);
    return reply;
  }
  std::string_view rest = text;
  size_t tag = rest.find("<|python_tag|>");
  std::string before;
  if (tag != std::string_view::npos) {
    before = std::string(rest.substr(0, tag));
    rest = rest.substr(tag + 14);
  } else {
    size_t brace = rest.find("{\"name\"");
    if (brace == std::string_view::npos) {
      reply.content = trim(text);
      return reply;
    }
    before = std::string(rest.substr(0, brace));
    rest = rest.substr(brace);
  }
  ToolCall call;
  if (call_from_json(trim(rest), call)) {
    reply.calls.push_back(std::move(call));
    reply.content = trim(before);
  } else {
    // Not a call: the text after the call's start is what a stream hides
    // (a call cut short), so the reply shows only what came before it.
    reply.content = trim(before);
    reply.cut_call = true;
  }
  return reply;
}

void normalize_tool_call_arguments(nlohmann::ordered_json& extra) {
  if (!extra.is_object() || !extra.contains("tool_calls") || !extra["tool_calls"].is_array()) return;
  for (auto& call : extra["tool_calls"]) {
    if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) continue;
    auto& f = call["function"];
    if (f.contains("arguments") && f["arguments"].is_string()) {
      Json parsed = Json::parse(f["arguments"].get<std::string>(), nullptr, false);
      if (!parsed.is_discarded()) f["arguments"] = parsed;
    }
  }
}

std::string tool_call_copy_source(const std::vector<ChatMessage>& messages) {
  size_t last_user = messages.size();
  for (size_t i = messages.size(); i-- > 0;)
    if (messages[i].role == "user") {
      last_user = i;
      break;
    }
  std::string source;
  for (size_t i = last_user; i < messages.size(); ++i) {
    if (messages[i].role != "user" && messages[i].role != "tool") continue;
    if (!source.empty()) source += '\n';
    source += messages[i].content;
  }
  return source;
}

}  // namespace onellm

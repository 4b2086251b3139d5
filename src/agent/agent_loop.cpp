// The agent loop: ask the model with the tools, run the calls it makes, feed
// the results back, until it answers in text or the step limit is reached.
// Everything the model gets wrong (unknown tool, arguments that are not JSON,
// a failing tool) becomes a tool message it can read, not a crash.
#include <algorithm>
#include <cctype>
#include <set>

#include "agent/agent.h"
#include "agent/text_excerpt.h"
#include "base/error.h"
#include "engine/tool_calls.h"

namespace onellm::agent {
namespace {

class HttpChatBackend : public ChatBackend {
 public:
  HttpChatBackend(HttpEndpoint endpoint, int timeout_ms, std::string token)
      : endpoint_(std::move(endpoint)), timeout_ms_(timeout_ms), token_(std::move(token)) {}
  Json complete(const Json& request) override {
    std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", "application/json"}};
    if (!token_.empty()) headers.emplace_back("Authorization", "Bearer " + token_);
    HttpReply r = http_request(endpoint_, "POST", "/v1/chat/completions", headers, request.dump(), timeout_ms_);
    Json j = Json::parse(r.body, nullptr, false);
    if (j.is_discarded())
      throw Error(endpoint_.describe() + " answered HTTP " + std::to_string(r.status) + " that is not JSON: " + excerpt(r.body));
    if (r.status >= 400 || j.contains("error")) {
      const Json e = j.value("error", Json::object());
      throw Error("the model service answered HTTP " + std::to_string(r.status) + ": " +
                  (e.is_object() ? e.value("message", std::string("")) + " (" + e.value("code", std::string("")) + ")" : e.dump()));
    }
    return j;
  }

 private:
  HttpEndpoint endpoint_;
  int timeout_ms_;
  std::string token_;
};

std::string error_json(const std::string& message) { return Json{{"error", message}}.dump(); }

}  // namespace

std::unique_ptr<ChatBackend> make_http_chat_backend(const HttpEndpoint& endpoint, int timeout_ms, std::string token) {
  return std::make_unique<HttpChatBackend>(endpoint, timeout_ms, std::move(token));
}

// MCP allows tool names OpenAI does not ("files.read", "a/b"): the model is
// offered [A-Za-z0-9_-]{1,64} and the server is called by the real name.
std::string openai_tool_name(const std::string& mcp_name, const std::set<std::string>& taken) {
  std::string base;
  for (char c : mcp_name.substr(0, 60))
    base += std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ? c : '_';
  if (base.empty()) base = "tool";
  std::string name = base;
  for (int i = 2; taken.count(name); ++i) name = base + "_" + std::to_string(i);
  return name;
}

std::vector<AgentTool> mcp_agent_tools(McpClient& client, std::vector<std::string>* notes) {
  std::vector<AgentTool> out;
  std::set<std::string> taken;
  for (const McpTool& t : client.tools()) {
    Json definition = t.openai_definition();
    const std::string offered = openai_tool_name(t.name, taken);
    definition["function"]["name"] = offered;
    try {
      parse_tool_specs(Json::array({definition}));  // what the service will check
    } catch (const Error& e) {
      if (notes) notes->push_back("tool '" + t.name + "' left out: " + e.what());
      continue;
    }
    if (offered != t.name && notes) notes->push_back("tool '" + t.name + "' is offered to the model as '" + offered + "'");
    taken.insert(offered);
    const std::string name = t.name;
    out.push_back({definition, t.destructive(), [&client, name](const Json& args) {
                     McpCallResult r = client.call_tool(name, args);
                     return ToolOutcome{r.is_error, r.text()};
                   }});
  }
  return out;
}

std::vector<AgentTool> device_agent_tools(Device& device) {
  std::vector<AgentTool> out;
  for (const Json& def : device_tool_definitions()) {
    std::string name = def["function"]["name"].get<std::string>();
    out.push_back({def, device_tool_is_destructive(name), [&device, name](const Json& args) {
                     ToolResult r = device.call(name, args);
                     return ToolOutcome{r.is_error, r.content.dump()};
                   }});
  }
  return out;
}

std::vector<AgentTool> restrict_tools(std::vector<AgentTool> tools, const Json& file_tools) {
  if (!file_tools.is_array()) throw Error("the tools file must be a JSON array of tool definitions or tool names");
  std::vector<AgentTool> out;
  for (const Json& entry : file_tools) {
    std::string name;
    if (entry.is_string()) name = entry.get<std::string>();
    else if (entry.is_object() && entry.contains("function") && entry["function"].is_object() &&
             entry["function"].contains("name") && entry["function"]["name"].is_string())
      name = entry["function"]["name"].get<std::string>();
    else throw Error("tools file: entry " + excerpt(entry.dump()) + " is neither a name nor {\"type\":\"function\",\"function\":{\"name\":...}}");
    auto it = std::find_if(tools.begin(), tools.end(), [&](const AgentTool& t) { return t.name() == name; });
    if (it == tools.end()) throw Error("tools file names '" + name + "', which no MCP server offers");
    AgentTool t = *it;
    if (entry.is_object()) t.definition = entry;
    out.push_back(std::move(t));
  }
  return out;
}

std::string default_system_prompt() {
  return "You are the assistant of a phone. Use the tools to do what the user asks, then say briefly what you did.";
}

AgentRun run_agent(ChatBackend& model, const std::vector<AgentTool>& initial_tools, const std::string& request,
                   const AgentOptions& options) {
  std::vector<AgentTool> tools = initial_tools;
  AgentRun run;
  auto log = [&](Json entry) {
    run.transcript.push_back(entry);
    if (options.on_entry) options.on_entry(entry);
  };
  if (!options.system_prompt.empty()) run.messages.push_back({{"role", "system"}, {"content", options.system_prompt}});
  run.messages.push_back({{"role", "user"}, {"content", request}});
  log({{"type", "request"}, {"content", request}});

  Json definitions;
  std::string names;
  auto describe_tools = [&] {
    definitions = Json::array();
    names.clear();
    for (const AgentTool& t : tools) {
      definitions.push_back(t.definition);
      names += (names.empty() ? "" : ", ") + t.name();
    }
  };
  describe_tools();
  long long call_counter = 0;
  while (true) {
    if (run.steps >= options.max_steps) {
      run.stop_reason = "max_steps";
      log({{"type", "stop"}, {"reason", "step limit of " + std::to_string(options.max_steps) + " reached"}});
      break;
    }
    if (run.steps > 0 && options.refresh_tools) {
      try {
        if (options.refresh_tools(tools)) {
          describe_tools();
          log({{"type", "tools_changed"}, {"tools", names}});
        }
      } catch (const Error& e) {
        run.stop_reason = std::string("error: ") + e.what();
        log({{"type", "stop"}, {"reason", run.stop_reason}});
        break;
      }
    }
    Json req = options.sampling.is_object() ? options.sampling : Json::object();
    req["messages"] = run.messages;
    if (!definitions.empty() && options.tool_choice != "none") {
      req["tools"] = definitions;
      req["tool_choice"] = Json(tool_choice_json(options.tool_choice));
    }
    Json reply;
    try {
      reply = model.complete(req);
    } catch (const UnreachableError&) {
      throw;  // nothing answered: no run happened (agent.h)
    } catch (const Error& e) {
      run.stop_reason = std::string("error: ") + e.what();
      log({{"type", "stop"}, {"reason", run.stop_reason}});
      break;
    }
    ++run.steps;
    if (!reply.contains("choices") || !reply["choices"].is_array() || reply["choices"].empty() ||
        !reply["choices"][0].is_object() || !reply["choices"][0].contains("message") ||
        !reply["choices"][0]["message"].is_object()) {
      run.stop_reason = "error: the model service's reply has no choices[0].message";
      log({{"type", "stop"}, {"reason", run.stop_reason}});
      break;
    }
    const Json msg = reply["choices"][0]["message"];
    const Json content = msg.contains("content") && msg["content"].is_string() ? msg["content"] : Json();
    const Json calls = msg.contains("tool_calls") && msg["tool_calls"].is_array() ? msg["tool_calls"] : Json::array();
    log({{"type", "model"}, {"content", content}, {"tool_calls", calls},
         {"finish_reason", reply["choices"][0].value("finish_reason", Json())}});
    if (calls.empty()) {
      run.final_answer = content.is_string() ? content.get<std::string>() : "";
      run.messages.push_back({{"role", "assistant"}, {"content", run.final_answer}});
      // A reply cut by max_tokens is not an answer (often a tool call that
      // did not finish): say so instead of presenting the fragment.
      run.stop_reason = reply["choices"][0].value("finish_reason", Json()) == "length" ? "length" : "answer";
      break;
    }
    run.messages.push_back({{"role", "assistant"}, {"content", content}, {"tool_calls", calls}});
    for (const Json& call : calls) {
      ++call_counter;
      const Json fn = call.is_object() && call.contains("function") && call["function"].is_object() ? call["function"] : Json::object();
      const std::string id = call.is_object() && call.contains("id") && call["id"].is_string()
                                 ? call["id"].get<std::string>() : "call_" + std::to_string(call_counter);
      const std::string name = fn.contains("name") && fn["name"].is_string() ? fn["name"].get<std::string>() : "";
      Json args;
      ToolOutcome out;
      bool ran = false, bad_arguments = false;
      const Json raw_args = fn.value("arguments", Json("{}"));
      if (raw_args.is_string()) {
        args = Json::parse(raw_args.get<std::string>(), nullptr, false);
        if (args.is_discarded()) {
          args = raw_args;
          bad_arguments = true;
          out = {true, error_json("the arguments of " + name + " are not valid JSON: " + excerpt(raw_args.get<std::string>()))};
        }
      } else {
        args = raw_args;
      }
      auto tool = std::find_if(tools.begin(), tools.end(), [&](const AgentTool& t) { return t.name() == name; });
      if (bad_arguments) {
        // already answered with the parse error
      } else if (tool == tools.end()) {
        out = {true, error_json("unknown tool '" + name + "'; the tools are: " + names)};
      } else if (tool->destructive && options.confirm && !options.confirm(name, args)) {
        out = {true, error_json("the user declined to run " + name)};
      } else {
        try {
          out = tool->call(args);
          ran = true;
        } catch (const Error& e) {
          out = {true, error_json(std::string("the tool failed: ") + e.what())};
        }
      }
      run.calls.push_back({{"name", name}, {"arguments", args}, {"ok", ran && !out.is_error}});
      log({{"type", "tool_result"}, {"name", name}, {"arguments", args}, {"is_error", out.is_error}, {"content", out.text}});
      run.messages.push_back({{"role", "tool"}, {"tool_call_id", id}, {"content", out.text}});
    }
  }
  return run;
}

}  // namespace onellm::agent

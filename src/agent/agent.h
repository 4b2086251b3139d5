// The agent layer's public header: the agent loop (model -> tool calls ->
// results -> model) against an OpenAI-compatible /v1/chat/completions, tools
// from MCP servers or the in-process simulated device, and the evaluation of
// agents by the device state they leave behind. See also agent/device.h
// (the simulated device) and agent/mcp.h (MCP client and server).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/device.h"
#include "agent/http_client.h"
#include "agent/mcp.h"

namespace onellm::agent {

// What a tool call gives back to the model.
struct ToolOutcome {
  bool is_error = false;
  std::string text;  // JSON or plain text, passed to the model as the tool message
};

struct AgentTool {
  Json definition;  // OpenAI {"type":"function","function":{name,description,parameters}}
  bool destructive = false;
  std::function<ToolOutcome(const Json& arguments)> call;
  std::string name() const { return definition["function"]["name"].get<std::string>(); }
};

// Every tool of an MCP server the model can be offered (the client must
// outlive the tools): a name OpenAI does not allow (MCP allows "files.read")
// is offered as a valid alias and called by its own name; a tool whose
// input schema cannot be enforced is left out. `notes`, if given, gets a
// line for each alias and each tool left out.
std::vector<AgentTool> mcp_agent_tools(McpClient& client, std::vector<std::string>* notes = nullptr);
// Every tool of an in-process device (the device must outlive the tools).
std::vector<AgentTool> device_agent_tools(Device& device);
// Replaces definitions by those of `file_tools` (OpenAI tool definitions) and
// keeps only the tools it names; a name no server offers is an Error.
std::vector<AgentTool> restrict_tools(std::vector<AgentTool> tools, const Json& file_tools);

// POST /v1/chat/completions on the service (or any OpenAI-compatible server).
class ChatBackend {
 public:
  virtual ~ChatBackend() = default;
  virtual Json complete(const Json& request) = 0;  // the reply object; Error on HTTP/API errors
};
std::unique_ptr<ChatBackend> make_http_chat_backend(const HttpEndpoint& endpoint, int timeout_ms,
                                                    std::string token = "");

struct AgentOptions {
  int max_steps = 8;  // model calls at most
  std::string system_prompt;
  std::string tool_choice = "auto";  // auto | required | none | a tool name
  Json sampling = Json::object();    // merged into every request (temperature, max_tokens, seed, ...)
  // Asked before a destructive tool runs; false skips the call (the model is told).
  std::function<bool(const std::string& name, const Json& arguments)> confirm;
  // Each transcript entry as it happens (readable output).
  std::function<void(const Json& entry)> on_entry;
  // Called before every model request after the first: may replace the
  // tools (an MCP server said its list changed) and returns whether it did.
  std::function<bool(std::vector<AgentTool>& tools)> refresh_tools;
};

struct AgentRun {
  Json messages = Json::array();    // the conversation sent to the model
  Json transcript = Json::array();  // entries: request, model, tool call, tool result, final, stop
  Json calls = Json::array();       // {"name","arguments","ok"} in order, valid or not
  std::string final_answer;
  std::string stop_reason;  // "answer", "length" (the reply was cut at max_tokens), "max_steps", "error: ..."
  int steps = 0;
};

// A model error ends the run with stop_reason "error: ..."; a model that
// cannot be reached at all (UnreachableError) is thrown to the caller: no
// run happened, and an evaluation must not count it as a failed task.
AgentRun run_agent(ChatBackend& model, const std::vector<AgentTool>& tools, const std::string& request,
                   const AgentOptions& options);
std::string default_system_prompt();

// A small predicate language on device state (documented in docs/architecture.md):
//   {"path": "/alarms", "count": 2}            array/object size (or {"count": {"min":1,"max":3}})
//   {"path": "/settings/wifi", "equals": false} JSON equality, strings case-insensitive
//   {"path": "/messages", "contains": {"to": "mom"}}  an element matching the pattern
//   {"path": "/emails/0/body", "contains": "late"}    substring, case-insensitive
//   {"path": "/navigation", "exists": true}     present and not null
//   {"all": [...]}, {"any": [...]}, {"not": {...}}
// Paths are JSON Pointers. A malformed predicate is an Error.
struct PredicateResult {
  bool ok = false;
  std::string why;  // what failed, for the report
};
PredicateResult check_predicate(const Json& predicate, const Json& state);
// Pattern matching used by "contains" and by expected-call comparison:
// objects match when every pattern key matches, strings case-insensitively.
bool json_matches(const Json& value, const Json& pattern);

struct AgentTask {
  std::string id, request;
  Json initial_state = Json::object();  // merged over the default device
  Json check;                           // predicate on the final state
  Json expected_calls;                  // null, or [{"name","arguments"}]
};
// One task per line; errors name the file and line.
std::vector<AgentTask> load_agent_tasks(const std::string& path);

struct TaskOutcome {
  std::string id;
  bool success = false;
  bool exact_calls = false;  // the calls made equal the expected ones (when given)
  bool has_expected = false;
  std::string why;
  AgentRun run;
  Json final_state;
};
TaskOutcome evaluate_task(ChatBackend& model, const AgentTask& task, const AgentOptions& options);
Json evaluation_summary(const std::vector<TaskOutcome>& outcomes);

}  // namespace onellm::agent

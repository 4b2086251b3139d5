// The simulated device: the state an agent acts on (alarms, timers, calendar,
// contacts, calls, messages, email, searches, maps, settings, camera,
// documents) and the tools that change it, modelled on Android intents. The
// state is plain JSON so it can be saved, inspected and checked by predicates.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace onellm::agent {

using Json = nlohmann::json;

// OpenAI function definitions of every device tool: the set the bundled model
// was trained on (train/device_tools.json.inc, read as is).
const Json& device_tool_definitions();
// MCP annotations: destructive tools delete state (the agent asks first).
bool device_tool_is_destructive(const std::string& name);
bool device_tool_is_read_only(const std::string& name);

// Checks `args` against a tool's JSON Schema (the subset tools use: type,
// properties, required, enum, minimum/maximum, minLength/maxLength, items).
// Unknown properties are rejected. Returns "" when valid, else a message
// naming the argument at fault.
std::string schema_violation(const Json& schema, const Json& args);

struct ToolResult {
  bool is_error = false;
  Json content;  // a JSON object on success; {"error": "..."} on failure
};

class Device {
 public:
  Device();  // the default device (a few contacts, documents, one alarm, one event)
  // Throws Error naming the field when `state` is not a device state.
  static Device from_json(const Json& state);
  // A missing file gives the default device; a corrupt one is an Error.
  static Device load(const std::string& path);
  // Atomic: written to a temporary file and renamed over `path`.
  void save(const std::string& path) const;
  const Json& state() const { return state_; }
  // Runs one tool. Bad names and bad arguments come back as error results
  // (for the model to read), never as exceptions.
  ToolResult call(const std::string& name, const Json& args);

 private:
  Json state_;
};

Json default_device_state();

}  // namespace onellm::agent

// Judging agents by the device state they leave: predicates, the task file,
// and the per-task evaluation with an in-process simulated device.
#include <cctype>
#include <fstream>

#include "agent/agent.h"
#include "agent/text_excerpt.h"
#include "base/error.h"

namespace onellm::agent {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool loose_equal(const Json& a, const Json& b) {
  if (a.is_string() && b.is_string()) return lower(a.get<std::string>()) == lower(b.get<std::string>());
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  if (a.is_array() && b.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!loose_equal(a[i], b[i])) return false;
    return true;
  }
  if (a.is_object() && b.is_object()) {
    if (a.size() != b.size()) return false;
    for (const auto& [k, v] : a.items())
      if (!b.contains(k) || !loose_equal(v, b[k])) return false;
    return true;
  }
  return a == b;
}

const Json* at_path(const Json& state, const std::string& path) {
  Json::json_pointer ptr;
  try {
    ptr = Json::json_pointer(path);
  } catch (const Json::exception&) {
    throw Error("predicate path '" + path + "' is not a JSON Pointer (like /alarms/0/hour)");
  }
  // contains() throws on array indices that are not numbers; treat as absent.
  try {
    if (!state.contains(ptr)) return nullptr;
  } catch (const Json::exception&) {
    return nullptr;
  }
  return &state.at(ptr);
}

}  // namespace

bool json_matches(const Json& value, const Json& pattern) {
  if (pattern.is_object()) {
    if (!value.is_object()) return false;
    for (const auto& [k, v] : pattern.items())
      if (!value.contains(k) || !json_matches(value[k], v)) return false;
    return true;
  }
  return loose_equal(value, pattern);
}

PredicateResult check_predicate(const Json& p, const Json& state) {
  if (!p.is_object() || p.empty()) throw Error("a predicate must be a non-empty object, not " + excerpt(p.dump()));
  if (p.contains("all") || p.contains("any")) {
    const bool all = p.contains("all");
    const Json& list = p[all ? "all" : "any"];
    if (!list.is_array() || list.empty()) throw Error(std::string("predicate '") + (all ? "all" : "any") + "' needs a non-empty array");
    std::string whys;
    for (const Json& q : list) {
      PredicateResult r = check_predicate(q, state);
      if (all && !r.ok) return r;
      if (!all && r.ok) return r;
      whys += (whys.empty() ? "" : "; ") + r.why;
    }
    return {all, all ? "" : "none of: " + whys};
  }
  if (p.contains("not")) {
    PredicateResult r = check_predicate(p["not"], state);
    return {!r.ok, r.ok ? "should not hold: " + p["not"].dump() : ""};
  }
  if (!p.contains("path") || !p["path"].is_string()) throw Error("predicate " + excerpt(p.dump()) + " has no \"path\" string");
  const std::string path = p["path"].get<std::string>();
  const Json* v = at_path(state, path);
  const std::string shown = v == nullptr ? "absent" : excerpt(v->dump(), 200);
  if (p.contains("exists")) {
    bool present = v != nullptr && !v->is_null();
    bool want = p["exists"].is_boolean() && p["exists"].get<bool>();
    return {present == want, path + (want ? " should exist" : " should not exist") + ", is " + shown};
  }
  if (p.contains("equals")) {
    bool ok = v != nullptr && loose_equal(*v, p["equals"]);
    return {ok, ok ? "" : path + " should equal " + p["equals"].dump() + ", is " + shown};
  }
  if (p.contains("contains")) {
    const Json& want = p["contains"];
    bool ok = false;
    if (v != nullptr && v->is_string() && want.is_string())
      ok = lower(v->get<std::string>()).find(lower(want.get<std::string>())) != std::string::npos;
    else if (v != nullptr && v->is_array())
      for (const Json& e : *v) ok = ok || json_matches(e, want);
    return {ok, ok ? "" : path + " should contain " + want.dump() + ", is " + shown};
  }
  if (p.contains("count")) {
    const Json& c = p["count"];
    long long min = 0, max = 0;
    if (c.is_number_integer()) min = max = c.get<long long>();
    else if (c.is_object()) {
      min = c.value("min", 0LL);
      max = c.value("max", (1LL << 62));
    } else throw Error("predicate count must be an integer or {\"min\":..,\"max\":..}");
    long long n = v != nullptr && (v->is_array() || v->is_object()) ? static_cast<long long>(v->size()) : -1;
    bool ok = n >= min && n <= max;
    return {ok, ok ? "" : path + " should have count " + c.dump() + ", has " + (n < 0 ? "none" : std::to_string(n))};
  }
  throw Error("predicate " + excerpt(p.dump()) + " has none of equals, contains, count, exists, all, any, not");
}

std::vector<AgentTask> load_agent_tasks(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open task file " + path);
  std::vector<AgentTask> tasks;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Error(where + ": not a JSON object");
    AgentTask t;
    if (!j.contains("request") || !j["request"].is_string()) throw Error(where + ": no \"request\" string");
    if (!j.contains("check")) throw Error(where + ": no \"check\" predicate");
    t.id = j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>() : "line" + std::to_string(n);
    t.request = j["request"].get<std::string>();
    t.check = j["check"];
    t.initial_state = j.value("initial_state", Json::object());
    t.expected_calls = j.value("expected_calls", Json());
    try {
      Device::from_json(t.initial_state);
      check_predicate(t.check, default_device_state());  // shape only; the result does not matter
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
    if (!t.expected_calls.is_null() && !t.expected_calls.is_array()) throw Error(where + ": expected_calls must be an array");
    for (const Json& c : t.expected_calls.is_array() ? t.expected_calls : Json::array())
      if (!c.is_object() || !c.contains("name") || !c["name"].is_string())
        throw Error(where + ": every expected call needs a \"name\"");
    tasks.push_back(std::move(t));
  }
  if (tasks.empty()) throw Error("task file " + path + " has no tasks");
  return tasks;
}

TaskOutcome evaluate_task(ChatBackend& model, const AgentTask& task, const AgentOptions& options) {
  TaskOutcome out;
  out.id = task.id;
  Device device = Device::from_json(task.initial_state);
  const Json before = device.state();
  std::vector<AgentTool> tools = device_agent_tools(device);
  out.run = run_agent(model, tools, task.request, options);
  out.final_state = device.state();
  PredicateResult r = check_predicate(task.check, out.final_state);
  out.success = r.ok;
  out.why = r.ok ? "" : r.why;
  if (out.run.stop_reason.rfind("error", 0) == 0 && !r.ok) out.why += " (" + out.run.stop_reason + ")";
  out.has_expected = task.expected_calls.is_array();
  if (out.has_expected) {
    // Only calls that ran count: a rejected call is a mistake the model may fix.
    Json made = Json::array();
    for (const Json& c : out.run.calls)
      if (c["ok"] == true) made.push_back(c);
    out.exact_calls = made.size() == task.expected_calls.size();
    for (size_t i = 0; out.exact_calls && i < made.size(); ++i) {
      const Json& want = task.expected_calls[i];
      out.exact_calls = made[i]["name"] == want["name"] &&
                        loose_equal(made[i]["arguments"], want.value("arguments", Json::object()));
    }
  }
  return out;
}

Json evaluation_summary(const std::vector<TaskOutcome>& outcomes) {
  size_t ok = 0, with_calls = 0, exact = 0, calls = 0, valid_calls = 0;
  for (const TaskOutcome& o : outcomes) {
    ok += o.success;
    with_calls += o.has_expected;
    exact += o.has_expected && o.exact_calls;
    for (const Json& c : o.run.calls) {
      ++calls;
      valid_calls += c["ok"] == true;
    }
  }
  auto rate = [](size_t a, size_t b) { return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b); };
  return {{"tasks", outcomes.size()},        {"succeeded", ok},
          {"success_rate", rate(ok, outcomes.size())}, {"tasks_with_expected_calls", with_calls},
          {"exact_calls", exact},            {"exact_call_accuracy", rate(exact, with_calls)},
          {"tool_calls", calls},             {"valid_tool_calls", valid_calls}};
}

}  // namespace onellm::agent

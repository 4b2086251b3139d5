// Trace files: one JSON object per episode, one entry per step, in a form
// both onellm's evaluator and LlamaTouch-style tools (the AITW action) read.
#include <fstream>
#include <sstream>

#include "agent/trace_eval.h"
#include "base/error.h"

namespace onellm {

using nlohmann::json;

namespace {

json apps_to_json(const std::vector<InstalledApp>& apps) {
  json a = json::array();
  for (const InstalledApp& app : apps) a.push_back({{"name", app.name}, {"package", app.package}});
  return a;
}

}  // namespace

json trace_to_json(const GuiTrace& t) {
  json steps = json::array();
  for (size_t i = 0; i < t.steps.size(); ++i) {
    const TraceStep& s = t.steps[i];
    json j = {{"step", i}, {"activity", s.activity}, {"view_hierarchy", s.view_hierarchy}};
    if (s.installed_apps) j["installed_apps"] = apps_to_json(*s.installed_apps);
    if (s.action) {
      j["action"] = gui_action_to_json(*s.action);
      try {
        j["aitw_action"] = gui_action_to_aitw(*s.action, parse_screen(s.view_hierarchy));
      } catch (const Error&) {
        j["aitw_action"] = nullptr;  // an action the screen could not resolve; kept as the agent gave it
      }
    }
    if (!s.note.empty()) j["note"] = s.note;
    steps.push_back(std::move(j));
  }
  json out = {{"task_id", t.task_id}, {"goal", t.goal}, {"app", t.app}, {"steps", steps}};
  if (!t.verdict.empty()) out["verdict"] = {{"value", t.verdict}, {"source", t.verdict_source}};
  return out;
}

GuiTrace trace_from_json(const json& j) {
  if (!j.is_object()) throw Error("trace: expected a JSON object");
  GuiTrace t;
  auto str = [](const json& o, const char* key, const std::string& where) {
    if (!o.contains(key)) return std::string();
    if (!o[key].is_string()) throw Error(where + ": '" + key + "' must be a string");
    return o[key].get<std::string>();
  };
  t.task_id = str(j, "task_id", "trace");
  t.goal = str(j, "goal", "trace");
  t.app = str(j, "app", "trace");
  if (j.contains("verdict")) {
    const json& v = j["verdict"];
    t.verdict = str(v, "value", "trace verdict");
    t.verdict_source = str(v, "source", "trace verdict");
    if (t.verdict != "success" && t.verdict != "failure")
      throw Error("trace verdict: value must be success or failure, got '" + t.verdict + "'");
  }
  if (!j.contains("steps") || !j["steps"].is_array()) throw Error("trace: 'steps' (an array) is missing");
  for (size_t i = 0; i < j["steps"].size(); ++i) {
    const json& s = j["steps"][i];
    const std::string where = "trace step " + std::to_string(i);
    if (!s.is_object()) throw Error(where + ": expected an object");
    TraceStep step;
    step.view_hierarchy = str(s, "view_hierarchy", where);
    step.activity = str(s, "activity", where);
    step.note = str(s, "note", where);
    if (s.contains("installed_apps")) {
      std::vector<InstalledApp> apps;
      if (!s["installed_apps"].is_array()) throw Error(where + ": 'installed_apps' must be an array");
      for (const json& a : s["installed_apps"]) apps.push_back({str(a, "name", where), str(a, "package", where)});
      step.installed_apps = std::move(apps);
    }
    if (s.contains("action") && !s["action"].is_null()) {
      // Validated against its own screen, as the agent saw it.
      int n_elements = 0;
      Bounds screen{0, 0, 1080, 2400};
      if (!step.view_hierarchy.empty()) {
        ScreenView v = parse_screen(step.view_hierarchy);
        n_elements = static_cast<int>(v.elements.size());
        screen = v.screen;
      }
      try {
        step.action = parse_gui_action(s["action"], n_elements, screen);
      } catch (const Error& e) {
        throw Error(where + ": " + e.what());
      }
    }
    t.steps.push_back(std::move(step));
  }
  return t;
}

void save_trace(const GuiTrace& trace, const std::string& path) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw Error(path + ": cannot write");
    out << trace_to_json(trace).dump(1) << "\n";
    if (!out.flush()) throw Error(path + ": write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw Error(path + ": cannot rename " + tmp);
}

GuiTrace load_trace(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) throw Error(path + ": not valid JSON");
  try {
    return trace_from_json(j);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

}  // namespace onellm

// The GUI agent loop and the scripted oracle policy.
#include "agent/gui_agent.h"

#include "base/error.h"

namespace onellm {

using nlohmann::json;

std::string describe_gui_action(const GuiAction& a, const ScreenView& screen) {
  std::string s = gui_action_name(a.type);
  if (a.index >= 0) {
    s += " " + std::to_string(a.index);
    if (a.index < static_cast<int>(screen.elements.size())) s += " \"" + screen.elements[a.index].text + "\"";
  }
  if (a.x) s += " (" + std::to_string(*a.x) + ", " + std::to_string(*a.y) + ")";
  if (!a.direction.empty()) s += " " + a.direction;
  if (a.type == GuiActionType::kInputText || a.type == GuiActionType::kAnswer) s += " text=" + json(a.text).dump();
  if (!a.app_name.empty()) s += " " + a.app_name;
  if (!a.goal_status.empty()) s += " " + a.goal_status;
  return s;
}

std::string gui_agent_prompt(const std::string& goal, const ScreenView& screen, const std::string& activity,
                             const std::vector<std::string>& history, const std::string& reflection, bool html_form) {
  std::string p =
      "You control an Android phone to complete a task. Reply with one action as a JSON object, e.g. "
      "{\"action_type\": \"click\", \"index\": 2}. Actions: click, long_press, input_text (index, text), scroll "
      "(direction), navigate_back, navigate_home, keyboard_enter, open_app (app_name), wait, answer (text), "
      "status (goal_status: complete or infeasible).\n";
  p += "Task: " + goal + "\n";
  if (!history.empty()) {
    p += "Previous actions:\n";
    for (size_t i = 0; i < history.size(); ++i) p += std::to_string(i + 1) + ". " + history[i] + "\n";
  }
  if (!reflection.empty()) p += "Note on the last action: " + reflection + "\n";
  p += "Current screen (" + activity + "):\n";
  p += html_form ? screen.html() : screen.element_list();
  p += "Action: ";
  return p;
}

GuiTrace run_gui_agent(GuiEnvironment& env, const std::string& goal, const GuiPolicy& policy,
                       const GuiReflector& reflector, const GuiAgentOptions& options,
                       const std::function<void(const TraceStep&, size_t)>& on_step) {
  GuiTrace trace;
  trace.goal = goal;
  std::vector<std::string> history;
  std::vector<InstalledApp> last_apps;
  std::string reflection;
  bool first = true;
  auto record = [&](TraceStep step) {
    trace.steps.push_back(std::move(step));
    if (on_step) on_step(trace.steps.back(), trace.steps.size() - 1);
  };
  auto observe = [&](TraceStep& step) {
    step.view_hierarchy = env.dump_screen();
    step.activity = env.current_activity();
    std::vector<InstalledApp> apps = env.installed_apps();
    if (first || apps != last_apps) step.installed_apps = apps;
    last_apps = std::move(apps);
    first = false;
  };
  for (int n = 0; n < options.max_steps; ++n) {
    TraceStep step;
    observe(step);
    const ScreenView screen = parse_screen(step.view_hierarchy);
    std::vector<std::string> app_names;
    for (const InstalledApp& a : last_apps) app_names.push_back(a.name);
    const size_t from = history.size() > options.history ? history.size() - options.history : 0;
    GuiPolicyInput in{goal, screen, step.activity,
                      gui_agent_prompt(goal, screen, step.activity,
                                       std::vector<std::string>(history.begin() + static_cast<long>(from), history.end()),
                                       reflection, options.html_form),
                      gui_action_schema(static_cast<int>(screen.elements.size()), app_names), app_names};
    reflection.clear();
    std::string failure;
    const std::string output = policy(in);
    try {
      step.action = parse_gui_action_text(output, static_cast<int>(screen.elements.size()), screen.screen);
    } catch (const Error& e) {
      failure = std::string("invalid action: ") + e.what();
      history.push_back("(invalid output)");
    }
    if (step.action) {
      const GuiAction& a = *step.action;
      history.push_back(describe_gui_action(a, screen));
      if (a.type == GuiActionType::kStatus) {
        record(std::move(step));
        return trace;
      }
      try {
        env.execute(device_command(a, screen));
        const bool observable = a.type != GuiActionType::kWait && a.type != GuiActionType::kAnswer;
        if (observable && env.dump_screen() == step.view_hierarchy) failure = "no-op: screen unchanged";
      } catch (const Error& e) {
        failure = std::string("error: ") + e.what();
      }
    }
    if (!failure.empty()) {
      step.note = failure;
      history.back() += " -> " + failure;
      if (options.reflect && reflector) {
        in.prompt += output + "\nThat action failed (" + failure + "). In one sentence, why, and what to do instead? ";
        reflection = failure + ". " + reflector(in);
        step.note += "; reflection: " + reflection;
      } else {
        reflection = failure;
      }
    }
    record(std::move(step));
  }
  TraceStep last;
  observe(last);
  last.note = "step limit reached";
  record(std::move(last));
  return trace;
}

namespace {

int find_target(const ScreenView& screen, const json& target) {
  const std::string id = target.value("id", "");
  const std::string text = target.value("text", "");
  for (size_t i = 0; i < screen.elements.size(); ++i) {
    const ScreenElement& e = screen.elements[i];
    const ViewNode& n = screen.tree.nodes[e.node];
    if (!id.empty() && n.short_id() != id) continue;
    if (!text.empty() && e.text.find(text) == std::string::npos && n.content_desc.find(text) == std::string::npos)
      continue;
    return static_cast<int>(i);
  }
  return -1;
}

int find_scroller(const ScreenView& screen) {
  for (size_t i = 0; i < screen.elements.size(); ++i)
    if (screen.elements[i].tag == "scroller") return static_cast<int>(i);
  return -1;
}

}  // namespace

GuiPolicy oracle_gui_policy(const json& oracle) {
  struct State {
    json script;
    size_t next = 0;
    int scrolls = 0;
  };
  auto st = std::make_shared<State>(State{oracle});
  return [st](const GuiPolicyInput& in) -> std::string {
    if (st->next >= st->script.size()) return R"({"action_type": "status", "goal_status": "complete"})";
    json a = st->script[st->next];
    if (a.contains("target")) {
      const int index = find_target(in.screen, a["target"]);
      if (index < 0) {
        const int scroller = find_scroller(in.screen);
        if (scroller < 0 || st->scrolls >= 8)
          throw Error("oracle: target " + a["target"].dump() + " not on screen " + in.activity);
        ++st->scrolls;
        return json{{"action_type", "scroll"}, {"direction", "down"}, {"index", scroller}}.dump();
      }
      a.erase("target");
      a["index"] = index;
    }
    st->scrolls = 0;
    ++st->next;
    return a.dump();
  };
}

}  // namespace onellm

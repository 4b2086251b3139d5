// The GUI agent loop: screen -> prompt (task, compact screen, short history)
// -> action (constrained to the action schema) -> environment -> next
// screen, with a step limit, no-op detection and one reflection step after a
// failed action. Also the scripted oracle that produces golden traces.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/trace_eval.h"

namespace onellm {

class Sequence;
struct SamplingParams;

struct GuiAgentOptions {
  int max_steps = 15;
  size_t history = 5;      // previous actions shown in the prompt
  bool html_form = true;   // else the indexed element list
  bool reflect = true;     // one reflection step after a failed action
};

struct GuiPolicyInput {
  const std::string& goal;
  const ScreenView& screen;
  const std::string& activity;
  std::string prompt;           // what a model reads
  nlohmann::json schema;        // the valid actions on this screen
  std::vector<std::string> apps;  // installed app names (open_app targets)
};

// Returns the action as JSON text (validated by the loop; invalid output is a
// failed step, not a crash).
using GuiPolicy = std::function<std::string(const GuiPolicyInput&)>;
// Returns one or two sentences on why the last action failed.
using GuiReflector = std::function<std::string(const GuiPolicyInput&)>;

std::string gui_agent_prompt(const std::string& goal, const ScreenView& screen, const std::string& activity,
                             const std::vector<std::string>& history, const std::string& reflection, bool html_form);
std::string describe_gui_action(const GuiAction& a, const ScreenView& screen);  // 'click 3 "Save"'

// Runs until status, the step limit or an environment error on reading the
// screen; on_step sees every step as it is recorded (printing).
GuiTrace run_gui_agent(GuiEnvironment& env, const std::string& goal, const GuiPolicy& policy,
                       const GuiReflector& reflector, const GuiAgentOptions& options,
                       const std::function<void(const TraceStep&, size_t)>& on_step = nullptr);

// A policy that plays a task's oracle script: actions whose "target"
// ({"id": resource-id, "text": part of the element text}) is resolved to an
// element index on the current screen, scrolling down when it is not visible.
GuiPolicy oracle_gui_policy(const nlohmann::json& oracle);

// A policy that asks a model: the prompt (through the model's chat template
// when it has one) and an action that is valid by construction — generated
// under the grammar of the screen's action schema (kGrammar), or chosen among
// the schema's concrete actions by likelihood (kRanked: typed text can only
// be one of the task's quoted strings).
enum class GuiDecoding { kGrammar, kRanked };
GuiPolicy model_gui_policy(Sequence& sequence, const SamplingParams& sampling,
                           GuiDecoding decoding = GuiDecoding::kGrammar);
GuiReflector model_gui_reflector(Sequence& sequence, const SamplingParams& sampling);

}  // namespace onellm

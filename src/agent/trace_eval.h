// GUI task traces and their evaluation by essential states (LlamaTouch's
// idea): a task names the states a correct execution must pass through, in
// order; a trace succeeds only when all of them are matched. The agent's own
// claim of success is never consulted.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/gui_environment.h"

namespace onellm {

class Model;
class Tokenizer;

// --- traces -----------------------------------------------------------------

struct TraceStep {
  std::string view_hierarchy;  // the screen the action was chosen on (uiautomator XML)
  std::string activity;
  std::optional<std::vector<InstalledApp>> installed_apps;  // present on the first step and when it changed
  std::optional<GuiAction> action;                          // absent on the final observation
  std::string note;  // "no-op: screen unchanged", "error: ...", "reflection"
};

struct GuiTrace {
  std::string task_id, goal, app;
  std::vector<TraceStep> steps;
  std::string verdict, verdict_source;  // optional reference verdict ("success"/"failure") and who gave it
};

// One JSON object; each step carries its action in AndroidWorld JSON and in
// the AITW format ("aitw_action"). Reading checks every field and action.
nlohmann::json trace_to_json(const GuiTrace& trace);
GuiTrace trace_from_json(const nlohmann::json& j);  // throws Error naming the step and field
void save_trace(const GuiTrace& trace, const std::string& path);
GuiTrace load_trace(const std::string& path);

// --- screen similarity --------------------------------------------------------

// Embeds a screen's compact text for the `fuzzy` essential state.
class ScreenEmbedder {
 public:
  virtual ~ScreenEmbedder() = default;
  virtual std::vector<float> embed(const std::string& text) const = 0;
  virtual std::string name() const = 0;
};
// Hashed bag of word unigrams and bigrams (2^12 buckets, L2-normalized): no
// model needed, deterministic, robust to reordering and small edits.
std::unique_ptr<ScreenEmbedder> hashed_ngram_embedder();
// Mean of the model's input token embeddings over the text's tokens.
std::unique_ptr<ScreenEmbedder> token_embedding_embedder(const Model& model, const Tokenizer& tokenizer);
float cosine_similarity(const std::vector<float>& a, const std::vector<float>& b);
std::string screen_text(const ScreenView& screen);  // what gets embedded

// --- tasks and evaluation -------------------------------------------------------

struct EssentialState {
  nlohmann::json spec;  // {"kind": "exact" | "fuzzy" | "textbox" | "activity" | "click" | "type" | "installed" | "uninstalled", ...}
  std::string describe() const;  // "click<resource-id=save>"
};

struct GuiTask {
  std::string id, app, goal;
  std::vector<EssentialState> states;
  nlohmann::json oracle = nlohmann::json::array();  // scripted correct actions (targets by resource-id/text)
  std::string dir;                                  // where the task file is (fuzzy reference screens)
};

// Every *.json under dir (each an array of tasks). Throws Error naming the
// file and task at fault; unknown essential-state kinds are errors.
std::vector<GuiTask> load_gui_tasks(const std::string& dir);

struct TraceVerdict {
  bool success = false;
  std::vector<int> matched_step;  // per essential state: the step that matched it, -1 if none
  int matched() const;
};

// Matches the states in order: state k is looked for at or after the step
// that matched state k-1 (several states may match one step).
TraceVerdict evaluate_trace(const GuiTask& task, const GuiTrace& trace, const ScreenEmbedder& embedder);

}  // namespace onellm

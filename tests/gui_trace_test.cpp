// Essential-state evaluation of GUI traces, the trace format, and the agent
// loop's mechanics with the scripted oracle, a broken policy and a real
// (random-weight) model.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "agent/gui_agent.h"
#include "base/error.h"
#include "engine/engine.h"
#include "engine/json_schema.h"
#include "model/model.h"
#include "support/test_paths.h"

namespace onellm {
namespace {

using nlohmann::json;

const std::string kApps = std::string(ONELLM_SOURCE_DIR) + "/data/gui-apps";
const std::string kTasks = std::string(ONELLM_SOURCE_DIR) + "/data/gui-tasks";

const std::vector<GuiTask>& tasks() {
  static const std::vector<GuiTask> t = load_gui_tasks(kTasks);
  return t;
}

const GuiTask& task(const std::string& id) {
  for (const GuiTask& t : tasks())
    if (t.id == id) return t;
  throw Error("no task " + id);
}

GuiTrace play(const GuiTask& t, const json& script) {
  SimulatedDevice d(kApps);
  d.open_app(t.app);
  GuiAgentOptions o;
  o.max_steps = 40;
  o.reflect = false;
  GuiTrace trace = run_gui_agent(d, t.goal, oracle_gui_policy(script), nullptr, o);
  trace.task_id = t.id;
  return trace;
}

TEST(GuiTrace, EveryTaskHasStatesAndItsOracleTracePasses) {
  ASSERT_GE(tasks().size(), 40u);
  auto embedder = hashed_ngram_embedder();
  std::set<std::string> apps, kinds;
  for (const GuiTask& t : tasks()) {
    apps.insert(t.app);
    for (const EssentialState& s : t.states) kinds.insert(s.spec["kind"]);
    GuiTrace trace = play(t, t.oracle);
    TraceVerdict v = evaluate_trace(t, trace, *embedder);
    EXPECT_TRUE(v.success) << t.id << ": " << v.matched() << "/" << t.states.size();
    // Matched in order, at non-decreasing steps.
    for (size_t k = 1; k < v.matched_step.size(); ++k) EXPECT_GE(v.matched_step[k], v.matched_step[k - 1]);
  }
  EXPECT_EQ(apps.size(), 6u);
  EXPECT_EQ(kinds.size(), 8u);  // every kind of essential state is used
}

TEST(GuiTrace, SkippingAStateFails) {
  const GuiTask& t = task("clock_new_alarm_dentist");
  json script = t.oracle;
  script.erase(3);  // never types the label
  TraceVerdict v = evaluate_trace(t, play(t, script), *hashed_ngram_embedder());
  EXPECT_FALSE(v.success);
  EXPECT_EQ(v.matched_step[1], -1);  // type<Dentist>
  EXPECT_GE(v.matched_step[0], 0);
}

TEST(GuiTrace, OutOfOrderFails) {
  const GuiTask& t = task("messages_two_to_grace");
  // Both messages sent, but in the other order.
  json script = t.oracle;
  std::swap(script[1]["text"], script[3]["text"]);
  GuiTrace trace = play(t, script);
  TraceVerdict v = evaluate_trace(t, trace, *hashed_ngram_embedder());
  EXPECT_FALSE(v.success);
  EXPECT_EQ(v.matched(), 3);
  // Dropping steps from a correct trace out of order also fails: swap two steps.
  GuiTrace good = play(t, t.oracle);
  ASSERT_TRUE(evaluate_trace(t, good, *hashed_ngram_embedder()).success);
  std::swap(good.steps[1], good.steps[3]);
  EXPECT_FALSE(evaluate_trace(t, good, *hashed_ngram_embedder()).success);
}

TEST(GuiTrace, TheAgentsClaimIsIgnored) {
  const GuiTask& t = task("settings_wifi_off");
  GuiTrace claim = play(t, json::array({json{{"action_type", "status"}, {"goal_status", "complete"}}}));
  EXPECT_FALSE(evaluate_trace(t, claim, *hashed_ngram_embedder()).success);
  // Done but never claimed: still a success (the step limit ends the episode).
  SimulatedDevice d(kApps);
  d.open_app("Settings");
  json script = t.oracle;
  script.push_back({{"action_type", "wait"}});
  GuiAgentOptions o;
  o.max_steps = static_cast<int>(script.size());
  GuiTrace unclaimed = run_gui_agent(d, t.goal, oracle_gui_policy(script), nullptr, o);
  EXPECT_EQ(unclaimed.steps.back().note, "step limit reached");
  EXPECT_TRUE(evaluate_trace(t, unclaimed, *hashed_ngram_embedder()).success);
}

TEST(GuiTrace, TypeNeedsTheFullText) {
  const GuiTask& t = task("notes_new_plumber");
  json script = t.oracle;
  script[1]["text"] = "C";  // only the first character
  EXPECT_FALSE(evaluate_trace(t, play(t, script), *hashed_ngram_embedder()).success);
}

TEST(GuiTrace, UninstallIsTrackedAcrossSteps) {
  const GuiTask& t = task("settings_uninstall_shop");
  GuiTrace trace = play(t, t.oracle);
  int with_apps = 0;
  for (const TraceStep& s : trace.steps) with_apps += s.installed_apps.has_value();
  EXPECT_EQ(with_apps, 2);  // the first step and the one after the uninstall
  json script = t.oracle;
  script.erase(3);  // cancel instead of confirming
  script.push_back({{"action_type", "click"}, {"target", {{"id", "button2"}}}});
  EXPECT_FALSE(evaluate_trace(t, play(t, script), *hashed_ngram_embedder()).success);
}

TEST(GuiTrace, SaveAndLoadKeepEverythingAndExportAitw) {
  const GuiTask& t = task("contacts_add_zoe");
  GuiTrace trace = play(t, t.oracle);
  trace.verdict = "success";
  trace.verdict_source = "test";
  const std::string path = testing::TempDir() + "/gui_trace_roundtrip.json";
  save_trace(trace, path);
  GuiTrace back = load_trace(path);
  ASSERT_EQ(back.steps.size(), trace.steps.size());
  for (size_t i = 0; i < trace.steps.size(); ++i) {
    EXPECT_EQ(back.steps[i].view_hierarchy, trace.steps[i].view_hierarchy);
    EXPECT_EQ(back.steps[i].action, trace.steps[i].action);
    EXPECT_EQ(back.steps[i].activity, trace.steps[i].activity);
  }
  EXPECT_EQ(back.verdict, "success");
  EXPECT_TRUE(evaluate_trace(t, back, *hashed_ngram_embedder()).success);
  json j = trace_to_json(trace);
  EXPECT_EQ(j["steps"][1]["aitw_action"]["action_type"], "TYPE");
  EXPECT_EQ(j["steps"][1]["aitw_action"]["typed_text"], "Zoe Park");
  // A trace whose action does not fit its own screen is rejected with the step named.
  j["steps"][0]["action"] = {{"action_type", "click"}, {"index", 999}};
  try {
    trace_from_json(j);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("trace step 0"), std::string::npos) << e.what();
  }
}

TEST(GuiTrace, FuzzyStateUsesScreenSimilarity) {
  auto e = hashed_ngram_embedder();
  SimulatedDevice d(kApps);
  d.open_app("Settings");
  const std::string a = screen_text(parse_screen(d.dump_screen()));
  d.open_app("Shop");
  const std::string b = screen_text(parse_screen(d.dump_screen()));
  EXPECT_NEAR(cosine_similarity(e->embed(a), e->embed(a)), 1.0f, 1e-5);
  EXPECT_LT(cosine_similarity(e->embed(a), e->embed(b)), 0.5f);
  // The dark-theme task's last state is fuzzy: without the final Back it is not reached.
  const GuiTask& t = task("settings_dark_theme");
  json script = t.oracle;
  script.erase(2);
  TraceVerdict v = evaluate_trace(t, play(t, script), *e);
  EXPECT_FALSE(v.success);
  EXPECT_EQ(v.matched(), 2);
}

TEST(GuiTrace, ModelTokenEmbeddingsSeparateScreens) {
  ONELLM_REQUIRE_SHARED();
  auto model = Model::load(test::shared_dir() + "/models/stories260K.gguf");
  auto tok = Tokenizer::from_gguf(model->gguf());
  auto e = token_embedding_embedder(*model, *tok);
  SimulatedDevice d(kApps);
  d.open_app("Notes");
  const std::string notes = screen_text(parse_screen(d.dump_screen()));
  d.open_app("Shop");
  const std::string shop = screen_text(parse_screen(d.dump_screen()));
  const std::vector<float> a = e->embed(notes);
  ASSERT_EQ(a.size(), static_cast<size_t>(model->config().n_embd));
  EXPECT_NEAR(cosine_similarity(a, e->embed(notes)), 1.0f, 1e-5);
  EXPECT_LT(cosine_similarity(a, e->embed(shop)), cosine_similarity(a, e->embed(notes + " 7 notes")));
}

TEST(GuiAgentLoop, InvalidOutputAndNoOpsAreRecordedNotFatal) {
  SimulatedDevice d(kApps);
  d.open_app("Clock");
  int calls = 0, reflections = 0;
  GuiPolicy policy = [&](const GuiPolicyInput& in) -> std::string {
    ++calls;
    if (calls == 1) return "tap the button please";
    // Element 0 is the toolbar title: tapping it does nothing.
    if (calls == 2) return R"({"action_type":"click","index":0})";
    return R"({"action_type":"status","goal_status":"complete"})";
  };
  GuiReflector reflector = [&](const GuiPolicyInput& in) {
    ++reflections;
    EXPECT_NE(in.prompt.find("That action failed"), std::string::npos);
    return std::string("try another element");
  };
  GuiTrace t = run_gui_agent(d, "do nothing useful", policy, reflector, {});
  ASSERT_EQ(t.steps.size(), 3u);
  EXPECT_NE(t.steps[0].note.find("invalid action"), std::string::npos) << t.steps[0].note;
  EXPECT_NE(t.steps[1].note.find("no-op: screen unchanged"), std::string::npos) << t.steps[1].note;
  EXPECT_NE(t.steps[1].note.find("reflection: "), std::string::npos);
  EXPECT_EQ(reflections, 2);
  EXPECT_EQ(t.steps[2].action->type, GuiActionType::kStatus);
}

TEST(GuiAgentLoop, PromptCarriesTaskScreenAndShortHistory) {
  SimulatedDevice d(kApps);
  d.open_app("Notes");
  std::vector<std::string> prompts;
  GuiPolicy policy = [&](const GuiPolicyInput& in) {
    prompts.push_back(in.prompt);
    return std::string(R"({"action_type":"wait"})");
  };
  GuiAgentOptions o;
  o.max_steps = 8;
  o.history = 3;
  run_gui_agent(d, "count the notes", policy, nullptr, o);
  ASSERT_EQ(prompts.size(), 8u);
  EXPECT_NE(prompts[0].find("Task: count the notes"), std::string::npos);
  EXPECT_NE(prompts[0].find("<button id="), std::string::npos);
  EXPECT_EQ(prompts[0].find("Previous actions"), std::string::npos);
  EXPECT_NE(prompts[7].find("3. wait"), std::string::npos);
  EXPECT_EQ(prompts[7].find("4. wait"), std::string::npos);
}

TEST(GuiAgentLoop, RandomModelGivesOnlyValidActionsWithinTheStepLimit) {
  const std::string path = testing::TempDir() + "/gui_tiny_model.gguf";
  TinyModelSpec spec;
  spec.n_embd = 64;
  spec.n_ff = 128;
  spec.n_ctx = 4096;
  write_tiny_model(spec, path);
  auto model = Model::load(path);
  auto tok = Tokenizer::from_gguf(model->gguf());
  ThreadPool pool(1);
  SamplingParams sampling;
  sampling.temperature = 0;
  for (GuiDecoding decoding : {GuiDecoding::kGrammar, GuiDecoding::kRanked}) {
    Sequence seq(*model, *tok, &pool);
    SimulatedDevice d(kApps);
    d.open_app("Settings");
    GuiAgentOptions o;
    o.max_steps = 3;
    GuiTrace t = run_gui_agent(d, "Turn off Wi-Fi", model_gui_policy(seq, sampling, decoding),
                               model_gui_reflector(seq, sampling), o);
    ASSERT_LE(t.steps.size(), 4u);
    ASSERT_GE(t.steps.size(), 1u);
    for (const TraceStep& s : t.steps) EXPECT_EQ(s.note.find("invalid action"), std::string::npos) << s.note;
    if (t.steps.size() == 4u) {
      EXPECT_FALSE(t.steps.back().action.has_value());  // the final observation
    }
    const std::string trace_path = testing::TempDir() + "/gui_tiny_trace.json";
    t.task_id = "settings_wifi_off";
    save_trace(t, trace_path);
    GuiTrace back = load_trace(trace_path);
    EXPECT_EQ(back.steps.size(), t.steps.size());
    (void)evaluate_trace(task("settings_wifi_off"), back, *hashed_ngram_embedder());
  }
}

TEST(GuiAction, SchemaCompilesToAGrammarThatAcceptsOnlyValidActions) {
  // The constraint the model decodes under: valid actions are sentences, invalid ones are not.
  auto grammar = Grammar::parse(json_schema_to_gbnf(nlohmann::ordered_json::parse(gui_action_schema(3, {"Clock"}).dump())));
  auto accepts = [&](const std::string& text) {
    GrammarMatcher m(grammar, nullptr);
    return m.would_accept_text(text) && (m.accept_text(text), m.can_end());
  };
  EXPECT_TRUE(accepts(R"({"action_type":"click","index":2})"));
  EXPECT_TRUE(accepts(R"({"action_type":"open_app","app_name":"Clock"})"));
  EXPECT_TRUE(accepts(R"({"action_type":"status","goal_status":"infeasible"})"));
  EXPECT_FALSE(accepts(R"({"action_type":"click","index":3})"));
  EXPECT_FALSE(accepts(R"({"action_type":"open_app","app_name":"Maps"})"));
  EXPECT_FALSE(accepts(R"({"action_type":"tap","index":1})"));
}

}  // namespace
}  // namespace onellm

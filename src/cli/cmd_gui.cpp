// GUI agent commands: gui-agent (run the loop on a simulated app or a device
// over adb), eval-gui (essential-state evaluation of traces), gui-oracle
// (golden traces from the tasks' scripted oracles) and gui-screens (prompt
// tokens per screen for the raw dump and both compact forms).
#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "agent/gui_agent.h"
#include "base/error.h"
#include "cli/commands.h"
#include "client/onellm_client.h"

namespace onellm::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string default_data_dir(const char* sub) {
  // $ONELLM_DATA_DIR, the working directory, or the checkout the binary was built in (build/onellm).
  std::vector<std::string> bases;
  if (const char* env = std::getenv("ONELLM_DATA_DIR")) bases.push_back(env);
  bases.push_back("data");
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) bases.push_back((exe.parent_path().parent_path() / "data").string());
  for (const std::string& base : bases)
    if (fs::exists(base + "/" + sub)) return base + "/" + sub;
  return std::string("data/") + sub;
}

void print_step(const TraceStep& s, size_t i) {
  std::printf("step %zu  %s\n", i, s.activity.c_str());
  if (s.installed_apps) std::printf("  installed apps: %zu\n", s.installed_apps->size());
  if (s.action) {
    ScreenView v = parse_screen(s.view_hierarchy);
    std::printf("  action: %s\n", describe_gui_action(*s.action, v).c_str());
  }
  if (!s.note.empty()) std::printf("  note: %s\n", s.note.c_str());
}

// The running service as the policy: the action schema goes as response_format.
std::string ask_service(onellm_client* client, const std::string& prompt, const json* schema, float temperature,
                        int max_tokens) {
  onellm_options o;
  onellm_options_init(&o);
  o.temperature = temperature;
  o.max_tokens = max_tokens;
  const std::string schema_text = schema ? schema->dump() : "";
  if (schema) o.json_schema = schema_text.c_str();
  char* reply = nullptr;
  if (onellm_chat(client, prompt.c_str(), &o, nullptr, nullptr, &reply) != 0)
    throw Error(std::string("service: ") + onellm_last_error(client));
  std::string text = reply ? reply : "";
  onellm_string_free(reply);
  return text;
}

GuiPolicy service_policy(onellm_client* client, float temperature) {
  return [=](const GuiPolicyInput& in) { return ask_service(client, in.prompt, &in.schema, temperature, 1536); };
}

GuiReflector service_reflector(onellm_client* client, float temperature) {
  return [=](const GuiPolicyInput& in) { return ask_service(client, in.prompt, nullptr, temperature, 40); };
}

const GuiTask& find_task(const std::vector<GuiTask>& tasks, const std::string& id) {
  for (const GuiTask& t : tasks)
    if (t.id == id) return t;
  throw Error("no task '" + id + "'");
}

}  // namespace

int gui_agent_command(int argc, char** argv) {
  Args a(argc, argv, 2,
         {"--app", "--apps", "-m", "--model", "--task", "--tasks", "--max-steps", "--trace", "-t", "--threads",
          "--temp", "-s", "--seed", "--serial", "--form", "--url", "--socket", "--token", "--decoding"},
         {"-h", "--help", "--adb", "--no-reflect", "--oracle"});
  if (a.flag({"-h", "--help"}) || (a.positional().empty() && !a.get({"--task"}))) {
    std::puts("onellm gui-agent [--app APP] [--apps DIR] (-m MODEL [--decoding grammar|ranked] | --url URL | --socket PATH\n"
              "                 | --oracle) [--task ID [--tasks DIR]] [--adb [--serial S]] [--max-steps N] [--trace FILE]\n"
              "                 [--form html|list] [--no-reflect] [\"task\"]\n"
              "  --url/--socket ask the running service (response_format json_schema) instead of loading a model;\n"
              "  --task takes the goal and app from a task of data/gui-tasks (the trace is then evaluable);\n"
              "  --oracle plays that task's scripted solution instead of asking a model");
    return a.flag({"-h", "--help"}) ? 0 : 2;
  }
  std::string goal;
  for (const std::string& p : a.positional()) goal += (goal.empty() ? "" : " ") + p;
  std::string app = a.get_or({"--app"}, "");
  std::optional<GuiTask> task;
  if (auto id = a.get({"--task"})) {
    task = find_task(load_gui_tasks(a.get_or({"--tasks"}, default_data_dir("gui-tasks"))), *id);
    if (goal.empty()) goal = task->goal;
    if (app.empty()) app = task->app;
  }
  std::unique_ptr<GuiEnvironment> env;
  if (a.flag({"--adb"})) {
    env = std::make_unique<AdbEnvironment>(a.get_or({"--serial"}, ""));
  } else {
    auto sim = std::make_unique<SimulatedDevice>(a.get_or({"--apps"}, default_data_dir("gui-apps")));
    if (!app.empty()) sim->open_app(app);
    env = std::move(sim);
  }
  GuiAgentOptions options;
  options.max_steps = static_cast<int>(a.get_int({"--max-steps"}, options.max_steps));
  options.reflect = !a.flag({"--no-reflect"});
  options.html_form = a.get_or({"--form"}, "html") != "list";
  GuiPolicy policy;
  GuiReflector reflector;
  LoadedModel m;
  std::unique_ptr<Sequence> seq;
  std::unique_ptr<onellm_client, void (*)(onellm_client*)> client(nullptr, onellm_client_free);
  if (a.flag({"--oracle"})) {
    if (!task) throw Error("--oracle needs --task ID");
    policy = oracle_gui_policy(task->oracle);
  } else if (a.get({"--url"}) || a.get({"--socket"})) {
    std::string address = a.get({"--url"}) ? *a.get({"--url"}) : "unix:" + *a.get({"--socket"});
    std::string token = a.get_or({"--token"}, "");
    client.reset(onellm_client_new(address.c_str(), token.empty() ? nullptr : token.c_str()));
    if (!client) throw Error("out of memory");
    const float temperature = static_cast<float>(a.get_double({"--temp"}, 0.0));
    policy = service_policy(client.get(), temperature);
    reflector = service_reflector(client.get(), temperature);
  } else {
    auto model_path = a.get({"-m", "--model"});
    if (!model_path) throw Error("give a model (-m MODEL), a service (--url/--socket) or --oracle with --task ID");
    m = load_model(*model_path, static_cast<int>(a.get_int({"-t", "--threads"}, 0)));
    seq = std::make_unique<Sequence>(*m.model, *m.tokenizer, m.pool.get());
    SamplingParams sampling = sampling_from_args(a);
    sampling.temperature = static_cast<float>(a.get_double({"--temp"}, 0.0));
    const std::string decoding = a.get_or({"--decoding"}, "grammar");
    if (decoding != "grammar" && decoding != "ranked") throw Error("--decoding must be grammar or ranked");
    policy = model_gui_policy(*seq, sampling, decoding == "ranked" ? GuiDecoding::kRanked : GuiDecoding::kGrammar);
    reflector = model_gui_reflector(*seq, sampling);
  }
  std::printf("task: %s\n", goal.c_str());
  GuiTrace trace = run_gui_agent(*env, goal, policy, reflector, options, print_step);
  if (task) trace.task_id = task->id;
  trace.app = app;
  const std::string path = a.get_or({"--trace"}, "gui_trace.json");
  save_trace(trace, path);
  std::printf("%zu steps; trace saved to %s\n", trace.steps.size(), path.c_str());
  return 0;
}

int gui_oracle_command(int argc, char** argv) {
  Args a(argc, argv, 2, {"--tasks", "--apps", "--out", "--max-steps", "--per-app"}, {"-h", "--help", "--variants"});
  if (a.flag({"-h", "--help"})) {
    std::puts("onellm gui-oracle [--tasks DIR] [--apps DIR] --out DIR [--variants] [--per-app N]\n"
              "  plays every task's oracle script on a fresh simulated device and saves the traces;\n"
              "  --variants also writes a trace that skips one action (reference verdict: failure);\n"
              "  --per-app N writes traces for the first N tasks of each app only (all are still checked)");
    return 0;
  }
  const std::string tasks_dir = a.get_or({"--tasks"}, default_data_dir("gui-tasks"));
  const std::string apps_dir = a.get_or({"--apps"}, default_data_dir("gui-apps"));
  const std::string out = a.get_or({"--out"}, tasks_dir + "/traces");
  fs::create_directories(out);
  GuiAgentOptions options;
  options.max_steps = static_cast<int>(a.get_int({"--max-steps"}, 40));
  options.reflect = false;
  auto embedder = hashed_ngram_embedder();
  int failures = 0, written = 0;
  const long per_app = a.get_int({"--per-app"}, 1 << 30);
  std::map<std::string, long> saved_per_app;
  for (const GuiTask& task : load_gui_tasks(tasks_dir)) {
    const bool keep = saved_per_app[task.app]++ < per_app;
    auto play = [&](const json& script, const char* suffix, const char* verdict) {
      SimulatedDevice device(apps_dir);
      device.open_app(task.app);
      GuiTrace trace = run_gui_agent(device, task.goal, oracle_gui_policy(script), nullptr, options);
      trace.task_id = task.id;
      trace.app = task.app;
      trace.verdict = verdict;
      trace.verdict_source = "constructed: oracle script" + std::string(*suffix ? " with one action removed" : "");
      const TraceVerdict v = evaluate_trace(task, trace, *embedder);
      if (keep) {
        save_trace(trace, out + "/" + task.id + suffix + ".json");
        ++written;
      }
      return v;
    };
    const TraceVerdict v = play(task.oracle, "", "success");
    if (!v.success) {
      ++failures;
      std::printf("%-28s oracle trace FAILS its essential states (%d/%zu matched)\n", task.id.c_str(), v.matched(),
                  task.states.size());
    }
    if (keep && a.flag({"--variants"}) && task.oracle.size() > 1) {
      // Drop the last action that changes something: the task can no longer be done.
      json script = task.oracle;
      script.erase(script.size() - 1);
      try {
        play(script, ".skip", "failure");
      } catch (const Error& e) {
        std::printf("%-28s variant not playable: %s\n", task.id.c_str(), e.what());
      }
    }
  }
  std::printf("%d traces written to %s; %d oracle traces fail their tasks\n", written, out.c_str(), failures);
  return failures == 0 ? 0 : 1;
}

int eval_gui_command(int argc, char** argv) {
  Args a(argc, argv, 2, {"--traces", "-m", "--model"}, {"-h", "--help", "--json", "--verbose"});
  if (a.flag({"-h", "--help"}) || a.positional().size() != 1) {
    std::puts("onellm eval-gui TASKS_DIR [--traces DIR] [-m MODEL] [--json] [--verbose]\n"
              "  success rate by essential states; -m embeds screens with the model's token embeddings\n"
              "  for fuzzy states (default: hashed word n-grams)");
    return a.flag({"-h", "--help"}) ? 0 : 2;
  }
  const std::string tasks_dir = a.positional()[0];
  const std::vector<GuiTask> tasks = load_gui_tasks(tasks_dir);
  const std::string traces_dir = a.get_or({"--traces"}, tasks_dir + "/traces");
  LoadedModel m;
  std::unique_ptr<ScreenEmbedder> embedder;
  if (auto model_path = a.get({"-m", "--model"})) {
    m = load_model(*model_path, 1);
    embedder = token_embedding_embedder(*m.model, *m.tokenizer);
  } else {
    embedder = hashed_ngram_embedder();
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(traces_dir))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  int n = 0, ok = 0;
  std::map<std::string, std::pair<int, int>> agreement;  // verdict source -> (agree, total)
  json report = json::array();
  for (const fs::path& f : files) {
    const GuiTrace trace = load_trace(f.string());
    const GuiTask& task = find_task(tasks, trace.task_id);
    const TraceVerdict v = evaluate_trace(task, trace, *embedder);
    ++n;
    ok += v.success;
    json unmatched = json::array(), matched = json::array();
    for (size_t k = 0; k < task.states.size(); ++k)
      (v.matched_step[k] >= 0 ? matched : unmatched).push_back(task.states[k].describe());
    json r = {{"trace", f.filename().string()}, {"task", task.id}, {"success", v.success},
              {"matched", v.matched()}, {"states", task.states.size()}, {"unmatched", unmatched}};
    if (!trace.verdict.empty()) {
      const bool agrees = (trace.verdict == "success") == v.success;
      auto& [agree, total] = agreement[trace.verdict_source];
      agree += agrees;
      ++total;
      r["verdict"] = trace.verdict;
      r["agrees"] = agrees;
    }
    report.push_back(r);
    if (!a.flag({"--json"})) {
      std::printf("%-40s %-7s %d/%zu", f.filename().string().c_str(), v.success ? "success" : "fail", v.matched(),
                  task.states.size());
      if (!unmatched.empty()) std::printf("  unmatched: %s", unmatched[0].get<std::string>().c_str());
      if (unmatched.size() > 1) std::printf(" (+%zu more)", unmatched.size() - 1);
      if (a.flag({"--verbose"}) && !matched.empty()) std::printf("  matched: %s", matched.dump().c_str());
      std::printf("\n");
    }
  }
  if (n == 0) throw Error(traces_dir + ": no traces (*.json)");
  json summary = {{"traces", n}, {"success", ok}, {"success_rate", double(ok) / n}, {"embedding", embedder->name()}};
  for (const auto& [source, counts] : agreement)
    summary["agreement"][source] = {{"agree", counts.first}, {"total", counts.second}};
  if (a.flag({"--json"})) {
    std::printf("%s\n", json{{"summary", summary}, {"traces", report}}.dump(1).c_str());
  } else {
    std::printf("\n%d traces, %d successful: success rate %.1f%% (fuzzy states: %s)\n", n, ok, 100.0 * ok / n,
                embedder->name().c_str());
    for (const auto& [source, counts] : agreement)
      std::printf("agreement with reference verdicts (%s): %d/%d\n", source.c_str(), counts.first, counts.second);
  }
  return 0;
}

int gui_screens_command(int argc, char** argv) {
  Args a(argc, argv, 2, {"-m", "--model"}, {"-h", "--help", "--json", "--show"});
  if (a.flag({"-h", "--help"}) || a.positional().empty()) {
    std::puts("onellm gui-screens -m MODEL [--json] [--show] DIR|FILE.xml...\n"
              "  prompt tokens per screen: raw uiautomator XML vs the HTML-like and element-list forms");
    return a.flag({"-h", "--help"}) ? 0 : 2;
  }
  auto model_path = a.get({"-m", "--model"});
  if (!model_path) throw Error("no model given (-m MODEL): its tokenizer counts the tokens");
  auto file = GgufFile::open(*model_path);
  auto tok = Tokenizer::from_gguf(*file);
  std::vector<fs::path> files;
  for (const std::string& p : a.positional()) {
    if (fs::is_directory(p)) {
      for (const auto& e : fs::directory_iterator(p))
        if (e.path().extension() == ".xml") files.push_back(e.path());
    } else {
      files.push_back(p);
    }
  }
  std::sort(files.begin(), files.end());
  json rows = json::array();
  size_t total_raw = 0, total_html = 0, total_list = 0;
  if (!a.flag({"--json"}))
    std::printf("| screen | nodes | elements | raw XML tokens | HTML tokens | list tokens | HTML / raw |\n"
                "|---|---:|---:|---:|---:|---:|---:|\n");
  for (const fs::path& f : files) {
    const std::string xml = read_text_file(f.string());
    const ScreenView v = parse_screen(xml);
    const size_t raw = tok->encode(xml, false, false).size();
    const size_t html = tok->encode(v.html(), false, false).size();
    const size_t list = tok->encode(v.element_list(), false, false).size();
    total_raw += raw;
    total_html += html;
    total_list += list;
    rows.push_back({{"screen", f.stem().string()}, {"nodes", v.tree.nodes.size()}, {"elements", v.elements.size()},
                    {"raw_tokens", raw}, {"html_tokens", html}, {"list_tokens", list}});
    if (a.flag({"--show"})) std::printf("%s\n%s\n", f.stem().string().c_str(), v.html().c_str());
    if (!a.flag({"--json"}))
      std::printf("| %s | %zu | %zu | %zu | %zu | %zu | %.1f%% |\n", f.stem().string().c_str(), v.tree.nodes.size(),
                  v.elements.size(), raw, html, list, 100.0 * html / std::max<size_t>(1, raw));
  }
  if (a.flag({"--json"})) {
    std::printf("%s\n", rows.dump(1).c_str());
  } else {
    std::printf("| **total** | | | %zu | %zu | %zu | %.1f%% |\n", total_raw, total_html, total_list,
                100.0 * total_html / std::max<size_t>(1, total_raw));
  }
  return 0;
}

}  // namespace onellm::cli

// onellm agent (the agent loop on MCP tools) and onellm eval-agent (tasks on
// the simulated device). The model is the running service (--url/--socket),
// or, with -m MODEL, an `onellm serve` started for the run on a private socket.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

#include "agent/agent.h"
#include "base/error.h"
#include "cli/commands.h"

extern char** environ;

namespace onellm::cli {
namespace {

using agent::Json;
namespace fs = std::filesystem;

// `onellm serve -m MODEL` as a child on a socket in a temporary directory;
// stopped (SIGTERM, then SIGKILL) and cleaned up by the destructor.
class ServeChild {
 public:
  ServeChild(const std::string& model, int threads) {
    char dir_template[] = "/tmp/onellm-agent-XXXXXX";
    if (::mkdtemp(dir_template) == nullptr) throw Error("cannot create a temporary directory");
    dir_ = dir_template;
    socket_ = dir_ + "/onellm.sock";
    const std::string ready = dir_ + "/ready", log = dir_ + "/serve.log", config = dir_ + "/service.toml";
    // Tool definitions make long prompts: the whole training context (the
    // service clamps to it), and the model stays loaded for the whole run.
    std::ofstream(config) << "[service]\nkeep_alive_s = 0\ndefault_context = 1000000\n\n[[app]]\nid = \"agent\"\n"
                          << "uids = [" << ::getuid() << "]\nqos = [\"agent\", \"chat\"]\n";
    std::vector<std::string> args = {"/proc/self/exe", "serve", "-m", model, "--socket", socket_, "--state-dir",
                                     dir_ + "/state", "--ready-file", ready, "-t", std::to_string(threads),
                                     "--config", config};
    std::vector<char*> argv;
    for (std::string& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    int rc = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      pid_ = -1;
      throw Error(std::string("cannot start onellm serve: ") + std::strerror(rc));
    }
    for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120); !fs::exists(ready);) {
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_ || std::chrono::steady_clock::now() > end) {
        std::ifstream in(log);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        pid_ = -1;
        throw Error("onellm serve -m " + model + " did not start: " + text.substr(text.size() > 2000 ? text.size() - 2000 : 0));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~ServeChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status;
      for (int i = 0; i < 500 && ::waitpid(pid_, &status, WNOHANG) != pid_; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (::kill(pid_, 0) == 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
      }
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string address() const { return "unix:" + socket_; }

 private:
  std::string dir_, socket_;
  pid_t pid_ = -1;
};

const std::set<std::string> kModelOptions = {"--url", "--socket", "-m", "--model", "--token", "--max-steps",
                                             "--tool-choice", "--temp", "--max-tokens", "-n", "--seed", "--system",
                                             "--timeout", "-t", "--threads"};

struct ModelConnection {
  std::unique_ptr<ServeChild> child;
  std::unique_ptr<agent::ChatBackend> backend;
};

ModelConnection connect_model(const Args& a) {
  ModelConnection c;
  std::string address;
  if (auto url = a.get({"--url"})) address = *url;
  else if (auto s = a.get({"--socket"})) address = "unix:" + *s;
  else if (auto m = a.get({"-m", "--model"})) {
    c.child = std::make_unique<ServeChild>(*m, static_cast<int>(a.get_int({"-t", "--threads"}, 2)));
    address = c.child->address();
  } else {
    const char* dir = std::getenv("XDG_RUNTIME_DIR");
    address = "unix:" + (dir ? std::string(dir) + "/onellm.sock" : "/tmp/onellm-" + std::to_string(::getuid()) + ".sock");
  }
  c.backend = agent::make_http_chat_backend(agent::parse_endpoint(address),
                                            static_cast<int>(a.get_int({"--timeout"}, 300000)), a.get_or({"--token"}, ""));
  return c;
}

// No model service at the address: one error that says how to get one.
[[noreturn]] void throw_with_hint(const agent::UnreachableError& e) {
  throw Error(std::string(e.what()) + " (start `onellm serve`, or pass -m MODEL.gguf, --url or --socket)");
}

agent::AgentOptions agent_options(const Args& a) {
  agent::AgentOptions o;
  o.max_steps = static_cast<int>(a.get_int({"--max-steps"}, 8));
  if (o.max_steps < 1) throw Error("--max-steps must be at least 1");
  o.tool_choice = a.get_or({"--tool-choice"}, "auto");
  o.system_prompt = a.get_or({"--system"}, agent::default_system_prompt());
  o.sampling["temperature"] = a.get_double({"--temp"}, 0.0);
  o.sampling["max_tokens"] = a.get_int({"-n", "--max-tokens"}, 256);
  if (a.get({"--seed"})) o.sampling["seed"] = a.get_int({"--seed"}, 0);
  return o;
}

std::string short_text(const Json& v, size_t max = 300) {
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  return s.size() > max ? s.substr(0, max) + "..." : s;
}

// The readable transcript, one line per event.
void print_entry(FILE* out, const Json& e, const std::string& indent) {
  const std::string type = e["type"];
  if (type == "request") std::fprintf(out, "%suser: %s\n", indent.c_str(), short_text(e["content"]).c_str());
  if (type == "model") {
    if (e["content"].is_string() && !e["content"].get<std::string>().empty())
      std::fprintf(out, "%smodel: %s\n", indent.c_str(), short_text(e["content"]).c_str());
    for (const Json& c : e["tool_calls"])
      std::fprintf(out, "%smodel calls %s\n", indent.c_str(),
                   short_text(c.value("function", Json::object()).value("name", std::string("?")) + " " +
                              short_text(c.value("function", Json::object()).value("arguments", Json("")))).c_str());
  }
  if (type == "tool_result")
    std::fprintf(out, "%s  %s %s: %s\n", indent.c_str(), e["is_error"] == true ? "x" : "->",
                 e["name"].get<std::string>().c_str(), short_text(e["content"]).c_str());
  if (type == "stop") std::fprintf(out, "%sstopped: %s\n", indent.c_str(), short_text(e["reason"]).c_str());
  if (type == "tools_changed") std::fprintf(out, "%stools changed: %s\n", indent.c_str(), short_text(e["tools"]).c_str());
}

}  // namespace

int agent_command(int argc, char** argv) {
  std::set<std::string> with_value = kModelOptions;
  for (const char* o : {"--mcp", "--mcp-http", "--tools", "--transcript", "--mcp-timeout"}) with_value.insert(o);
  Args a(argc, argv, 2, with_value, {"--yes", "--json", "-h", "--help"});
  if (a.flag({"-h", "--help"}) || a.positional().empty()) {
    std::puts("onellm agent --mcp \"COMMAND ARGS\" [--mcp-http URL] [--tools FILE]\n"
              "             [--url http://HOST:PORT | --socket PATH | -m MODEL.gguf] [--token T]\n"
              "             [--max-steps 8] [--tool-choice auto|required|none|NAME] [--temp 0] [--max-tokens 256]\n"
              "             [--seed S] [--system TEXT] [--yes] [--transcript FILE] [--json] \"request\"\n"
              "  --mcp and --mcp-http may be repeated; destructive tools are confirmed on stdin unless --yes.");
    return a.flag({"-h", "--help"}) ? 0 : 2;
  }
  std::string request;
  for (const std::string& p : a.positional()) request += (request.empty() ? "" : " ") + p;

  agent::McpOptions mo;
  mo.timeout_ms = static_cast<int>(a.get_int({"--mcp-timeout"}, 30000));
  std::vector<std::unique_ptr<agent::McpClient>> servers;
  for (const std::string& cmd : a.get_all("--mcp"))
    servers.push_back(std::make_unique<agent::McpClient>(agent::make_stdio_transport(cmd), mo));
  for (const std::string& url : a.get_all("--mcp-http"))
    servers.push_back(std::make_unique<agent::McpClient>(agent::make_http_transport(url), mo));
  if (servers.empty()) throw Error("no tools: give an MCP server with --mcp \"COMMAND ARGS\" or --mcp-http URL");
  Json tools_file;
  if (auto file = a.get({"--tools"})) {
    std::ifstream in(*file);
    if (!in) throw Error("cannot open tools file " + *file);
    tools_file = Json::parse(in, nullptr, false);
    if (tools_file.is_discarded()) throw Error("tools file " + *file + " is not JSON");
  }
  // Every server's tools (again when one says its list changed), restricted by --tools.
  auto list_tools = [&] {
    std::vector<agent::AgentTool> all;
    for (auto& s : servers) {
      std::vector<std::string> notes;
      for (agent::AgentTool& t : agent::mcp_agent_tools(*s, &notes)) all.push_back(std::move(t));
      for (const std::string& note : notes) std::fprintf(stderr, "onellm agent: MCP %s\n", note.c_str());
    }
    return tools_file.is_null() ? all : agent::restrict_tools(std::move(all), tools_file);
  };
  std::vector<agent::AgentTool> tools = list_tools();

  ModelConnection model = connect_model(a);
  agent::AgentOptions o = agent_options(a);
  const bool json = a.flag({"--json"});
  o.on_entry = [&](const Json& e) { print_entry(stderr, e, ""); };
  o.refresh_tools = [&](std::vector<agent::AgentTool>& current) {
    bool changed = false;
    for (auto& s : servers) changed = changed || s->tools_changed();
    if (changed) current = list_tools();
    return changed;
  };
  if (!a.flag({"--yes"})) {
    o.confirm = [](const std::string& name, const Json& args) {
      std::fprintf(stderr, "run %s %s? (destructive) [y/N] ", name.c_str(), args.dump().c_str());
      std::fflush(stderr);
      std::string answer;
      if (!std::getline(std::cin, answer)) answer.clear();
      return answer == "y" || answer == "Y" || answer == "yes";
    };
  }
  agent::AgentRun run;
  try {
    run = agent::run_agent(*model.backend, tools, request, o);
  } catch (const agent::UnreachableError& e) {
    throw_with_hint(e);
  }
  Json record = {{"request", request},          {"steps", run.steps},       {"stop_reason", run.stop_reason},
                 {"final_answer", run.final_answer}, {"calls", run.calls}, {"transcript", run.transcript},
                 {"messages", run.messages}};
  if (auto file = a.get({"--transcript"})) {
    std::ofstream out(*file);
    out << record.dump(1) << "\n";
    if (!out) throw Error("cannot write transcript " + *file);
  }
  if (json) std::printf("%s\n", record.dump().c_str());
  else if (!run.final_answer.empty()) std::printf("%s\n", run.final_answer.c_str());
  return run.stop_reason.rfind("error", 0) == 0 ? 1 : 0;
}

int eval_agent_command(int argc, char** argv) {
  std::set<std::string> with_value = kModelOptions;
  with_value.insert("--limit");
  Args a(argc, argv, 2, with_value, {"--json", "--quiet", "-h", "--help"});
  if (a.flag({"-h", "--help"}) || a.positional().size() != 1) {
    std::puts("onellm eval-agent TASKS.jsonl [--url URL | --socket PATH | -m MODEL.gguf] [--limit N] [--max-steps 8]\n"
              "                  [--tool-choice auto|required] [--temp 0] [--max-tokens 256] [--json] [--quiet]\n"
              "  runs every task on a fresh simulated device; prints transcripts, success rate and\n"
              "  exact-call accuracy (--json: one JSON object).");
    return a.flag({"-h", "--help"}) ? 0 : 2;
  }
  std::vector<agent::AgentTask> tasks = agent::load_agent_tasks(a.positional()[0]);
  if (long long limit = a.get_int({"--limit"}, 0); limit > 0 && static_cast<size_t>(limit) < tasks.size())
    tasks.resize(static_cast<size_t>(limit));
  ModelConnection model = connect_model(a);
  agent::AgentOptions o = agent_options(a);
  const bool json = a.flag({"--json"}), quiet = a.flag({"--quiet"});
  FILE* out = json ? stderr : stdout;
  std::vector<agent::TaskOutcome> outcomes;
  Json per_task = Json::array();
  for (const agent::AgentTask& t : tasks) {
    agent::TaskOutcome r;
    try {
      r = agent::evaluate_task(*model.backend, t, o);
    } catch (const agent::UnreachableError& e) {  // would fail every task alike: say so once
      throw_with_hint(e);
    }
    std::fprintf(out, "%s %s: %s%s%s\n", r.success ? "PASS" : "FAIL", t.id.c_str(), t.request.c_str(),
                 r.success ? "" : "\n    ", r.why.c_str());
    if (!quiet)
      for (const Json& e : r.run.transcript) print_entry(out, e, "    ");
    per_task.push_back({{"id", r.id}, {"request", t.request}, {"success", r.success}, {"why", r.why},
                        {"exact_calls", r.has_expected ? Json(r.exact_calls) : Json()}, {"calls", r.run.calls},
                        {"steps", r.run.steps}, {"stop_reason", r.run.stop_reason},
                        {"final_answer", r.run.final_answer}, {"transcript", r.run.transcript}});
    outcomes.push_back(std::move(r));
  }
  Json summary = agent::evaluation_summary(outcomes);
  std::fprintf(out, "\nsuccess rate: %zu/%zu (%.1f%%)\nexact-call accuracy: %zu/%zu (%.1f%%)\nvalid tool calls: %zu/%zu\n",
               summary["succeeded"].get<size_t>(), summary["tasks"].get<size_t>(),
               100 * summary["success_rate"].get<double>(), summary["exact_calls"].get<size_t>(),
               summary["tasks_with_expected_calls"].get<size_t>(), 100 * summary["exact_call_accuracy"].get<double>(),
               summary["valid_tool_calls"].get<size_t>(), summary["tool_calls"].get<size_t>());
  if (json) std::printf("%s\n", Json{{"summary", summary}, {"tasks", per_task}}.dump().c_str());
  return 0;
}

}  // namespace onellm::cli

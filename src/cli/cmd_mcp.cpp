// onellm device-mcp (the simulated device as an MCP server, stdio or HTTP),
// device-state (inspect or check a saved device) and mcp-call (one MCP round
// trip with onellm's client, for scripts and tests).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <set>

#include "agent/agent.h"
#include "base/error.h"
#include "cli/commands.h"
#include "service/http_server.h"

namespace onellm::cli {
namespace {

using agent::Json;

std::string new_session_id() {
  std::random_device rd;
  char buf[33];
  std::snprintf(buf, sizeof buf, "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  return buf;
}

// Streamable HTTP: POST /mcp carries one JSON-RPC message; the reply is JSON
// (or SSE with --sse); a session id is handed out by initialize.
int serve_mcp_http(agent::DeviceMcpServer& server, const std::string& listen, bool sse, const std::string& ready_file) {
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::mutex mu;  // one device, many connection threads
  std::set<std::string> sessions;
  HttpServer http([&](const HttpRequest& rq, HttpResponse& rs) {
    auto fail = [&](int status, const std::string& message) {
      rs.send(status, "application/json", agent::rpc_error(nullptr, -32600, message).dump());
    };
    if (rq.path != "/mcp") return fail(404, "the MCP endpoint is /mcp");
    const std::string* sid = rq.header("mcp-session-id");
    std::lock_guard<std::mutex> lock(mu);
    if (rq.method == "DELETE") {
      if (sid == nullptr || sessions.erase(*sid) == 0) return fail(404, "unknown session");
      rs.send(200, "application/json", "{}");
      return;
    }
    if (rq.method != "POST") {
      rs.set_header("Allow", "POST, DELETE");
      return fail(405, "this server does not open server-to-client streams; POST messages to /mcp");
    }
    agent::RpcMessage m;
    try {
      m = agent::parse_rpc_message(rq.body);
    } catch (const Error& e) {
      rs.send(400, "application/json", agent::rpc_error(nullptr, -32700, e.what()).dump());
      return;
    }
    const bool is_init = m.kind == agent::RpcMessage::Kind::kRequest && m.method == "initialize";
    if (!is_init) {
      if (sid == nullptr) return fail(400, "missing Mcp-Session-Id header (initialize first)");
      if (sessions.count(*sid) == 0) return fail(404, "unknown session " + *sid);
    }
    Json reply = server.handle(m);
    if (is_init && !reply.contains("error")) {
      std::string id = new_session_id();
      sessions.insert(id);
      rs.set_header("Mcp-Session-Id", id);
    }
    if (reply.is_null()) {
      rs.send(202, "application/json", "");
      return;
    }
    if (!sse) {
      rs.send(200, "application/json", reply.dump());
      return;
    }
    if (rs.start_stream(200, "text/event-stream")) {
      rs.write("event: message\ndata: " + reply.dump() + "\n\n");
      rs.end_stream();
    }
  });
  size_t colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? "127.0.0.1" : listen.substr(0, colon);
  int port = std::stoi(colon == std::string::npos ? listen : listen.substr(colon + 1));
  port = http.listen_tcp(host, port);
  http.start();
  std::fprintf(stderr, "{\"event\":\"ready\",\"http_port\":%d,\"endpoint\":\"http://%s:%d/mcp\"}\n", port,
               host.c_str(), port);
  if (!ready_file.empty()) std::ofstream(ready_file) << "http_port=" << port << "\n";
  int sig = 0;
  sigwait(&signals, &sig);
  http.stop(2000);
  return 0;
}

std::unique_ptr<agent::McpClient> connect_mcp(const Args& a, int timeout_ms) {
  agent::McpOptions o;
  o.timeout_ms = timeout_ms;
  if (auto cmd = a.get({"--mcp"})) return std::make_unique<agent::McpClient>(agent::make_stdio_transport(*cmd), o);
  if (auto url = a.get({"--mcp-http"})) return std::make_unique<agent::McpClient>(agent::make_http_transport(*url), o);
  throw Error("give an MCP server: --mcp \"COMMAND ARGS\" or --mcp-http URL");
}

Json tool_names(const std::vector<agent::McpTool>& tools) {
  Json names = Json::array();
  for (const agent::McpTool& t : tools) names.push_back(t.name);
  return names;
}

}  // namespace

int device_mcp_command(int argc, char** argv) {
  Args a(argc, argv, 2, {"--state", "--http", "--page-size", "--ready-file"}, {"--sse", "-h", "--help"});
  if (a.flag({"-h", "--help"})) {
    std::puts("onellm device-mcp [--state FILE] [--http [HOST:]PORT [--sse] [--ready-file F]] [--page-size N]\n"
              "  MCP server of the simulated device on stdin/stdout (or streamable HTTP at /mcp);\n"
              "  the state is loaded from and saved to FILE after every successful tool call.");
    return 0;
  }
  const std::string state_path = a.get_or({"--state"}, "");
  agent::Device device = state_path.empty() ? agent::Device() : agent::Device::load(state_path);
  if (!state_path.empty()) device.save(state_path);
  agent::DeviceMcpServer server(device, state_path, static_cast<int>(a.get_int({"--page-size"}, 10)));
  if (auto listen = a.get({"--http"})) return serve_mcp_http(server, *listen, a.flag({"--sse"}), a.get_or({"--ready-file"}, ""));
  server.serve_stdio(0, 1);
  return 0;
}

int device_state_command(int argc, char** argv) {
  Args a(argc, argv, 2, {"--path", "--check"}, {"--reset", "-h", "--help"});
  if (a.flag({"-h", "--help"}) || a.positional().size() != 1) {
    std::puts("onellm device-state FILE [--path /json/pointer] [--check PREDICATE_JSON] [--reset]\n"
              "  prints the saved device state (or a part of it), checks a predicate (exit 1 if false),\n"
              "  or resets the file to the default device.");
    return a.flag({"-h", "--help"}) ? 0 : 2;
  }
  const std::string file = a.positional()[0];
  if (a.flag({"--reset"})) {
    agent::Device().save(file);
    return 0;
  }
  agent::Device device = agent::Device::load(file);
  if (auto check = a.get({"--check"})) {
    Json p = Json::parse(*check, nullptr, false);
    if (p.is_discarded()) throw Error("--check is not JSON: " + *check);
    agent::PredicateResult r = agent::check_predicate(p, device.state());
    std::printf("%s%s%s\n", r.ok ? "true" : "false", r.ok ? "" : ": ", r.why.c_str());
    return r.ok ? 0 : 1;
  }
  std::string path = a.get_or({"--path"}, "");
  Json::json_pointer ptr;
  try {
    ptr = Json::json_pointer(path);
  } catch (const Json::exception&) {
    throw Error("--path '" + path + "' is not a JSON Pointer (like /alarms/0)");
  }
  if (!device.state().contains(ptr)) throw Error("the device state has nothing at " + path);
  std::printf("%s\n", device.state().at(ptr).dump(2).c_str());
  return 0;
}

int mcp_call_command(int argc, char** argv) {
  Args a(argc, argv, 2, {"--mcp", "--mcp-http", "--timeout"}, {"--list", "-h", "--help"});
  if (a.flag({"-h", "--help"}) || (a.positional().empty() && !a.flag({"--list"})) || a.positional().size() > 2) {
    std::puts("onellm mcp-call (--mcp \"COMMAND ARGS\" | --mcp-http URL) [--timeout MS] (--list | TOOL [ARGS_JSON])\n"
              "  one MCP session: initialize, then list the tools and/or call one; prints JSON.\n"
              "  With --list and a TOOL: lists, calls, lists again (re-fetched only after list_changed).");
    return a.flag({"-h", "--help"}) ? 0 : 2;
  }
  auto client = connect_mcp(a, static_cast<int>(a.get_int({"--timeout"}, 30000)));
  client->initialize();
  Json out = {{"server", client->server_info()}, {"protocolVersion", client->protocol_version()}};
  if (a.flag({"--list"})) out["tools"] = tool_names(client->tools());
  if (!a.positional().empty()) {
    Json args = Json::object();
    if (a.positional().size() == 2) {
      args = Json::parse(a.positional()[1], nullptr, false);
      if (args.is_discarded()) throw Error("the tool arguments are not JSON: " + a.positional()[1]);
    }
    agent::McpCallResult r = client->call_tool(a.positional()[0], args);
    out["result"] = {{"isError", r.is_error}, {"content", r.content}, {"structuredContent", r.structured}, {"text", r.text()}};
    if (a.flag({"--list"})) out["tools_after"] = tool_names(client->tools());
  }
  out["list_requests"] = client->list_requests();
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace onellm::cli

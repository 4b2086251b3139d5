// JSON-RPC/MCP message parsing, SSE framing, command-line splitting, the
// predicate language, the shipped task set (replayed on a real Device), and
// the agent loop's handling of a model's mistakes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <deque>
#include <fstream>
#include <set>

#include "agent/agent.h"
#include "base/error.h"
#include "support/test_paths.h"

namespace onellm::agent {
namespace {

TEST(AgentRpc, ParsesTheFourKindsOfMessages) {
  RpcMessage r = parse_rpc_message(R"({"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"cursor":"10"}})");
  EXPECT_EQ(r.kind, RpcMessage::Kind::kRequest);
  EXPECT_EQ(r.id, 7);
  EXPECT_EQ(r.params["cursor"], "10");
  r = parse_rpc_message(R"({"jsonrpc":"2.0","method":"notifications/tools/list_changed"})");
  EXPECT_EQ(r.kind, RpcMessage::Kind::kNotification);
  r = parse_rpc_message(R"({"jsonrpc":"2.0","id":"a","result":{"tools":[]}})");
  EXPECT_EQ(r.kind, RpcMessage::Kind::kResponse);
  EXPECT_FALSE(r.is_error);
  r = parse_rpc_message(R"({"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"nope"}})");
  EXPECT_TRUE(r.is_error);
  EXPECT_EQ(r.error_code, -32601);
  EXPECT_EQ(r.error_message, "nope");
}

TEST(AgentRpc, RejectsMalformedMessagesWithAReason) {
  auto reason = [](const std::string& text) {
    try {
      parse_rpc_message(text);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(reason("hello").find("not JSON"), std::string::npos);
  EXPECT_NE(reason("[]").find("batches"), std::string::npos);
  EXPECT_NE(reason(R"({"id":1,"result":{}})").find("2.0"), std::string::npos);
  EXPECT_NE(reason(R"({"jsonrpc":"2.0","id":1.5,"result":{}})").find("id must be"), std::string::npos);
  EXPECT_NE(reason(R"({"jsonrpc":"2.0","id":1,"result":{},"error":{}})").find("exactly one"), std::string::npos);
  EXPECT_NE(reason(R"({"jsonrpc":"2.0","id":1,"error":{"code":"x"}})").find("code"), std::string::npos);
  EXPECT_NE(reason(R"({"jsonrpc":"2.0","method":5})").find("method must be"), std::string::npos);
  EXPECT_NE(reason(R"({"jsonrpc":"2.0","method":"m","params":3})").find("params"), std::string::npos);
  EXPECT_NE(reason(R"({"jsonrpc":"2.0"})").find("neither"), std::string::npos);
}

TEST(AgentRpc, SseEventsSurviveAnySplit) {
  const std::string stream = ": keep-alive\r\nevent: message\r\ndata: {\"a\":1}\r\n\r\ndata: line1\ndata: line2\nid: 9\n\n";
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    SseParser p;
    std::vector<SseEvent> events = p.feed(stream.substr(0, cut));
    for (SseEvent& e : p.feed(stream.substr(cut))) events.push_back(e);
    ASSERT_EQ(events.size(), 2u) << cut;
    EXPECT_EQ(events[0].event, "message");
    EXPECT_EQ(events[0].data, "{\"a\":1}");
    EXPECT_EQ(events[1].data, "line1\nline2");
    EXPECT_EQ(events[1].id, "9");
  }
}

TEST(AgentRpc, SplitsCommandLinesLikeAShell) {
  EXPECT_EQ(split_command_line("onellm device-mcp --state '/tmp/a b.json'"),
            (std::vector<std::string>{"onellm", "device-mcp", "--state", "/tmp/a b.json"}));
  EXPECT_EQ(split_command_line(R"X(python3 -c "print(\"x\")"  a\ b)X"),
            (std::vector<std::string>{"python3", "-c", "print(\"x\")", "a b"}));
  EXPECT_THROW(split_command_line("a 'b"), Error);
  EXPECT_THROW(split_command_line("   "), Error);
}

TEST(AgentRpc, DeviceServerAnswersProtocolMistakes) {
  Device d;
  DeviceMcpServer s(d, "", 10);
  EXPECT_EQ(s.handle_text("garbage")["error"]["code"], -32700);
  EXPECT_EQ(s.handle_text(R"({"jsonrpc":"2.0","id":1,"method":"nope"})")["error"]["code"], -32601);
  EXPECT_EQ(s.handle_text(R"({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"x"}})")["error"]["code"], -32602);
  EXPECT_TRUE(s.handle_text(R"({"jsonrpc":"2.0","method":"notifications/initialized"})").is_null());
  // Pages of 10 cover every tool exactly once.
  std::set<std::string> names;
  Json cursor;
  int pages = 0;
  do {
    Json params = cursor.is_null() ? Json::object() : Json{{"cursor", cursor}};
    Json r = s.handle_text(rpc_request(1, "tools/list", params).dump())["result"];
    for (const Json& t : r["tools"]) EXPECT_TRUE(names.insert(t["name"]).second);
    cursor = r.value("nextCursor", Json());
    ++pages;
  } while (!cursor.is_null());
  EXPECT_EQ(names.size(), device_tool_definitions().size());
  EXPECT_EQ(pages, static_cast<int>((names.size() + 9) / 10));
  Json bad = s.handle_text(rpc_request(2, "tools/call", {{"name", "set_alarm"}, {"arguments", {{"hour", 99}}}}).dump());
  EXPECT_EQ(bad["result"]["isError"], true);
  EXPECT_TRUE(d.state()["alarms"].size() == 1);
}

TEST(AgentPredicate, Language) {
  Json s = default_device_state();
  auto ok = [&](const char* p) { return check_predicate(Json::parse(p), s).ok; };
  EXPECT_TRUE(ok(R"({"path":"/alarms","count":1})"));
  EXPECT_FALSE(ok(R"({"path":"/alarms","count":{"min":2}})"));
  EXPECT_TRUE(ok(R"({"path":"/alarms/0/label","equals":"WORK"})"));
  EXPECT_TRUE(ok(R"({"path":"/contacts","contains":{"name":"mom","phone":"+1 555 0100"}})"));
  EXPECT_FALSE(ok(R"({"path":"/contacts","contains":{"name":"mom","phone":"1"}})"));
  EXPECT_TRUE(ok(R"({"path":"/events/0/location","contains":"street"})"));
  EXPECT_TRUE(ok(R"({"path":"/navigation","exists":false})"));
  EXPECT_FALSE(ok(R"({"path":"/nothing/here","equals":1})"));
  EXPECT_FALSE(ok(R"({"path":"/alarms/x","equals":1})"));
  EXPECT_TRUE(ok(R"({"all":[{"path":"/settings/wifi","equals":true},{"not":{"path":"/settings/bluetooth","equals":true}}]})"));
  EXPECT_TRUE(ok(R"({"any":[{"path":"/settings/wifi","equals":false},{"path":"/settings/brightness","equals":60.0}]})"));
  PredicateResult r = check_predicate(Json::parse(R"({"path":"/settings/wifi","equals":false})"), s);
  EXPECT_NE(r.why.find("/settings/wifi should equal false, is true"), std::string::npos);
  for (const char* bad : {R"([])", R"({})", R"({"path":"/a"})", R"({"equals":1})", R"({"all":[]})",
                          R"({"path":"a/b","equals":1})", R"({"path":"/a","count":"x"})"})
    EXPECT_THROW(check_predicate(Json::parse(bad), s), Error) << bad;
}

TEST(AgentTasks, ShippedTasksAreSolvableByTheirExpectedCalls) {
  std::vector<AgentTask> tasks = load_agent_tasks(std::string(ONELLM_SOURCE_DIR) + "/data/agent-tasks/device-tasks.jsonl");
  ASSERT_GE(tasks.size(), 100u);
  std::set<std::string> tools, ids;
  for (const AgentTask& t : tasks) {
    EXPECT_TRUE(ids.insert(t.id).second) << t.id;
    Device d = Device::from_json(t.initial_state);
    EXPECT_FALSE(check_predicate(t.check, d.state()).ok) << t.id << " holds before anything is done";
    ASSERT_TRUE(t.expected_calls.is_array()) << t.id;
    for (const Json& c : t.expected_calls) {
      ToolResult r = d.call(c["name"], c["arguments"]);
      EXPECT_FALSE(r.is_error) << t.id << ": " << r.content.dump();
      tools.insert(c["name"].get<std::string>());
    }
    PredicateResult after = check_predicate(t.check, d.state());
    EXPECT_TRUE(after.ok) << t.id << ": " << after.why;
  }
  for (const Json& def : device_tool_definitions()) EXPECT_TRUE(tools.count(def["function"]["name"])) << def["function"]["name"];
}

TEST(AgentTasks, BadTaskFilesNameTheLine) {
  test::TempDir tmp;
  auto reason = [&](const std::string& text) {
    std::ofstream(tmp.file("t.jsonl")) << text;
    try {
      load_agent_tasks(tmp.file("t.jsonl"));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(reason("{\"request\":\"a\",\"check\":{\"path\":\"/alarms\",\"count\":1}}\n{oops\n").find("t.jsonl:2: not a JSON object"), std::string::npos);
  EXPECT_NE(reason("{\"check\":{}}\n").find(":1: no \"request\""), std::string::npos);
  EXPECT_NE(reason("{\"request\":\"a\",\"check\":{\"path\":\"/x\"}}\n").find(":1: predicate"), std::string::npos);
  EXPECT_NE(reason("{\"request\":\"a\",\"check\":{\"path\":\"/x\",\"exists\":true},\"initial_state\":{\"robot\":1}}").find("unknown field 'robot'"), std::string::npos);
  EXPECT_NE(reason("").find("no tasks"), std::string::npos);
}

// The model's side of the loop is what is under test here, so its replies are
// scripted: a model that names a missing tool, sends arguments that are not
// JSON, calls a destructive tool, then answers.
class ScriptedModel : public ChatBackend {
 public:
  explicit ScriptedModel(std::deque<Json> replies) : replies_(std::move(replies)) {}
  Json complete(const Json& request) override {
    requests.push_back(request);
    if (replies_.empty()) throw Error("script exhausted");
    Json r = replies_.front();
    replies_.pop_front();
    return r;
  }
  std::vector<Json> requests;

 private:
  std::deque<Json> replies_;
};

Json tool_call_reply(std::vector<std::pair<std::string, std::string>> calls) {
  Json tc = Json::array();
  int i = 0;
  for (auto& [name, args] : calls)
    tc.push_back({{"id", "c" + std::to_string(i++)}, {"type", "function"}, {"function", {{"name", name}, {"arguments", args}}}});
  return {{"choices", {{{"message", {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", tc}}}, {"finish_reason", "tool_calls"}}}}};
}
Json text_reply(const std::string& text) {
  return {{"choices", {{{"message", {{"role", "assistant"}, {"content", text}}}, {"finish_reason", "stop"}}}}};
}

TEST(AgentLoop, FeedsMistakesBackAndAsksBeforeDestructiveTools) {
  Device device;
  std::vector<AgentTool> tools = device_agent_tools(device);
  ScriptedModel model({tool_call_reply({{"launch_rocket", "{}"}, {"set_alarm", "{\"hour\": 7"}}),
                       tool_call_reply({{"set_alarm", "{\"hour\": 6, \"minute\": 45}"}, {"delete_contact", "{\"name\": \"Sam\"}"}}),
                       text_reply("Done.")});
  AgentOptions o;
  std::vector<std::string> asked;
  o.confirm = [&](const std::string& name, const Json&) {
    asked.push_back(name);
    return false;
  };
  AgentRun run = run_agent(model, tools, "wake me at 6:45", o);
  EXPECT_EQ(run.stop_reason, "answer");
  EXPECT_EQ(run.final_answer, "Done.");
  EXPECT_EQ(run.steps, 3);
  EXPECT_EQ(asked, std::vector<std::string>{"delete_contact"});
  ASSERT_EQ(run.calls.size(), 4u);
  EXPECT_EQ(run.calls[2]["ok"], true);
  EXPECT_TRUE(check_predicate(Json::parse(R"({"path":"/alarms","contains":{"hour":6,"minute":45}})"), device.state()).ok);
  EXPECT_TRUE(check_predicate(Json::parse(R"({"path":"/contacts","contains":{"name":"Sam"}})"), device.state()).ok);
  // The second request carries the tool messages for both failed calls.
  const Json& msgs = model.requests[1]["messages"];
  ASSERT_GE(msgs.size(), 4u);
  EXPECT_NE(msgs[msgs.size() - 2]["content"].get<std::string>().find("unknown tool 'launch_rocket'"), std::string::npos);
  EXPECT_NE(msgs.back()["content"].get<std::string>().find("not valid JSON"), std::string::npos);
  EXPECT_EQ(msgs.back()["tool_call_id"], "c1");
  EXPECT_EQ(model.requests[0]["tools"].size(), device_tool_definitions().size());
  EXPECT_EQ(model.requests[0]["tool_choice"], "auto");
}

TEST(AgentLoop, StopsAtTheStepLimitAndOnServiceErrors) {
  Device device;
  std::vector<AgentTool> tools = device_agent_tools(device);
  std::deque<Json> replies;
  for (int i = 0; i < 5; ++i) replies.push_back(tool_call_reply({{"show_alarms", "{}"}}));
  ScriptedModel model(replies);
  AgentOptions o;
  o.max_steps = 3;
  o.tool_choice = "show_alarms";
  AgentRun run = run_agent(model, tools, "loop", o);
  EXPECT_EQ(run.stop_reason, "max_steps");
  EXPECT_EQ(run.steps, 3);
  EXPECT_EQ(model.requests.size(), 3u);
  EXPECT_EQ(model.requests[0]["tool_choice"]["function"]["name"], "show_alarms");

  ScriptedModel broken(std::deque<Json>{Json{{"choices", Json::array()}}});
  run = run_agent(broken, tools, "x", AgentOptions{});
  EXPECT_EQ(run.stop_reason.rfind("error", 0), 0u);
  ScriptedModel empty(std::deque<Json>{});
  run = run_agent(empty, tools, "x", AgentOptions{});
  EXPECT_NE(run.stop_reason.find("script exhausted"), std::string::npos);
}

TEST(AgentLoop, AnUnreachableModelIsThrownNotAStopReason) {
  // A real HTTP backend on a socket path nobody listens at: no run
  // happened, so the caller gets the error instead of a failed run.
  Device device;
  std::vector<AgentTool> tools = device_agent_tools(device);
  const std::string path = ::testing::TempDir() + "onellm-nobody-" + std::to_string(::getpid()) + ".sock";
  std::unique_ptr<ChatBackend> model = make_http_chat_backend(parse_endpoint("unix:" + path), 2000);
  try {
    run_agent(*model, tools, "x", AgentOptions{});
    FAIL() << "expected UnreachableError";
  } catch (const UnreachableError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  // A model that answers with an error is still a stop reason.
  ScriptedModel broken(std::deque<Json>{Json{{"choices", Json::array()}}});
  EXPECT_EQ(run_agent(broken, tools, "x", AgentOptions{}).stop_reason.rfind("error", 0), 0u);
}

// An MCP server in memory: answers initialize, one page of tools/list and
// tools/call (echoing the name it was called by).
class InMemoryMcp : public McpTransport {
 public:
  explicit InMemoryMcp(Json tools) : tools_(std::move(tools)) {}
  // From the next tools/call on, the list is `tools` and the call says so.
  void change_tools_on_next_call(Json tools) { next_tools_ = std::move(tools); }
  RpcMessage request(const Json& message, int, std::vector<RpcMessage>& others, const ServerRequestHandler&) override {
    RpcMessage r;
    r.kind = RpcMessage::Kind::kResponse;
    r.id = message["id"];
    const std::string method = message["method"];
    if (method == "initialize")
      r.result = {{"protocolVersion", "2025-03-26"}, {"capabilities", {{"tools", Json::object()}}},
                  {"serverInfo", {{"name", "mem"}, {"version", "1"}}}};
    else if (method == "tools/list")
      r.result = {{"tools", tools_}};
    else if (method == "tools/call")
      r.result = {{"content", {{{"type", "text"}, {"text", "called " + message["params"]["name"].get<std::string>()}}}}};
    if (method == "tools/call" && !next_tools_.is_null()) {
      tools_ = std::move(next_tools_);
      next_tools_ = Json();
      RpcMessage changed;
      changed.kind = RpcMessage::Kind::kNotification;
      changed.method = "notifications/tools/list_changed";
      others.push_back(changed);
    }
    return r;
  }
  void notify(const Json&, int) override {}
  std::string describe() const override { return "in-memory MCP server"; }

 private:
  Json tools_, next_tools_;
};

TEST(AgentLoop, McpToolsGetValidNamesAndUnusableOnesAreLeftOut) {
  McpClient client(std::make_unique<InMemoryMcp>(Json::parse(R"([
    {"name": "files.read", "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}}},
    {"name": "files_read", "inputSchema": {"type": "object"}},
    {"name": "tile", "inputSchema": {"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 3}}}},
    {"name": "ok-tool", "inputSchema": {"type": "object"}}])")));
  client.initialize();
  std::vector<std::string> notes;
  std::vector<AgentTool> tools = mcp_agent_tools(client, &notes);
  ASSERT_EQ(tools.size(), 3u);
  EXPECT_EQ(tools[0].name(), "files_read");    // the alias of files.read
  EXPECT_EQ(tools[1].name(), "files_read_2");  // the server's own files_read, renamed so both stay callable
  EXPECT_EQ(tools[2].name(), "ok-tool");
  EXPECT_EQ(tools[0].call(Json::object()).text, "called files.read");  // the server hears the real name
  EXPECT_EQ(tools[1].call(Json::object()).text, "called files_read");
  ASSERT_EQ(notes.size(), 3u);
  EXPECT_NE(notes[0].find("'files.read' is offered to the model as 'files_read'"), std::string::npos);
  EXPECT_NE(notes[2].find("'tile' left out"), std::string::npos);
  EXPECT_NE(notes[2].find("multipleOf"), std::string::npos);
}

// A server whose list changes during a call: the next model request
// carries the new list (MCP notifications/tools/list_changed).
TEST(AgentLoop, PicksUpAToolListThatChangesMidRun) {
  auto transport = std::make_unique<InMemoryMcp>(Json::parse(R"([{"name": "unlock", "inputSchema": {"type": "object"}}])"));
  InMemoryMcp& server = *transport;
  McpClient client(std::move(transport));
  server.change_tools_on_next_call(Json::parse(R"([{"name": "unlock", "inputSchema": {"type": "object"}},
                                                    {"name": "open_door", "inputSchema": {"type": "object"}}])"));
  ScriptedModel model({tool_call_reply({{"unlock", "{}"}}), tool_call_reply({{"open_door", "{}"}}), text_reply("Open.")});
  AgentOptions o;
  o.refresh_tools = [&](std::vector<AgentTool>& tools) {
    if (!client.tools_changed()) return false;
    tools = mcp_agent_tools(client);
    return true;
  };
  AgentRun run = run_agent(model, mcp_agent_tools(client), "let me in", o);
  EXPECT_EQ(run.stop_reason, "answer");
  ASSERT_EQ(model.requests.size(), 3u);
  EXPECT_EQ(model.requests[0]["tools"].size(), 1u);
  EXPECT_EQ(model.requests[1]["tools"].size(), 2u);
  ASSERT_EQ(run.calls.size(), 2u);
  EXPECT_EQ(run.calls[1]["ok"], true);  // open_door exists by then
  EXPECT_FALSE(client.tools_changed());
}

TEST(AgentLoop, RestrictsToolsFromAFile) {
  Device device;
  std::vector<AgentTool> tools = device_agent_tools(device);
  std::vector<AgentTool> two = restrict_tools(tools, Json::parse(R"(["call", {"type":"function","function":{"name":"set_alarm","description":"x","parameters":{}}}])"));
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1].definition["function"]["description"], "x");
  EXPECT_THROW(restrict_tools(tools, Json::parse(R"(["warp"])")), Error);
  EXPECT_THROW(restrict_tools(tools, Json::parse(R"([3])")), Error);
}

}  // namespace
}  // namespace onellm::agent

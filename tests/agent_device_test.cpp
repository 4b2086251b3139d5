// The simulated device: every tool acts on the state, bad arguments are error
// results naming the argument (state unchanged), the state round-trips
// through a file, and the trained tool definitions are kept unchanged.
#include <gtest/gtest.h>

#include <fstream>

#include "agent/device.h"
#include "base/error.h"
#include "support/test_paths.h"
#include "train/train.h"

namespace onellm::agent {
namespace {

ToolResult must_work(Device& d, const std::string& name, const Json& args) {
  ToolResult r = d.call(name, args);
  EXPECT_FALSE(r.is_error) << name << " " << args.dump() << ": " << r.content.dump();
  return r;
}

std::string error_of(Device& d, const std::string& name, const Json& args) {
  const Json before = d.state();
  ToolResult r = d.call(name, args);
  EXPECT_TRUE(r.is_error) << name << " " << args.dump();
  EXPECT_EQ(d.state(), before) << "a failed call changed the state";
  return r.content.value("error", "");
}

TEST(AgentDevice, OffersExactlyTheTrainedTools) {
  EXPECT_EQ(device_tool_definitions(), Json::parse(device_tools().dump()));
  EXPECT_EQ(device_tool_definitions().size(), 26u);
}

TEST(AgentDevice, EveryToolChangesOrShowsSomething) {
  // One valid call per tool; each must succeed and leave the state different.
  const Json calls = Json::parse(R"([
    ["set_alarm", {"hour": 6, "minute": 30, "label": "run"}], ["set_timer", {"duration": "1 hour 30 minutes"}],
    ["show_alarms", {}], ["create_event", {"title": "lunch", "date": "friday", "time": "12:30"}],
    ["add_contact", {"name": "Nina", "phone": "555 0199"}], ["get_contact", {"name": "alex", "field": "email"}],
    ["call", {"contact": "Mom"}], ["send_message", {"to": "Sam", "body": "hi"}],
    ["send_email", {"to": "Priya", "subject": "s", "body": "b"}], ["web_search", {"query": "weather"}],
    ["find_place", {"query": "cafe"}], ["navigate", {"destination": "home", "mode": "walking"}],
    ["toggle_setting", {"setting": "bluetooth", "on": true}], ["open_settings", {"page": "display"}],
    ["take_photo", {"camera": "front"}], ["record_video", {}], ["create_document", {"name": "plan", "type": "text"}],
    ["open_document", {"name": "Budget"}], ["delete_alarm", {"hour": 7, "minute": 0}], ["cancel_timer", {}],
    ["list_events", {"date": "friday"}], ["delete_event", {"title": "dentist"}], ["delete_contact", {"name": "Jordan"}],
    ["delete_document", {"name": "resume"}], ["set_brightness", {"level": 20}], ["set_volume", {"level": 5, "stream": "ring"}]
  ])");
  Device d;
  std::set<std::string> covered;
  for (const Json& c : calls) {
    const Json before = d.state();
    must_work(d, c[0], c[1]);
    EXPECT_NE(d.state(), before) << c[0];
    covered.insert(c[0].get<std::string>());
  }
  for (const Json& t : device_tool_definitions()) EXPECT_TRUE(covered.count(t["function"]["name"])) << t["function"]["name"];
  EXPECT_EQ(d.state()["timers"].size(), 0u);
  EXPECT_EQ(d.state()["calls"][0]["number"], "+1 555 0100");
  EXPECT_EQ(d.state()["emails"][0]["address"], "priya@example.com");
  EXPECT_EQ(d.state()["open_document"], "budget");
  EXPECT_EQ(d.state()["settings"]["volume_ring"], 5);
}

TEST(AgentDevice, BadArgumentsAreErrorResultsNamingTheArgument) {
  Device d;
  EXPECT_NE(error_of(d, "set_alarm", {{"hour", 25}, {"minute", 0}}).find("'hour' must be at most 23"), std::string::npos);
  EXPECT_NE(error_of(d, "set_alarm", {{"hour", 7}}).find("missing required argument 'minute'"), std::string::npos);
  EXPECT_NE(error_of(d, "set_alarm", {{"hour", "7"}, {"minute", 0}}).find("must be integer, not string"), std::string::npos);
  EXPECT_NE(error_of(d, "set_alarm", {{"hour", 7}, {"minute", 0}, {"day", "x"}}).find("unknown argument 'day'"), std::string::npos);
  EXPECT_NE(error_of(d, "toggle_setting", {{"setting", "warp"}, {"on", true}}).find("must be one of"), std::string::npos);
  EXPECT_NE(error_of(d, "set_alarm", Json::array()).find("must be a JSON object"), std::string::npos);
  EXPECT_NE(error_of(d, "launch_rocket", Json::object()).find("unknown tool 'launch_rocket'"), std::string::npos);
  EXPECT_NE(error_of(d, "set_timer", {{"duration", "soon"}}).find("cannot read duration"), std::string::npos);
  EXPECT_NE(error_of(d, "create_event", {{"title", "x"}, {"date", "monday"}, {"time", "9am"}}).find("HH:MM"), std::string::npos);
  EXPECT_NE(error_of(d, "call", {{"contact", "Zed"}}).find("no contact named 'Zed'"), std::string::npos);
  EXPECT_NE(error_of(d, "send_email", {{"to", "Dr. Lee"}, {"subject", "a"}, {"body", "b"}}).find("has no email"), std::string::npos);
  EXPECT_NE(error_of(d, "create_document", {{"name", "budget"}, {"type", "pdf"}}).find("already exists"), std::string::npos);
  EXPECT_NE(error_of(d, "delete_alarm", {{"hour", 9}, {"minute", 9}}).find("no alarm"), std::string::npos);
  EXPECT_NE(error_of(d, "cancel_timer", Json::object()).find("no timer"), std::string::npos);
  // 7.0 is an integer in JSON Schema.
  must_work(d, "set_alarm", {{"hour", 7.0}, {"minute", 5}});
}

TEST(AgentDevice, DurationsAndNumbers) {
  Device d;
  for (auto [text, seconds] : std::vector<std::pair<std::string, int>>{
           {"10 minutes", 600}, {"1 hour 30 minutes", 5400}, {"90 seconds", 90}, {"1h30m", 5400}, {"2 hrs", 7200},
           {"1 hour and 5 minutes", 3900}}) {
    ToolResult r = must_work(d, "set_timer", {{"duration", text}});
    EXPECT_EQ(r.content["timer"]["seconds"], seconds) << text;
  }
  EXPECT_EQ(must_work(d, "call", {{"contact", "+1 (555) 0177"}}).content["calling"]["number"], "+1 (555) 0177");
}

TEST(AgentDevice, StateRoundTripsThroughAFile) {
  test::TempDir tmp;
  const std::string file = tmp.file("device.json");
  Device d = Device::load(file);  // missing: the default device
  EXPECT_EQ(d.state(), default_device_state());
  must_work(d, "set_alarm", {{"hour", 5}, {"minute", 55}});
  must_work(d, "toggle_setting", {{"setting", "wifi"}, {"on", false}});
  d.save(file);
  Device back = Device::load(file);
  EXPECT_EQ(back.state(), d.state());
  EXPECT_FALSE(std::filesystem::exists(file + ".tmp." + std::to_string(::getpid())));

  std::ofstream(file) << "{\"alarms\": [";
  EXPECT_THROW(Device::load(file), Error);
  EXPECT_THROW(Device::from_json({{"robots", 1}}), Error);
  EXPECT_THROW(Device::from_json({{"alarms", 3}}), Error);
  EXPECT_THROW(Device::from_json(Json::array()), Error);
  // Partial states keep the defaults for everything else.
  Device partial = Device::from_json({{"settings", {{"wifi", false}}}});
  EXPECT_EQ(partial.state()["settings"]["wifi"], false);
  EXPECT_EQ(partial.state()["settings"]["brightness"], 60);
}

TEST(AgentDevice, AnnotationsMarkDestructiveTools) {
  EXPECT_TRUE(device_tool_is_destructive("delete_contact"));
  EXPECT_TRUE(device_tool_is_destructive("cancel_timer"));
  EXPECT_FALSE(device_tool_is_destructive("set_alarm"));
  EXPECT_TRUE(device_tool_is_read_only("get_contact"));
  EXPECT_FALSE(device_tool_is_read_only("send_message"));
}

TEST(AgentDevice, SchemaChecksNestedValues) {
  Json schema = Json::parse(R"({"type":"object","properties":{
    "tags":{"type":"array","items":{"type":"string","maxLength":3}},
    "n":{"type":"number","minimum":0.5}},"required":["n"]})");
  EXPECT_EQ(schema_violation(schema, {{"n", 1}, {"tags", {"ab", "c"}}}), "");
  EXPECT_NE(schema_violation(schema, {{"n", 1}, {"tags", {"abcd"}}}).find("argument 'tags'[0]"), std::string::npos);
  EXPECT_NE(schema_violation(schema, {{"n", 0.1}}).find("at least 0.5"), std::string::npos);
}

}  // namespace
}  // namespace onellm::agent

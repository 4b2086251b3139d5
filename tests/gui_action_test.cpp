// AndroidWorld actions: validation, schema, device commands, AITW export.
#include <gtest/gtest.h>

#include "agent/gui_action.h"
#include "base/error.h"

namespace onellm {
namespace {

using nlohmann::json;

const char* kScreen =
    "<hierarchy><node class=\"android.widget.FrameLayout\" bounds=\"[0,0][1000,2000]\">"
    "<node class=\"android.widget.Button\" text=\"Save\" clickable=\"true\" bounds=\"[100,200][300,400]\"/>"
    "<node class=\"android.widget.EditText\" text=\"\" bounds=\"[0,500][1000,600]\"/>"
    "<node class=\"android.widget.ListView\" scrollable=\"true\" bounds=\"[0,1000][1000,1800]\"/>"
    "</node></hierarchy>";

TEST(GuiAction, ParsesEveryActionTypeAndRoundTrips) {
  const char* actions[] = {
      R"({"action_type":"click","index":0})",
      R"({"action_type":"long_press","x":10,"y":20})",
      R"({"action_type":"input_text","index":1,"text":"héllo wörld"})",
      R"({"action_type":"scroll","direction":"down"})",
      R"({"action_type":"scroll","direction":"up","index":2})",
      R"({"action_type":"swipe","direction":"left"})",
      R"({"action_type":"navigate_back"})",
      R"({"action_type":"navigate_home"})",
      R"({"action_type":"keyboard_enter"})",
      R"({"action_type":"open_app","app_name":"Clock"})",
      R"({"action_type":"wait"})",
      R"({"action_type":"answer","text":"42"})",
      R"({"action_type":"status","goal_status":"infeasible"})",
  };
  for (const char* text : actions) {
    GuiAction a = parse_gui_action_text(text, 3);
    EXPECT_EQ(gui_action_to_json(a), json::parse(text)) << text;
    EXPECT_EQ(parse_gui_action(gui_action_to_json(a), 3), a) << text;
  }
}

TEST(GuiAction, InvalidActionsNameTheProblem) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"action_type":"click","index":3})", "index 3 is not an element"},
      {R"({"action_type":"click","index":-1})", "not an element"},
      {R"({"action_type":"click"})", "needs 'index'"},
      {R"({"action_type":"click","index":0,"x":1,"y":2})", "not both"},
      {R"({"action_type":"click","x":1})", "go together"},
      {R"({"action_type":"click","x":5000,"y":2})", "outside the screen"},
      {R"({"action_type":"click","index":"0"})", "must be an integer"},
      {R"({"action_type":"tap","index":0})", "unknown action_type 'tap'"},
      {R"({"action_type":"scroll","direction":"sideways"})", "direction 'sideways'"},
      {R"({"action_type":"status","goal_status":"done"})", "goal_status 'done'"},
      {R"({"action_type":"navigate_back","index":0})", "unexpected field 'index'"},
      {R"({"action_type":"input_text","index":1})", "'text' is missing"},
      {R"({"index":1})", "action_type"},
      {R"([1,2])", "expected a JSON object"},
      {R"({"action_type":"click",)", "not valid JSON"},
  };
  for (const auto& [text, expected] : cases) {
    try {
      parse_gui_action_text(text, 3);
      ADD_FAILURE() << "accepted " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << text << " -> " << e.what();
    }
  }
}

TEST(GuiAction, SchemaBoundsIndicesByTheElementCount) {
  json s = gui_action_schema(7, {"Clock", "Notes"});
  int with_index = 0;
  for (const json& v : s["oneOf"]) {
    EXPECT_EQ(v["additionalProperties"], false);
    const std::string name = v["properties"]["action_type"]["const"];
    if (v["properties"].contains("index")) {
      ++with_index;
      EXPECT_EQ(v["properties"]["index"]["maximum"], 6) << name;
      EXPECT_EQ(v["properties"]["index"]["minimum"], 0) << name;
    }
    if (name == "open_app") {
      EXPECT_EQ(v["properties"]["app_name"]["enum"], json({"Clock", "Notes"}));
    }
  }
  EXPECT_EQ(with_index, 4);  // click, long_press, input_text, scroll
  // No elements: no variant may take an index.
  for (const json& v : gui_action_schema(0)["oneOf"]) EXPECT_FALSE(v["properties"].contains("index"));
}

TEST(GuiAction, DeviceCommandsResolveIndicesToElementCentres) {
  ScreenView v = parse_screen(kScreen);
  ASSERT_EQ(v.elements.size(), 3u);
  DeviceCommand c = device_command(parse_gui_action_text(R"({"action_type":"click","index":0})", 3), v);
  EXPECT_EQ(c.kind, DeviceCommand::kTap);
  EXPECT_EQ(c.x, 200);
  EXPECT_EQ(c.y, 300);
  // Scrolling down inside the list: the finger moves up within the list.
  c = device_command(parse_gui_action_text(R"({"action_type":"scroll","index":2,"direction":"down"})", 3), v);
  EXPECT_EQ(c.kind, DeviceCommand::kSwipe);
  EXPECT_GT(c.y, c.y2);
  EXPECT_TRUE(v.elements[2].bounds.contains(c.x, c.y));
  EXPECT_TRUE(v.elements[2].bounds.contains(c.x2, c.y2));
  // A swipe names the finger's direction.
  c = device_command(parse_gui_action_text(R"({"action_type":"swipe","direction":"down"})", 3), v);
  EXPECT_LT(c.y, c.y2);
  c = device_command(parse_gui_action_text(R"({"action_type":"input_text","index":1,"text":"a b"})", 3), v);
  EXPECT_EQ(c.kind, DeviceCommand::kType);
  EXPECT_EQ(c.text, "a b");
  EXPECT_EQ(c.y, 550);
}

TEST(GuiAction, AitwExportNormalizesPointsAsYx) {
  ScreenView v = parse_screen(kScreen);
  json j = gui_action_to_aitw(parse_gui_action_text(R"({"action_type":"click","index":0})", 3), v);
  EXPECT_EQ(j["action_type"], "DUAL_POINT");
  EXPECT_DOUBLE_EQ(j["touch_point"][0].get<double>(), 0.15);  // y = 300 / 2000
  EXPECT_DOUBLE_EQ(j["touch_point"][1].get<double>(), 0.2);   // x = 200 / 1000
  EXPECT_EQ(j["touch_point"], j["lift_point"]);
  j = gui_action_to_aitw(parse_gui_action_text(R"({"action_type":"input_text","index":1,"text":"hi there"})", 3), v);
  EXPECT_EQ(j["action_type"], "TYPE");
  EXPECT_EQ(j["typed_text"], "hi there");
  EXPECT_EQ(gui_action_to_aitw(parse_gui_action_text(R"({"action_type":"navigate_back"})", 3), v)["action_type"],
            "PRESS_BACK");
  EXPECT_EQ(gui_action_to_aitw(parse_gui_action_text(R"({"action_type":"navigate_home"})", 3), v)["action_type"],
            "PRESS_HOME");
  EXPECT_EQ(gui_action_to_aitw(parse_gui_action_text(R"({"action_type":"keyboard_enter"})", 3), v)["action_type"],
            "PRESS_ENTER");
  EXPECT_EQ(gui_action_to_aitw(parse_gui_action_text(R"({"action_type":"status","goal_status":"complete"})", 3),
                               v)["action_type"],
            "STATUS_TASK_COMPLETE");
  EXPECT_EQ(gui_action_to_aitw(parse_gui_action_text(R"({"action_type":"status","goal_status":"infeasible"})", 3),
                               v)["action_type"],
            "STATUS_TASK_IMPOSSIBLE");
  j = gui_action_to_aitw(parse_gui_action_text(R"({"action_type":"scroll","index":2,"direction":"down"})", 3), v);
  EXPECT_GT(j["touch_point"][0].get<double>(), j["lift_point"][0].get<double>());
}

}  // namespace
}  // namespace onellm

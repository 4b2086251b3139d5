// The simulated phone on the apps in data/gui-apps, and the adb backend's
// command construction and parsing on recorded adb output.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "agent/gui_environment.h"
#include "base/error.h"

namespace onellm {
namespace {

using nlohmann::json;

const std::string kApps = std::string(ONELLM_SOURCE_DIR) + "/data/gui-apps";
const std::string kAdbData = std::string(ONELLM_SOURCE_DIR) + "/tests/data/adb/";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Acts on the element whose resource-id (short) is `id` and whose text or
// content-desc contains `text`, as the agent would: through the dump.
void act(SimulatedDevice& d, const std::string& json_action, const std::string& id = "", const std::string& text = "") {
  ScreenView v = parse_screen(d.dump_screen());
  json j = json::parse(json_action);
  if (!id.empty()) {
    int found = -1;
    for (size_t i = 0; i < v.elements.size() && found < 0; ++i) {
      const ViewNode& n = v.tree.nodes[v.elements[i].node];
      if (n.short_id() == id && (text.empty() || v.elements[i].text.find(text) != std::string::npos ||
                                 n.content_desc.find(text) != std::string::npos))
        found = static_cast<int>(i);
    }
    ASSERT_GE(found, 0) << id << " " << text << " not on\n" << v.element_list();
    j["index"] = found;
  }
  d.execute(device_command(parse_gui_action(j, static_cast<int>(v.elements.size()), v.screen), v));
}

bool screen_has(SimulatedDevice& d, const std::string& text) {
  for (const ViewNode& n : parse_view_xml(d.dump_screen()).nodes)
    if (n.text == text) return true;
  return false;
}

TEST(GuiSim, LoadsEveryAppAndRendersEveryStartScreen) {
  SimulatedDevice d(kApps);
  const std::vector<InstalledApp> apps = d.installed_apps();
  ASSERT_GE(apps.size(), 6u);
  EXPECT_EQ(d.current_activity(), "com.onellm.launcher/.Launcher");
  for (const InstalledApp& a : apps) {
    d.open_app(a.name);
    ScreenView v = parse_screen(d.dump_screen());
    EXPECT_GE(v.elements.size(), 3u) << a.name;
    EXPECT_EQ(d.current_activity().rfind(a.package + "/", 0), 0u) << d.current_activity();
    for (const ViewNode& n : v.tree.nodes) EXPECT_EQ(n.package, a.package);
  }
  EXPECT_THROW(d.open_app("Calculator"), Error);
}

TEST(GuiSim, AddingAnAlarmTakesSeveralStepsAndChangesState) {
  SimulatedDevice d(kApps);
  d.open_app("Clock");
  const size_t before = d.app_state("com.onellm.clock")["alarms"].size();
  act(d, R"({"action_type":"click"})", "add_alarm");
  EXPECT_EQ(d.current_activity(), "com.onellm.clock/.SetAlarmActivity");
  act(d, R"({"action_type":"click"})", "save");  // empty hour: refused with a message
  EXPECT_TRUE(screen_has(d, "Enter the hour"));
  act(d, R"({"action_type":"input_text","text":"7"})", "hour");
  act(d, R"({"action_type":"input_text","text":"30"})", "minute");
  act(d, R"({"action_type":"input_text","text":"Dentist & co"})", "label");
  act(d, R"({"action_type":"click"})", "save");
  EXPECT_EQ(d.current_activity(), "com.onellm.clock/.AlarmClockActivity");
  const json& alarms = d.app_state("com.onellm.clock")["alarms"];
  ASSERT_EQ(alarms.size(), before + 1);
  EXPECT_EQ(alarms.back()["time"], "7:30");
  EXPECT_EQ(alarms.back()["label"], "Dentist & co");
  EXPECT_TRUE(screen_has(d, "Dentist & co"));  // escaped in the XML, intact after parsing
}

TEST(GuiSim, LongListsScrollAndClipRows) {
  SimulatedDevice d(kApps);
  d.open_app("Contacts");
  EXPECT_FALSE(screen_has(d, "Isabella Romano"));  // the last row is below the list's end
  const std::string first = d.dump_screen();
  for (int i = 0; i < 5 && !screen_has(d, "Isabella Romano"); ++i)
    act(d, R"({"action_type":"scroll","direction":"down"})", "contact_list");
  EXPECT_TRUE(screen_has(d, "Isabella Romano"));
  EXPECT_FALSE(screen_has(d, "Aaron Becker"));
  // Rows stay inside the list's bounds.
  ViewTree t = parse_view_xml(d.dump_screen());
  Bounds list;
  for (const ViewNode& n : t.nodes)
    if (n.short_id() == "contact_list") list = n.bounds;
  for (const ViewNode& n : t.nodes)
    if (n.short_id() == "contact_row") {
      EXPECT_TRUE(n.bounds.top >= list.top && n.bounds.bottom <= list.bottom);
    }
  // Scrolling stops at the end of the list; back up returns to the top.
  act(d, R"({"action_type":"scroll","direction":"down"})", "contact_list");
  const std::string end = d.dump_screen();
  act(d, R"({"action_type":"scroll","direction":"down"})", "contact_list");
  EXPECT_EQ(d.dump_screen(), end);
  for (int i = 0; i < 5; ++i) act(d, R"({"action_type":"scroll","direction":"up"})", "contact_list");
  EXPECT_EQ(d.dump_screen(), first);
}

TEST(GuiSim, BackHomeAndUninstall) {
  SimulatedDevice d(kApps);
  d.open_app("Settings");
  act(d, R"({"action_type":"click"})", "apps_entry");
  act(d, R"({"action_type":"click"})", "app_row", "Shop");
  act(d, R"({"action_type":"click"})", "uninstall");
  act(d, R"({"action_type":"click"})", "confirm_uninstall");
  EXPECT_EQ(d.current_activity(), "com.onellm.settings/.Settings$ManageApplicationsActivity");
  for (const InstalledApp& a : d.installed_apps()) EXPECT_NE(a.package, "com.onellm.shop");
  EXPECT_THROW(d.open_app("Shop"), Error);
  d.execute({DeviceCommand::kBack});
  EXPECT_EQ(d.current_activity(), "com.onellm.settings/.Settings");
  d.execute({DeviceCommand::kBack});
  EXPECT_EQ(d.current_activity(), "com.onellm.launcher/.Launcher");
  // The launcher opens apps by tapping their icon.
  act(d, R"({"action_type":"click"})", "app_icon", "Notes");
  EXPECT_EQ(d.current_activity(), "com.onellm.notes/.NotesListActivity");
  d.execute({DeviceCommand::kHome});
  EXPECT_EQ(d.current_activity(), "com.onellm.launcher/.Launcher");
}

TEST(GuiSim, TogglesAndTypingWhereNothingTakesText) {
  SimulatedDevice d(kApps);
  d.open_app("Settings");
  act(d, R"({"action_type":"click"})", "network_entry");
  EXPECT_TRUE(d.app_state("com.onellm.settings")["wifi"].get<bool>());
  act(d, R"({"action_type":"click"})", "wifi_switch");
  EXPECT_FALSE(d.app_state("com.onellm.settings")["wifi"].get<bool>());
  EXPECT_THROW(d.execute({DeviceCommand::kType, 5, 5, 0, 0, 0, "x"}), Error);
  // Tapping where nothing reacts changes nothing.
  const std::string before = d.dump_screen();
  d.execute({DeviceCommand::kTap, 540, 2300});
  EXPECT_EQ(d.dump_screen(), before);
}

TEST(GuiSim, TemplatesReportErrors) {
  json state = {{"items", json::array({"a", "b"})}, {"n", 2}, {"sel", "1"}};
  EXPECT_EQ(render_sim_template("{{#each items}}[{{@index}}={{.}}]{{/each}} {{items.@sel}} {{items.length}}", state,
                                {}, false),
            "[0=a][1=b] b 2");
  EXPECT_EQ(render_sim_template("{{#if n=2}}two{{else}}other{{/if}}{{#if missing}}x{{/if}}", state, {}, false), "two");
  EXPECT_EQ(render_sim_template("{{t}}", json{{"t", "<&\">"}}, {}, true), "&lt;&amp;&quot;&gt;");
  EXPECT_THROW(render_sim_template("{{#each items}}", state, {}, false), Error);
  EXPECT_THROW(render_sim_template("{{/if}}", state, {}, false), Error);
  EXPECT_THROW(render_sim_template("{{x", state, {}, false), Error);
  EXPECT_THROW(render_sim_template("{{$text}}", state, {}, false), Error);
  // Nesting and work are bounded: deep blocks and lists of lists end in an Error, not a stack overflow or a hang.
  std::string deep;
  for (int i = 0; i < 1000; ++i) deep += "{{#if n}}";
  EXPECT_THROW(render_sim_template(deep, state, {}, false), Error);
  json big = {{"l", json::array()}};
  for (int i = 0; i < 200; ++i) big["l"].push_back(i);
  EXPECT_THROW(render_sim_template("{{#each l}}{{#each l}}{{#each l}}{{.}}{{/each}}{{/each}}{{/each}}", big, {}, false),
               Error);
  EXPECT_THROW(render_sim_template("{{" + std::string(100, '@') + "n}}", state, {}, false), Error);
}

TEST(GuiAdb, CommandsForEveryDeviceAction) {
  using V = std::vector<std::string>;
  EXPECT_EQ(adb_command_args({DeviceCommand::kTap, 10, 20}, ""), (V{"shell", "input", "tap", "10", "20"}));
  EXPECT_EQ(adb_command_args({DeviceCommand::kLongPress, 10, 20, 0, 0, 800}, ""),
            (V{"shell", "input", "swipe", "10", "20", "10", "20", "800"}));
  EXPECT_EQ(adb_command_args({DeviceCommand::kSwipe, 1, 2, 3, 4, 300}, ""),
            (V{"shell", "input", "swipe", "1", "2", "3", "4", "300"}));
  EXPECT_EQ(adb_command_args({DeviceCommand::kType, 0, 0, 0, 0, 0, "it's 5 $ & more"}, ""),
            (V{"shell", "input", "text", "it\\'s%s5%s\\$%s\\&%smore"}));
  EXPECT_EQ(adb_command_args({DeviceCommand::kBack}, "")[3], "KEYCODE_BACK");
  EXPECT_EQ(adb_command_args({DeviceCommand::kHome}, "")[3], "KEYCODE_HOME");
  EXPECT_EQ(adb_command_args({DeviceCommand::kEnter}, "")[3], "KEYCODE_ENTER");
  EXPECT_EQ(adb_command_args({DeviceCommand::kOpenApp, 0, 0, 0, 0, 0, "Clock"}, "com.x.clock"),
            (V{"shell", "monkey", "-p", "com.x.clock", "-c", "android.intent.category.LAUNCHER", "1"}));
  EXPECT_THROW(adb_command_args({DeviceCommand::kOpenApp, 0, 0, 0, 0, 0, "Clock"}, ""), Error);
  EXPECT_THROW(adb_escape_input_text("two\nlines"), Error);
}

TEST(GuiAdb, ParsesRecordedOutput) {
  EXPECT_EQ(parse_adb_activity(read_text(kAdbData + "dumpsys_activities_android14.txt")),
            "com.google.android.deskclock/com.android.deskclock.DeskClock");
  EXPECT_EQ(parse_adb_activity(read_text(kAdbData + "dumpsys_activities_android9.txt")), "com.android.settings/.SubSettings");
  EXPECT_THROW(parse_adb_activity("nothing here\n"), Error);
  EXPECT_EQ(parse_adb_packages(read_text(kAdbData + "pm_list_packages.txt")),
            (std::vector<std::string>{"com.google.android.deskclock", "com.example.shop", "org.mozilla.firefox"}));
  EXPECT_EQ(parse_adb_packages(read_text(kAdbData + "pm_list_packages_f.txt")),
            (std::vector<std::string>{"com.example.shop", "com.android.calculator2"}));
  EXPECT_EQ(parse_adb_dump_path(read_text(kAdbData + "uiautomator_dump_ok.txt")), "/sdcard/window_dump.xml");
  try {
    parse_adb_dump_path(read_text(kAdbData + "uiautomator_dump_error.txt"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("null root node"), std::string::npos) << e.what();
  }
}

TEST(GuiAdb, EnvironmentRunsTheExpectedCommandsOnRecordedOutput) {
  // Replays what a device answered; checks what the backend asked.
  std::vector<std::vector<std::string>> asked;
  AdbEnvironment::Runner replay = [&](const std::vector<std::string>& args) -> std::string {
    asked.push_back(args);
    const std::string joined = [&] {
      std::string s;
      for (const auto& a : args) s += a + " ";
      return s;
    }();
    if (joined.find("uiautomator dump") != std::string::npos) return read_text(kAdbData + "uiautomator_dump_ok.txt");
    if (joined.find("exec-out cat") != std::string::npos) return read_text(kAdbData + "window_dump.xml");
    if (joined.find("dumpsys activity") != std::string::npos) return read_text(kAdbData + "dumpsys_activities_android14.txt");
    if (joined.find("pm list packages") != std::string::npos) return read_text(kAdbData + "pm_list_packages.txt");
    return "";
  };
  AdbEnvironment env("emulator-5554", {{"Clock", "com.google.android.deskclock"}}, replay);
  ScreenView v = parse_screen(env.dump_screen());
  EXPECT_GE(v.elements.size(), 5u);
  EXPECT_EQ(asked[0], (std::vector<std::string>{"-s", "emulator-5554", "shell", "uiautomator", "dump", "/sdcard/window_dump.xml"}));
  EXPECT_EQ(env.current_activity(), "com.google.android.deskclock/com.android.deskclock.DeskClock");
  std::vector<InstalledApp> apps = env.installed_apps();
  ASSERT_EQ(apps.size(), 3u);
  EXPECT_EQ(apps[0].name, "Clock");
  asked.clear();
  env.execute({DeviceCommand::kType, 100, 200, 0, 0, 0, "hi there"});
  ASSERT_EQ(asked.size(), 2u);  // focus the field, then type
  EXPECT_EQ(asked[0].back(), "200");
  EXPECT_EQ(asked[1].back(), "hi%sthere");
  asked.clear();
  env.execute({DeviceCommand::kOpenApp, 0, 0, 0, 0, 0, "Clock"});
  EXPECT_EQ(asked[0][5], "com.google.android.deskclock");
}

}  // namespace
}  // namespace onellm

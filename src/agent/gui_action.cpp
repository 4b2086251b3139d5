// AndroidWorld actions: parsing with validation against the current screen,
// the JSON Schema that makes a constrained decoder produce only valid ones,
// and their translation to device commands and to the AITW format.
#include "agent/gui_action.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace onellm {
namespace {

using nlohmann::json;

struct ActionSpec {
  GuiActionType type;
  const char* name;
  bool target;  // takes index or (x, y)
};
constexpr ActionSpec kActions[] = {
    {GuiActionType::kClick, "click", true},           {GuiActionType::kLongPress, "long_press", true},
    {GuiActionType::kInputText, "input_text", true},  {GuiActionType::kScroll, "scroll", true},
    {GuiActionType::kSwipe, "swipe", false},          {GuiActionType::kNavigateBack, "navigate_back", false},
    {GuiActionType::kNavigateHome, "navigate_home", false},
    {GuiActionType::kKeyboardEnter, "keyboard_enter", false},
    {GuiActionType::kOpenApp, "open_app", false},     {GuiActionType::kWait, "wait", false},
    {GuiActionType::kAnswer, "answer", false},        {GuiActionType::kStatus, "status", false},
};
const char* const kDirections[] = {"up", "down", "left", "right"};
constexpr size_t kMaxText = 200;  // characters (code points), as the schema's maxLength counts

[[noreturn]] void bad(const std::string& what) { throw Error("GUI action: " + what); }

int get_int(const json& j, const char* field) {
  const json& v = j.at(field);
  if (v.is_number_integer()) return v.get<int>();
  if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() && std::abs(v.get<double>()) < 1e9)
    return static_cast<int>(v.get<double>());
  bad(std::string("'") + field + "' must be an integer, got " + v.dump());
}

std::string get_string(const json& j, const char* field) {
  if (!j.contains(field)) bad(std::string("'") + field + "' is missing");
  if (!j[field].is_string()) bad(std::string("'") + field + "' must be a string");
  std::string s = j[field].get<std::string>();
  size_t chars = 0;
  for (char c : s) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  if (chars > kMaxText)
    bad(std::string("'") + field + "' is longer than " + std::to_string(kMaxText) + " characters");
  return s;
}

}  // namespace

const char* gui_action_name(GuiActionType type) {
  for (const ActionSpec& s : kActions)
    if (s.type == type) return s.name;
  return "?";
}

GuiAction parse_gui_action(const json& j, int n_elements, const Bounds& screen) {
  if (!j.is_object()) bad("expected a JSON object, got " + std::string(j.type_name()));
  if (!j.contains("action_type") || !j["action_type"].is_string()) bad("'action_type' (a string) is missing");
  const std::string name = j["action_type"].get<std::string>();
  const ActionSpec* spec = nullptr;
  for (const ActionSpec& s : kActions)
    if (name == s.name) spec = &s;
  if (!spec) bad("unknown action_type '" + name + "'");
  GuiAction a;
  a.type = spec->type;
  std::vector<std::string> allowed = {"action_type"};
  if (spec->target) {
    allowed.insert(allowed.end(), {"index", "x", "y"});
    const bool has_index = j.contains("index"), has_x = j.contains("x"), has_y = j.contains("y");
    if (has_index && (has_x || has_y)) bad(name + ": give either 'index' or 'x' and 'y', not both");
    if (has_x != has_y) bad(name + ": 'x' and 'y' go together");
    if (has_index) {
      a.index = get_int(j, "index");
      if (a.index < 0 || a.index >= n_elements)
        bad(name + ": index " + std::to_string(a.index) + " is not an element of this screen (it has " +
            std::to_string(n_elements) + ")");
    } else if (has_x) {
      a.x = get_int(j, "x");
      a.y = get_int(j, "y");
      if (!screen.contains(*a.x, *a.y))
        bad(name + ": point (" + std::to_string(*a.x) + ", " + std::to_string(*a.y) + ") is outside the screen");
    } else if (a.type != GuiActionType::kScroll && a.type != GuiActionType::kInputText) {
      bad(name + ": needs 'index' or 'x' and 'y'");
    }
  }
  if (a.type == GuiActionType::kInputText || a.type == GuiActionType::kAnswer) {
    allowed.push_back("text");
    a.text = get_string(j, "text");
  }
  if (a.type == GuiActionType::kScroll || a.type == GuiActionType::kSwipe) {
    allowed.push_back("direction");
    a.direction = get_string(j, "direction");
    if (std::find(std::begin(kDirections), std::end(kDirections), a.direction) == std::end(kDirections))
      bad(name + ": direction '" + a.direction + "' is not up, down, left or right");
  }
  if (a.type == GuiActionType::kOpenApp) {
    allowed.push_back("app_name");
    a.app_name = get_string(j, "app_name");
    if (a.app_name.empty()) bad("open_app: 'app_name' is empty");
  }
  if (a.type == GuiActionType::kStatus) {
    allowed.push_back("goal_status");
    a.goal_status = get_string(j, "goal_status");
    if (a.goal_status != "complete" && a.goal_status != "infeasible")
      bad("status: goal_status '" + a.goal_status + "' is not complete or infeasible");
  }
  for (auto it = j.begin(); it != j.end(); ++it)
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end())
      bad(name + ": unexpected field '" + it.key() + "'");
  return a;
}

GuiAction parse_gui_action_text(std::string_view text, int n_elements, const Bounds& screen) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) bad("not valid JSON: " + std::string(text.substr(0, 200)));
  return parse_gui_action(j, n_elements, screen);
}

json gui_action_to_json(const GuiAction& a) {
  json j = {{"action_type", gui_action_name(a.type)}};
  if (a.index >= 0) j["index"] = a.index;
  if (a.x) j["x"] = *a.x;
  if (a.y) j["y"] = *a.y;
  if (a.type == GuiActionType::kInputText || a.type == GuiActionType::kAnswer) j["text"] = a.text;
  if (!a.direction.empty()) j["direction"] = a.direction;
  if (!a.app_name.empty()) j["app_name"] = a.app_name;
  if (!a.goal_status.empty()) j["goal_status"] = a.goal_status;
  return j;
}

json gui_action_schema(int n_elements, const std::vector<std::string>& apps) {
  auto variant = [](const char* name, json props, std::vector<std::string> required) {
    props["action_type"] = {{"const", name}};
    required.insert(required.begin(), "action_type");
    return json{{"type", "object"}, {"properties", props}, {"required", required}, {"additionalProperties", false}};
  };
  const json index = {{"type", "integer"}, {"minimum", 0}, {"maximum", std::max(0, n_elements - 1)}};
  const json text = {{"type", "string"}, {"maxLength", kMaxText}};
  const json direction = {{"enum", {"up", "down", "left", "right"}}};
  json app = {{"type", "string"}, {"minLength", 1}, {"maxLength", 100}};
  if (!apps.empty()) app = {{"enum", apps}};
  json variants = json::array();
  if (n_elements > 0) {
    for (const char* name : {"click", "long_press"}) variants.push_back(variant(name, {{"index", index}}, {"index"}));
    variants.push_back(variant("input_text", {{"index", index}, {"text", text}}, {"index", "text"}));
    variants.push_back(variant("scroll", {{"index", index}, {"direction", direction}}, {"direction"}));
  } else {
    variants.push_back(variant("scroll", {{"direction", direction}}, {"direction"}));
  }
  variants.push_back(variant("swipe", {{"direction", direction}}, {"direction"}));
  for (const char* name : {"navigate_back", "navigate_home", "keyboard_enter", "wait"})
    variants.push_back(variant(name, json::object(), {}));
  variants.push_back(variant("open_app", {{"app_name", app}}, {"app_name"}));
  variants.push_back(variant("answer", {{"text", text}}, {"text"}));
  variants.push_back(variant("status", {{"goal_status", {{"enum", {"complete", "infeasible"}}}}}, {"goal_status"}));
  return {{"$schema", "https://json-schema.org/draft/2020-12/schema"}, {"title", "AndroidWorld action"},
          {"oneOf", variants}};
}

DeviceCommand device_command(const GuiAction& a, const ScreenView& screen) {
  DeviceCommand c;
  const Bounds s = screen.screen;
  auto target = [&](int& x, int& y) {
    if (a.index >= 0) {
      if (a.index >= static_cast<int>(screen.elements.size()))
        throw Error("GUI action: index " + std::to_string(a.index) + " is not on this screen");
      const Bounds& b = screen.elements[a.index].bounds;
      // Centre of the part of the element that is on screen.
      const Bounds v{std::max(b.left, s.left), std::max(b.top, s.top), std::min(b.right, s.right),
                     std::min(b.bottom, s.bottom)};
      x = v.center_x();
      y = v.center_y();
    } else if (a.x) {
      x = *a.x;
      y = *a.y;
    } else {
      x = s.center_x();
      y = s.center_y();
    }
  };
  switch (a.type) {
    case GuiActionType::kClick: c.kind = DeviceCommand::kTap; target(c.x, c.y); break;
    case GuiActionType::kLongPress: c.kind = DeviceCommand::kLongPress; target(c.x, c.y); c.duration_ms = 1000; break;
    case GuiActionType::kInputText:
      c.kind = DeviceCommand::kType;
      target(c.x, c.y);
      c.text = a.text;
      break;
    case GuiActionType::kScroll:
    case GuiActionType::kSwipe: {
      Bounds area = s;
      if (a.type == GuiActionType::kScroll && a.index >= 0) area = screen.elements.at(a.index).bounds;
      const int cx = area.center_x(), cy = area.center_y();
      const int dx = area.width() * 3 / 8, dy = area.height() * 3 / 8;
      c.kind = DeviceCommand::kSwipe;
      c.duration_ms = 400;
      // Scrolling content down means the finger moves up; a swipe names the finger's direction.
      const bool scroll = a.type == GuiActionType::kScroll;
      const std::string& d = a.direction;
      int sign = (d == "down" || d == "right") ? 1 : -1;
      if (scroll) sign = -sign;
      if (d == "up" || d == "down") {
        c.x = c.x2 = cx;
        c.y = cy - sign * dy;
        c.y2 = cy + sign * dy;
      } else {
        c.y = c.y2 = cy;
        c.x = cx - sign * dx;
        c.x2 = cx + sign * dx;
      }
      break;
    }
    case GuiActionType::kNavigateBack: c.kind = DeviceCommand::kBack; break;
    case GuiActionType::kNavigateHome: c.kind = DeviceCommand::kHome; break;
    case GuiActionType::kKeyboardEnter: c.kind = DeviceCommand::kEnter; break;
    case GuiActionType::kOpenApp: c.kind = DeviceCommand::kOpenApp; c.text = a.app_name; break;
    default: c.kind = DeviceCommand::kNone; break;
  }
  return c;
}

json gui_action_to_aitw(const GuiAction& a, const ScreenView& screen) {
  const Bounds s = screen.screen;
  auto norm = [&](int x, int y) {
    auto r = [](double v) { return std::round(v * 10000) / 10000; };
    return json::array({r(double(y - s.top) / std::max(1, s.height())), r(double(x - s.left) / std::max(1, s.width()))});
  };
  json out = {{"typed_text", ""}, {"touch_point", {-1, -1}}, {"lift_point", {-1, -1}}};
  const DeviceCommand c = device_command(a, screen);
  switch (a.type) {
    case GuiActionType::kClick:
    case GuiActionType::kLongPress:
      out["action_type"] = "DUAL_POINT";
      out["touch_point"] = out["lift_point"] = norm(c.x, c.y);
      break;
    case GuiActionType::kScroll:
    case GuiActionType::kSwipe:
      out["action_type"] = "DUAL_POINT";
      out["touch_point"] = norm(c.x, c.y);
      out["lift_point"] = norm(c.x2, c.y2);
      break;
    case GuiActionType::kInputText:
      out["action_type"] = "TYPE";
      out["typed_text"] = a.text;
      if (a.index >= 0 || a.x) out["touch_point"] = out["lift_point"] = norm(c.x, c.y);
      break;
    case GuiActionType::kNavigateBack: out["action_type"] = "PRESS_BACK"; break;
    case GuiActionType::kNavigateHome: out["action_type"] = "PRESS_HOME"; break;
    case GuiActionType::kKeyboardEnter: out["action_type"] = "PRESS_ENTER"; break;
    case GuiActionType::kStatus:
      out["action_type"] = a.goal_status == "complete" ? "STATUS_TASK_COMPLETE" : "STATUS_TASK_IMPOSSIBLE";
      break;
    case GuiActionType::kOpenApp: out["action_type"] = "OPEN_APP"; out["typed_text"] = a.app_name; break;
    case GuiActionType::kAnswer: out["action_type"] = "ANSWER"; out["typed_text"] = a.text; break;
    case GuiActionType::kWait: out["action_type"] = "WAIT"; break;
  }
  return out;
}

}  // namespace onellm

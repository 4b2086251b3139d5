// The GUI agent's action space (AndroidWorld's JSON actions), its validation
// and JSON Schema for constrained decoding, the low-level device commands an
// action becomes, and the AITW/LlamaTouch export format.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/view_hierarchy.h"

namespace onellm {

enum class GuiActionType {
  kClick, kLongPress, kInputText, kScroll, kSwipe, kNavigateBack, kNavigateHome, kKeyboardEnter, kOpenApp,
  kWait, kAnswer, kStatus
};
const char* gui_action_name(GuiActionType type);  // "click", "input_text", ...

struct GuiAction {
  GuiActionType type = GuiActionType::kWait;
  int index = -1;                 // element index (click, long_press, input_text, scroll); -1: none
  std::optional<int> x, y;        // or a screen point
  std::string text;               // input_text, answer
  std::string direction;          // scroll, swipe: up | down | left | right
  std::string app_name;           // open_app
  std::string goal_status;        // status: complete | infeasible
  bool operator==(const GuiAction&) const = default;
};

// Validates against the current screen: index < n_elements, points inside
// the screen, required fields present, no unknown fields. Throws Error naming
// the field at fault.
GuiAction parse_gui_action(const nlohmann::json& j, int n_elements, const Bounds& screen = {0, 0, 1080, 2400});
// The same from model output text (the JSON object, surrounding space allowed).
GuiAction parse_gui_action_text(std::string_view text, int n_elements, const Bounds& screen = {0, 0, 1080, 2400});
nlohmann::json gui_action_to_json(const GuiAction& a);

// JSON Schema (draft 2020-12 subset: type, enum, const, required, properties,
// additionalProperties, minimum/maximum, maxLength, oneOf) accepting exactly
// the valid actions on a screen with n_elements elements (no index fields
// when there are none); open_app names are limited to `apps` when given.
nlohmann::json gui_action_schema(int n_elements, const std::vector<std::string>& apps = {});

// What an action does on a device, with element indices resolved to points.
struct DeviceCommand {
  enum Kind { kTap, kLongPress, kType, kSwipe, kBack, kHome, kEnter, kOpenApp, kNone } kind = kNone;
  int x = 0, y = 0, x2 = 0, y2 = 0;  // tap/type point, swipe from (x,y) to (x2,y2)
  int duration_ms = 0;                // swipe and long press
  std::string text{};                 // type, open_app
};
// Throws Error if the action's index is not on the screen. Scroll "down"
// moves content up: the finger swipes from bottom to top.
DeviceCommand device_command(const GuiAction& a, const ScreenView& screen);

// AITW / LlamaTouch format: action_type DUAL_POINT (touch_point and
// lift_point as [y, x] normalized to 0..1), TYPE (typed_text), PRESS_BACK,
// PRESS_HOME, PRESS_ENTER, STATUS_TASK_COMPLETE, STATUS_TASK_IMPOSSIBLE;
// actions AITW has no code for (open_app, wait, answer) keep their
// AndroidWorld names in upper case.
nlohmann::json gui_action_to_aitw(const GuiAction& a, const ScreenView& screen);

}  // namespace onellm

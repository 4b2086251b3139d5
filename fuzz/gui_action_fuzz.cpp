// Arbitrary bytes through the GUI agent's other parsers: model output as an
// action (validated against a screen) and the simulator's screen templates.
// Every input ends in a value or an onellm::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/gui_environment.h"
#include "base/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  static const onellm::ScreenView screen = onellm::parse_screen(
      "<hierarchy><node class=\"android.widget.Button\" text=\"Save\" clickable=\"true\" bounds=\"[0,0][500,500]\"/>"
      "<node class=\"android.widget.ListView\" scrollable=\"true\" bounds=\"[0,500][1080,2400]\"/></hierarchy>");
  try {
    onellm::GuiAction a = onellm::parse_gui_action_text(in, static_cast<int>(screen.elements.size()), screen.screen);
    (void)onellm::gui_action_to_aitw(a, screen);
    (void)onellm::device_command(a, screen);
  } catch (const onellm::Error&) {
  }
  try {
    const nlohmann::json state = {{"items", {{{"name", "a"}}, {{"name", "b"}}}}, {"sel", "1"}, {"on", true}};
    (void)onellm::render_sim_template(in, state, {{"$index", 1}}, true);
  } catch (const onellm::Error&) {
  }
  return 0;
}

// Arbitrary bytes through the uiautomator XML parser and the compact screen
// forms: every input ends in a ScreenView or an onellm::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/view_hierarchy.h"
#include "base/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  try {
    onellm::ViewParseLimits limits;
    limits.max_depth = 64;
    limits.max_nodes = 5000;
    onellm::ScreenView view = onellm::build_screen_view(onellm::parse_view_xml(in, limits));
    (void)view.html();
    (void)view.element_list();
    (void)view.element_at(100, 100);
    // What we write must parse back to the same number of nodes.
    onellm::ViewTree again = onellm::parse_view_xml(onellm::write_view_xml(view.tree));
    if (again.nodes.size() != view.tree.nodes.size()) __builtin_trap();
  } catch (const onellm::Error&) {
  }
  return 0;
}

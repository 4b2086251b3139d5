// Android screens as the agent sees them: the view hierarchy of a
// `uiautomator dump` (parsed by our own small XML reader), and the compact
// prompt forms built from it with an index <-> node map.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace onellm {

struct Bounds {
  int left = 0, top = 0, right = 0, bottom = 0;
  int width() const { return right - left; }
  int height() const { return bottom - top; }
  bool empty() const { return right <= left || bottom <= top; }
  bool contains(int x, int y) const { return x >= left && x < right && y >= top && y < bottom; }
  int center_x() const { return left + width() / 2; }
  int center_y() const { return top + height() / 2; }
  bool operator==(const Bounds&) const = default;
};

// One <node> of the dump. Missing attributes keep these defaults.
struct ViewNode {
  std::string class_name, text, content_desc, resource_id, package;
  Bounds bounds;
  bool has_bounds = false;
  bool clickable = false, long_clickable = false, checkable = false, checked = false, scrollable = false,
       enabled = true, focusable = false, focused = false, selected = false, password = false;
  int parent = -1;  // index in ViewTree::nodes
  std::vector<int> children;
  int depth = 0;
  int sibling_index = 0;  // position among the parent's children
  // Attributes a dump may carry beyond the standard ones (kept, not written back).
  std::vector<std::pair<std::string, std::string>> other_attributes;
  const std::string* attribute(std::string_view name) const;
  std::string short_class() const;  // "Button" for "android.widget.Button"
  std::string short_id() const;     // "save" for "com.app:id/save"
  bool editable() const;
};

// Nodes in document order (parents before children), data-oriented: a flat
// vector with index links rather than owning pointers.
struct ViewTree {
  std::vector<ViewNode> nodes;
  std::vector<int> roots;  // the top-level nodes under <hierarchy>
  Bounds screen() const;   // union of the roots' bounds (1080x2400 when none)
  // "/hierarchy/node[1]/node[3]" with 1-based positions, as XPath counts.
  std::string xpath(int node) const;
};

struct ViewParseLimits {
  int max_depth = 256;
  size_t max_nodes = 100000;
};

// Parses a uiautomator dump. Elements other than <node> are skipped with
// their subtree's nodes attached to the nearest <node> ancestor. Throws
// Error("view hierarchy XML: line L, column C: ...") on malformed input.
ViewTree parse_view_xml(std::string_view xml, ViewParseLimits limits = {});

// Writes a tree back as a uiautomator dump (every attribute, canonical order).
std::string write_view_xml(const ViewTree& tree);

// --- compact prompt forms ---------------------------------------------------

// One element the agent can refer to by index.
struct ScreenElement {
  int node = -1;     // in the ViewTree
  std::string tag;   // button, input, checkbox, scroller, img, p
  std::string text;  // own text + text of non-interactive descendants, truncated
  std::string hint;  // text fields: content-desc or resource-id name (what the field is for)
  Bounds bounds;
  std::string xpath;
  bool checked = false, enabled = true, focused = false, selected = false;
};

struct ScreenOptions {
  size_t max_text_chars = 60;  // longer text is cut with "..."
};

struct ScreenView {
  ViewTree tree;
  Bounds screen;
  std::vector<ScreenElement> elements;  // index = element id
  std::string html() const;             // <button id=3>Save</button> per line
  std::string element_list() const;     // 3: button "Save" per line
  int element_at(int x, int y) const;   // smallest element containing the point, -1 if none
};

ScreenView build_screen_view(ViewTree tree, ScreenOptions options = {});
inline ScreenView parse_screen(std::string_view xml) { return build_screen_view(parse_view_xml(xml)); }

}  // namespace onellm

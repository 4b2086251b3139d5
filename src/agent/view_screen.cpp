// Compact prompt forms of a screen. Only what an agent can act on or read
// gets an index: interactive nodes (with the text of their non-interactive
// descendants merged in, as a user sees a list row as one thing) and text
// outside any interactive node. Invisible, zero-size and purely decorative
// nodes are dropped, which is most of a raw dump.
#include <algorithm>

#include "agent/view_hierarchy.h"

namespace onellm {
namespace {

bool interactive(const ViewNode& n) {
  return n.clickable || n.long_clickable || n.checkable || n.scrollable || n.editable();
}

std::string tag_of(const ViewNode& n) {
  const std::string c = n.short_class();
  if (n.editable()) return "input";
  if (n.checkable || c == "CheckBox" || c == "Switch" || c == "ToggleButton" || c == "RadioButton") return "checkbox";
  if (n.clickable || n.long_clickable) return "button";
  if (n.scrollable) return "scroller";
  if (c.find("Image") != std::string::npos) return "img";
  return "p";
}

// Cuts at a UTF-8 character boundary.
std::string truncate_text(const std::string& s, size_t max_chars) {
  size_t chars = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && chars++ == max_chars) break;
  }
  return i < s.size() ? s.substr(0, i) + "..." : s;
}

std::string collapse_space(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (space) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

struct Builder {
  const ViewTree& tree;
  Bounds screen;
  ScreenOptions options;
  std::vector<ScreenElement> elements;

  bool visible(const ViewNode& n) const {
    if (!n.has_bounds || n.bounds.empty()) return false;
    const Bounds& b = n.bounds;
    return b.right > screen.left && b.left < screen.right && b.bottom > screen.top && b.top < screen.bottom;
  }
  static std::string own_text(const ViewNode& n) {
    if (!n.text.empty()) return n.text;
    return n.content_desc;
  }
  // Text of visible, non-interactive descendants (interactive ones get their own element).
  void gather_text(int i, std::string& out) const {
    for (int c : tree.nodes[i].children) {
      const ViewNode& n = tree.nodes[c];
      if (interactive(n) && visible(n)) continue;
      std::string t = visible(n) || !n.has_bounds ? own_text(n) : "";
      // An image's description often repeats the label next to it: say it once.
      if (!t.empty() && out.find(t) == std::string::npos) {
        if (!out.empty()) out += ' ';
        out += t;
      }
      gather_text(c, out);
    }
  }
  void add(int i, bool inside_interactive) {
    const ViewNode& n = tree.nodes[i];
    const bool shown = visible(n);
    if (shown && interactive(n)) {
      ScreenElement e;
      e.node = i;
      e.tag = tag_of(n);
      std::string text = n.editable() ? n.text : own_text(n);
      if (n.editable()) e.hint = n.content_desc.empty() ? n.short_id() : n.content_desc;
      if (!n.scrollable && !n.editable()) {
        std::string merged;
        gather_text(i, merged);
        if (!merged.empty()) text = text.empty() ? merged : text + " " + merged;
      }
      if (text.empty() && !n.editable()) text = n.content_desc.empty() ? n.short_id() : n.content_desc;
      if (n.password && !text.empty()) text = "********";
      e.text = truncate_text(collapse_space(text), options.max_text_chars);
      e.bounds = n.bounds;
      e.xpath = tree.xpath(i);
      e.checked = n.checked;
      e.enabled = n.enabled;
      e.focused = n.focused;
      e.selected = n.selected;
      elements.push_back(std::move(e));
      inside_interactive = !n.scrollable;
    } else if (shown && !inside_interactive && !own_text(n).empty()) {
      ScreenElement e;
      e.node = i;
      e.tag = tag_of(n);
      e.text = truncate_text(collapse_space(own_text(n)), options.max_text_chars);
      e.bounds = n.bounds;
      e.xpath = tree.xpath(i);
      e.enabled = n.enabled;
      e.selected = n.selected;
      if (!e.text.empty()) elements.push_back(std::move(e));
    }
    for (int c : n.children) add(c, inside_interactive);
  }
};

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

}  // namespace

ScreenView build_screen_view(ViewTree tree, ScreenOptions options) {
  ScreenView view;
  view.screen = tree.screen();
  view.tree = std::move(tree);
  Builder b{view.tree, view.screen, options, {}};
  for (int r : view.tree.roots) b.add(r, false);
  view.elements = std::move(b.elements);
  return view;
}

std::string ScreenView::html() const {
  std::string out;
  for (size_t i = 0; i < elements.size(); ++i) {
    const ScreenElement& e = elements[i];
    out += "<" + e.tag + " id=" + std::to_string(i);
    if (!e.hint.empty()) out += " hint=\"" + html_escape(e.hint) + "\"";
    if (e.tag == "checkbox" && e.checked) out += " checked";
    if (!e.enabled) out += " disabled";
    if (e.selected) out += " selected";
    if (e.focused) out += " focused";
    out += ">";
    if (e.tag == "input" && e.text.empty()) {
      out += "\n";
      continue;
    }
    out += html_escape(e.text) + "</" + e.tag + ">\n";
  }
  return out;
}

std::string ScreenView::element_list() const {
  std::string out;
  for (size_t i = 0; i < elements.size(); ++i) {
    const ScreenElement& e = elements[i];
    out += std::to_string(i) + ": " + e.tag;
    if (!e.hint.empty()) out += " (" + e.hint + ")";
    if (!e.text.empty()) out += " \"" + e.text + "\"";
    if (e.tag == "checkbox") out += e.checked ? " checked" : " unchecked";
    if (!e.enabled) out += " disabled";
    if (e.selected) out += " selected";
    if (e.focused) out += " focused";
    out += "\n";
  }
  return out;
}

int ScreenView::element_at(int x, int y) const {
  int best = -1;
  long best_area = 0;
  for (size_t i = 0; i < elements.size(); ++i) {
    const Bounds& b = elements[i].bounds;
    if (!b.contains(x, y)) continue;
    const long area = static_cast<long>(b.width()) * b.height();
    if (best < 0 || area < best_area) {
      best = static_cast<int>(i);
      best_area = area;
    }
  }
  return best;
}

}  // namespace onellm

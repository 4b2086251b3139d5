// A small XML reader for uiautomator dumps: elements and attributes with
// entity decoding; prolog, comments, CDATA, DOCTYPE and character data are
// skipped (a dump keeps everything in attributes). Not a general XML parser:
// no namespaces, no DTD entities.
#include <cstdio>
#include <cstring>

#include "base/utf8.h"
#include "agent/view_hierarchy.h"
#include "base/error.h"

namespace onellm {
namespace {

class XmlReader {
 public:
  XmlReader(std::string_view in, ViewParseLimits limits) : in_(in), limits_(limits) {}

  ViewTree read() {
    skip_misc();
    if (at_end()) fail("no root element");
    read_element(-1, 0);
    skip_misc();
    if (!at_end()) fail("content after the root element");
    if (tree_.nodes.empty() && !saw_hierarchy_) fail("no <hierarchy> or <node> element");
    return std::move(tree_);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    int line = 1, col = 1;
    for (size_t i = 0; i < pos_ && i < in_.size(); ++i) {
      if (in_[i] == '\n') {
        ++line;
        col = 1;
      } else if ((static_cast<unsigned char>(in_[i]) & 0xC0) != 0x80) {
        ++col;  // count characters, not UTF-8 continuation bytes
      }
    }
    throw Error("view hierarchy XML: line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + what);
  }
  bool at_end() const { return pos_ >= in_.size(); }
  bool starts_with(std::string_view s) const { return in_.substr(pos_, s.size()) == s; }
  static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
  void skip_space() {
    while (!at_end() && is_space(in_[pos_])) ++pos_;
  }
  void skip_past(std::string_view end, const char* what) {
    size_t e = in_.find(end, pos_);
    if (e == std::string_view::npos) fail(std::string("unterminated ") + what);
    pos_ = e + end.size();
  }
  // Skips what may surround or sit between elements: space, <?..?>,
  // comments, DOCTYPE, CDATA.
  bool skip_markup() {
    if (starts_with("<?")) return skip_past("?>", "processing instruction"), true;
    if (starts_with("<!--")) return skip_past("-->", "comment"), true;
    if (starts_with("<![CDATA[")) return skip_past("]]>", "CDATA section"), true;
    if (starts_with("<!")) return skip_past(">", "declaration"), true;
    return false;
  }
  void skip_misc() {
    for (;;) {
      skip_space();
      if (!skip_markup()) return;
    }
  }
  static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == ':' || c == '.' || (static_cast<unsigned char>(c) >= 0x80);
  }
  std::string_view read_name(const char* what) {
    size_t start = pos_;
    while (!at_end() && is_name_char(in_[pos_])) ++pos_;
    if (pos_ == start) fail(std::string("expected ") + what);
    return in_.substr(start, pos_ - start);
  }
  void read_entity(std::string& out) {
    size_t semi = in_.find(';', pos_);
    if (semi == std::string_view::npos || semi - pos_ > 12) fail("'&' does not start an entity (write &amp;)");
    std::string_view name = in_.substr(pos_ + 1, semi - pos_ - 1);
    if (name == "lt") out += '<';
    else if (name == "gt") out += '>';
    else if (name == "amp") out += '&';
    else if (name == "quot") out += '"';
    else if (name == "apos") out += '\'';
    else if (name.size() > 1 && name[0] == '#') {
      const bool hex = name[1] == 'x' || name[1] == 'X';
      std::string_view digits = name.substr(hex ? 2 : 1);
      if (digits.empty()) fail("empty character reference");
      uint32_t cp = 0;
      for (char c : digits) {
        int d = (c >= '0' && c <= '9') ? c - '0'
                : hex && (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : hex && (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                                 : -1;
        if (d < 0) fail("bad digit in character reference &" + std::string(name) + ";");
        cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(d);
        if (cp > 0x10FFFF) fail("character reference beyond U+10FFFF");
      }
      if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) fail("character reference to an invalid code point");
      append_utf8(out, cp);
    } else {
      fail("unknown entity &" + std::string(name) + ";");
    }
    pos_ = semi + 1;
  }
  std::string read_attribute_value() {
    if (at_end() || (in_[pos_] != '"' && in_[pos_] != '\'')) fail("attribute value must be quoted");
    const char quote = in_[pos_++];
    std::string out;
    for (;;) {
      if (at_end()) fail("unterminated attribute value");
      char c = in_[pos_];
      if (c == quote) break;
      if (c == '<') fail("'<' inside an attribute value");
      if (c == '&') {
        read_entity(out);
        continue;
      }
      out += c;
      ++pos_;
    }
    ++pos_;
    return out;
  }
  static bool parse_bool(const std::string& v) { return v == "true"; }
  void parse_bounds(ViewNode& node, const std::string& v) {
    // "[l,t][r,b]"; anything else leaves the node without bounds (tolerated).
    int l, t, r, b;
    char tail;
    if (std::sscanf(v.c_str(), "[%d,%d][%d,%d]%c", &l, &t, &r, &b, &tail) == 4) {
      node.bounds = {l, t, r, b};
      node.has_bounds = true;
    }
  }
  void set_attribute(ViewNode& node, std::string_view name, std::string value) {
    if (name == "text") node.text = std::move(value);
    else if (name == "class") node.class_name = std::move(value);
    else if (name == "content-desc") node.content_desc = std::move(value);
    else if (name == "resource-id") node.resource_id = std::move(value);
    else if (name == "package") node.package = std::move(value);
    else if (name == "bounds") parse_bounds(node, value);
    else if (name == "clickable") node.clickable = parse_bool(value);
    else if (name == "long-clickable") node.long_clickable = parse_bool(value);
    else if (name == "checkable") node.checkable = parse_bool(value);
    else if (name == "checked") node.checked = parse_bool(value);
    else if (name == "scrollable") node.scrollable = parse_bool(value);
    else if (name == "enabled") node.enabled = value != "false";
    else if (name == "focusable") node.focusable = parse_bool(value);
    else if (name == "focused") node.focused = parse_bool(value);
    else if (name == "selected") node.selected = parse_bool(value);
    else if (name == "password") node.password = parse_bool(value);
    else if (name != "index") node.other_attributes.emplace_back(name, std::move(value));
  }

  // Reads one element at pos_ ('<'); `parent` is the nearest <node> ancestor.
  void read_element(int parent, int depth) {
    if (depth >= limits_.max_depth) fail("elements nested deeper than " + std::to_string(limits_.max_depth));
    if (at_end() || in_[pos_] != '<') fail("expected '<'");
    ++pos_;
    std::string_view name = read_name("an element name");
    const bool is_node = name == "node";
    if (name == "hierarchy") saw_hierarchy_ = true;
    ViewNode node;
    for (;;) {
      const size_t before = pos_;
      skip_space();
      if (at_end()) fail("unterminated start tag <" + std::string(name) + ">");
      if (in_[pos_] == '/' || in_[pos_] == '>') break;
      if (pos_ == before) fail("expected space before an attribute");
      std::string_view attr = read_name("an attribute name");
      skip_space();
      if (at_end() || in_[pos_] != '=') fail("expected '=' after attribute " + std::string(attr));
      ++pos_;
      skip_space();
      std::string value = read_attribute_value();
      if (is_node) set_attribute(node, attr, std::move(value));
    }
    int self = parent;
    if (is_node) {
      if (tree_.nodes.size() >= limits_.max_nodes) fail("more than " + std::to_string(limits_.max_nodes) + " nodes");
      node.parent = parent;
      node.depth = parent < 0 ? 0 : tree_.nodes[parent].depth + 1;
      self = static_cast<int>(tree_.nodes.size());
      if (parent < 0) {
        node.sibling_index = static_cast<int>(tree_.roots.size());
        tree_.roots.push_back(self);
      } else {
        node.sibling_index = static_cast<int>(tree_.nodes[parent].children.size());
        tree_.nodes[parent].children.push_back(self);
      }
      tree_.nodes.push_back(std::move(node));
    }
    if (in_[pos_] == '/') {
      ++pos_;
      if (at_end() || in_[pos_] != '>') fail("expected '>' after '/'");
      ++pos_;
      return;
    }
    ++pos_;  // '>'
    for (;;) {
      if (at_end()) fail("element <" + std::string(name) + "> is not closed");
      if (skip_markup()) continue;
      if (starts_with("</")) {
        pos_ += 2;
        std::string_view end = read_name("an end tag name");
        if (end != name) fail("end tag </" + std::string(end) + "> does not match <" + std::string(name) + ">");
        skip_space();
        if (at_end() || in_[pos_] != '>') fail("expected '>' in end tag");
        ++pos_;
        return;
      }
      if (in_[pos_] == '<') {
        read_element(self, depth + 1);
      } else if (in_[pos_] == '&') {
        std::string ignored;
        read_entity(ignored);  // character data is ignored but must be well formed
      } else {
        ++pos_;
      }
    }
  }

  std::string_view in_;
  ViewParseLimits limits_;
  size_t pos_ = 0;
  bool saw_hierarchy_ = false;
  ViewTree tree_;
};

void escape_attribute(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\n': out += "&#10;"; break;
      default: out += c;
    }
  }
}

void write_node(const ViewTree& tree, int i, std::string& out) {
  const ViewNode& n = tree.nodes[i];
  auto attr = [&](const char* name, std::string_view v) {
    out += ' ';
    out += name;
    out += "=\"";
    escape_attribute(out, v);
    out += '"';
  };
  auto flag = [&](const char* name, bool v) { attr(name, v ? "true" : "false"); };
  out += "<node";
  attr("index", std::to_string(n.sibling_index));
  attr("text", n.text);
  attr("resource-id", n.resource_id);
  attr("class", n.class_name);
  attr("package", n.package);
  attr("content-desc", n.content_desc);
  flag("checkable", n.checkable);
  flag("checked", n.checked);
  flag("clickable", n.clickable);
  flag("enabled", n.enabled);
  flag("focusable", n.focusable);
  flag("focused", n.focused);
  flag("scrollable", n.scrollable);
  flag("long-clickable", n.long_clickable);
  flag("password", n.password);
  flag("selected", n.selected);
  const Bounds& b = n.bounds;
  char bounds[64];
  std::snprintf(bounds, sizeof bounds, "[%d,%d][%d,%d]", b.left, b.top, b.right, b.bottom);
  attr("bounds", bounds);
  if (n.children.empty()) {
    out += " />";
    return;
  }
  out += '>';
  for (int c : n.children) write_node(tree, c, out);
  out += "</node>";
}

}  // namespace

const std::string* ViewNode::attribute(std::string_view name) const {
  for (const auto& [k, v] : other_attributes)
    if (k == name) return &v;
  return nullptr;
}

std::string ViewNode::short_class() const {
  size_t dot = class_name.rfind('.');
  return dot == std::string::npos ? class_name : class_name.substr(dot + 1);
}

std::string ViewNode::short_id() const {
  size_t slash = resource_id.rfind('/');
  return slash == std::string::npos ? resource_id : resource_id.substr(slash + 1);
}

bool ViewNode::editable() const {
  return class_name.find("EditText") != std::string::npos || class_name.find("AutoCompleteTextView") != std::string::npos;
}

Bounds ViewTree::screen() const {
  Bounds s;
  bool any = false;
  for (int r : roots) {
    const ViewNode& n = nodes[r];
    if (!n.has_bounds || n.bounds.empty()) continue;
    s = any ? Bounds{std::min(s.left, n.bounds.left), std::min(s.top, n.bounds.top),
                     std::max(s.right, n.bounds.right), std::max(s.bottom, n.bounds.bottom)}
            : n.bounds;
    any = true;
  }
  return any ? s : Bounds{0, 0, 1080, 2400};
}

std::string ViewTree::xpath(int node) const {
  std::string path;
  for (int i = node; i >= 0; i = nodes[i].parent) path = "/node[" + std::to_string(nodes[i].sibling_index + 1) + "]" + path;
  return "/hierarchy" + path;
}

ViewTree parse_view_xml(std::string_view xml, ViewParseLimits limits) {
  return XmlReader(xml, limits).read();
}

std::string write_view_xml(const ViewTree& tree) {
  std::string out = "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"0\">";
  for (int r : tree.roots) write_node(tree, r, out);
  out += "</hierarchy>";
  return out;
}

}  // namespace onellm

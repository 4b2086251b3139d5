// The simulated phone: apps declared in data files, each a set of screens
// (XML templates over the app's JSON state) and transitions (what a tap,
// typed text, Enter or Back does on which element). Screens are laid out
// here — flowing nodes stacked in columns or rows, scrollable containers
// clipped to what fits, as a RecyclerView only has views for visible rows —
// and dumped as uiautomator XML, so the agent sees what a phone would show.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "agent/gui_environment.h"
#include "base/error.h"

namespace onellm {

using nlohmann::json;

struct SimScreen {
  std::string activity;
  std::string tpl;
};

struct SimApp {
  std::string name, package, start;
  json state;
  std::map<std::string, SimScreen> screens;
  json transitions = json::array();
};

struct SimulatedDevice::Rendered {
  ViewTree tree;  // laid out; template hints (bind, goto, item, h, row) kept in other_attributes
  std::string xml;
  std::map<std::string, int> content_height;  // scroller key -> height of its content
};

namespace {

constexpr int kWidth = 1080, kHeight = 2400, kLeafHeight = 120;
const char* const kLauncherPackage = "com.onellm.launcher";
const char* const kLauncherTemplate = R"(<hierarchy>
<node class="android.widget.FrameLayout" bounds="[0,0][1080,2400]">
 <node class="android.widget.TextView" resource-id="date" text="Tue, Dec 1" h="300"/>
 <node class="android.view.ViewGroup" resource-id="workspace" h="1800">
  {{#each device.apps}}<node class="android.widget.TextView" resource-id="app_icon" text="{{.name}}" content-desc="{{.name}}" clickable="true" long-clickable="true" item="{{@index}}" h="150"/>{{/each}}
 </node>
</node></hierarchy>)";

std::string read_file_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error(p.string() + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int attr_int(const ViewNode& n, const char* name, int fallback) {
  const std::string* v = n.attribute(name);
  if (!v) return fallback;
  try {
    return std::stoi(*v);
  } catch (const std::exception&) {
    throw Error("simulator screen: attribute " + std::string(name) + "=\"" + *v + "\" is not a number");
  }
}

Bounds intersect(const Bounds& a, const Bounds& b) {
  return {std::max(a.left, b.left), std::max(a.top, b.top), std::min(a.right, b.right), std::min(a.bottom, b.bottom)};
}

class Layout {
 public:
  Layout(const ViewTree& in, const std::string& package, const std::string& screen, const std::map<std::string, int>& scroll)
      : in_(in), package_(package), screen_(screen), scroll_(scroll) {}

  ViewTree out;
  std::map<std::string, int> content_height;

  void run() {
    const Bounds full{0, 0, kWidth, kHeight};
    for (int r : in_.roots) place(r, in_.nodes[r].has_bounds ? in_.nodes[r].bounds : full, -1, full);
  }

  static std::string scroller_key(const std::string& screen, const ViewNode& n) {
    return screen + "/" + (n.resource_id.empty() ? "scroll" : n.resource_id);
  }

 private:
  int natural_height(int i) const {
    const ViewNode& n = in_.nodes[i];
    if (n.has_bounds) return n.bounds.height();
    int h = attr_int(n, "h", -1);
    if (h >= 0) return h;
    if (n.children.empty()) return kLeafHeight;
    const bool row = n.attribute("row") != nullptr;
    int total = 0;
    for (int c : n.children) {
      if (in_.nodes[c].has_bounds) continue;
      total = row ? std::max(total, natural_height(c)) : total + natural_height(c);
    }
    return total;
  }

  void place(int i, Bounds b, int out_parent, Bounds clip) {
    const ViewNode& src = in_.nodes[i];
    const Bounds visible = intersect(b, clip);
    if (visible.empty()) return;  // scrolled out: not in the dump at all
    ViewNode n = src;
    n.children.clear();
    n.bounds = visible;
    n.has_bounds = true;
    n.parent = out_parent;
    if (n.package.empty()) n.package = package_;
    if (!n.resource_id.empty() && n.resource_id.find(':') == std::string::npos)
      n.resource_id = package_ + ":id/" + n.resource_id;
    const int self = static_cast<int>(out.nodes.size());
    if (out_parent < 0) {
      n.sibling_index = static_cast<int>(out.roots.size());
      out.roots.push_back(self);
    } else {
      n.sibling_index = static_cast<int>(out.nodes[out_parent].children.size());
      n.depth = out.nodes[out_parent].depth + 1;
      out.nodes[out_parent].children.push_back(self);
    }
    out.nodes.push_back(std::move(n));

    Bounds child_clip = clip;
    int offset = 0;
    if (src.scrollable) {
      child_clip = visible;
      auto it = scroll_.find(scroller_key(screen_, out.nodes[self]));
      if (it != scroll_.end()) offset = it->second;
    }
    const bool row = src.attribute("row") != nullptr;
    int y = b.top - offset, x = b.left, content = 0;
    for (int c : src.children) {
      const ViewNode& child = in_.nodes[c];
      if (child.has_bounds) {
        place(c, child.bounds, self, child_clip);
        continue;
      }
      const int h = natural_height(c);
      Bounds cb;
      if (row) {
        // Children with a width hint `w` get it; the others share the rest.
        int fixed = 0, shared = 0;
        for (int s : src.children) {
          if (in_.nodes[s].has_bounds) continue;
          const int w = attr_int(in_.nodes[s], "w", -1);
          w >= 0 ? fixed += w : ++shared;
        }
        int w = attr_int(child, "w", -1);
        if (w < 0) w = std::max(0, b.width() - fixed) / std::max(1, shared);
        cb = {x, b.top, std::min(b.right, x + w), b.top + h};
        x += w;
        content = std::max(content, h);
      } else {
        cb = {b.left, y, b.right, y + h};
        y += h;
        content += h;
      }
      place(c, cb, self, child_clip);
    }
    if (src.scrollable) content_height[scroller_key(screen_, out.nodes[self])] = content;
  }

  const ViewTree& in_;
  const std::string& package_;
  const std::string& screen_;
  const std::map<std::string, int>& scroll_;
};

void load_app(const std::filesystem::path& dir, SimApp& app) {
  const std::filesystem::path file = dir / "app.json";
  json j = json::parse(read_file_text(file), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(file.string() + ": not a JSON object");
  try {
    app.name = j.at("name").get<std::string>();
    app.package = j.at("package").get<std::string>();
    app.start = j.at("start").get<std::string>();
    app.state = j.value("state", json::object());
    for (auto& [name, s] : j.at("screens").items())
      app.screens[name] = {s.at("activity").get<std::string>(), read_file_text(dir / s.at("template").get<std::string>())};
    app.transitions = j.value("transitions", json::array());
  } catch (const json::exception& e) {
    throw Error(file.string() + ": " + e.what());
  }
  if (!app.screens.count(app.start)) throw Error(file.string() + ": start screen '" + app.start + "' is not declared");
  for (const json& t : app.transitions) {
    const std::string screen = t.value("screen", "");
    if (!app.screens.count(screen)) throw Error(file.string() + ": transition on unknown screen '" + screen + "'");
    for (const json& op : t.value("do", json::array()))
      if (op.contains("goto") && op["goto"] != "^" && !app.screens.count(op["goto"].get<std::string>()))
        throw Error(file.string() + ": transition goes to unknown screen " + op["goto"].dump());
  }
}

size_t list_index(const std::string& seg, const std::string& path) {
  char* end = nullptr;
  const unsigned long i = std::strtoul(seg.c_str(), &end, 10);
  if (seg.empty() || *end != 0) throw Error("simulator: '" + seg + "' is not a list index in state path '" + path + "'");
  return i;
}

// Splits "a.b.0.c" and walks/creates it; returns the parent and last key.
json& walk_path(json& root, const std::string& path, std::string& last) {
  json* v = &root;
  size_t start = 0;
  for (;;) {
    size_t dot = path.find('.', start);
    std::string seg = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (seg.empty()) throw Error("simulator: empty segment in state path '" + path + "'");
    if (dot == std::string::npos) {
      last = seg;
      return *v;
    }
    if (v->is_array()) {
      size_t i = list_index(seg, path);
      if (i >= v->size()) throw Error("simulator: index " + seg + " out of range in '" + path + "'");
      v = &(*v)[i];
    } else {
      v = &(*v)[seg];
    }
    start = dot + 1;
  }
}

json& at_path(json& root, const std::string& path) {
  std::string last;
  json& parent = walk_path(root, path, last);
  if (parent.is_array()) {
    size_t i = list_index(last, path);
    if (i >= parent.size()) throw Error("simulator: index " + last + " out of range in '" + path + "'");
    return parent[i];
  }
  return parent[last];
}

}  // namespace

SimulatedDevice::SimulatedDevice(const std::string& apps_dir) {
  std::vector<std::filesystem::path> dirs;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(apps_dir, ec))
    if (std::filesystem::exists(e.path() / "app.json")) dirs.push_back(e.path());
  if (ec) throw Error(apps_dir + ": " + ec.message());
  if (dirs.empty()) throw Error(apps_dir + ": no simulated apps (no */app.json)");
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    auto app = std::make_unique<SimApp>();
    load_app(d, *app);
    installed_.push_back({app->name, app->package});
    apps_[app->package] = std::move(app);
  }
  go_home();
}

SimulatedDevice::~SimulatedDevice() = default;

SimApp& SimulatedDevice::app(const std::string& package) {
  auto it = apps_.find(package);
  if (it == apps_.end()) throw Error("simulator: no app " + package);
  return *it->second;
}

const json& SimulatedDevice::app_state(const std::string& package) const {
  auto it = apps_.find(package);
  if (it == apps_.end()) throw Error("simulator: no app " + package);
  return it->second->state;
}

std::vector<InstalledApp> SimulatedDevice::installed_apps() { return installed_; }

std::string SimulatedDevice::current_activity() {
  if (app_.empty()) return std::string(kLauncherPackage) + "/.Launcher";
  return app_ + "/" + app(app_).screens.at(screen_).activity;
}

json SimulatedDevice::view_state() {
  json device_apps = json::array();
  for (const InstalledApp& a : installed_) device_apps.push_back({{"name", a.name}, {"package", a.package}});
  json state = app_.empty() ? json::object() : app(app_).state;
  state["device"] = {{"apps", device_apps}};
  return state;
}

const SimulatedDevice::Rendered& SimulatedDevice::rendered() {
  if (rendered_) return *rendered_;
  const json state = view_state();
  const std::string package = app_.empty() ? kLauncherPackage : app_;
  const std::string& tpl = app_.empty() ? std::string(kLauncherTemplate) : app(app_).screens.at(screen_).tpl;
  std::string xml;
  ViewTree parsed;
  try {
    xml = render_sim_template(tpl, state, {}, true);
    parsed = parse_view_xml(xml);
  } catch (const Error& e) {
    throw Error("simulator screen " + package + "/" + screen_ + ": " + e.what());
  }
  Layout layout(parsed, package, screen_, scroll_);
  layout.run();
  auto r = std::make_unique<Rendered>();
  r->tree = std::move(layout.out);
  r->content_height = std::move(layout.content_height);
  r->xml = write_view_xml(r->tree);
  rendered_ = std::move(r);
  return *rendered_;
}

std::string SimulatedDevice::dump_screen() { return rendered().xml; }

void SimulatedDevice::open_app(const std::string& name) {
  for (const InstalledApp& a : installed_) {
    if (a.name == name || a.package == name) {
      if (app_ != a.package) back_stack_[a.package].clear();
      app_ = a.package;
      screen_ = app(app_).start;
      rendered_.reset();
      return;
    }
  }
  throw Error("open_app: no installed app named '" + name + "'");
}

void SimulatedDevice::go_home() {
  app_.clear();
  screen_ = "launcher";
  rendered_.reset();
}

void SimulatedDevice::goto_screen(const std::string& screen) {
  if (screen == "^") {
    auto& stack = back_stack_[app_];
    if (stack.empty()) return go_home();
    screen_ = stack.back();
    stack.pop_back();
  } else {
    back_stack_[app_].push_back(screen_);
    screen_ = screen;
    for (auto it = scroll_.begin(); it != scroll_.end();)
      it = it->first.rfind(screen + "/", 0) == 0 ? scroll_.erase(it) : std::next(it);
  }
  rendered_.reset();
}

void SimulatedDevice::back() {
  if (app_.empty()) return;
  if (run_transition("back", "", -1, "")) return;
  goto_screen("^");
}

void SimulatedDevice::execute(const DeviceCommand& c) {
  switch (c.kind) {
    case DeviceCommand::kTap: tap(c.x, c.y, "click"); break;
    case DeviceCommand::kLongPress: tap(c.x, c.y, "long_click"); break;
    case DeviceCommand::kType: type(c.x, c.y, c.text); break;
    case DeviceCommand::kSwipe: swipe(c); break;
    case DeviceCommand::kBack: back(); break;
    case DeviceCommand::kHome: go_home(); break;
    case DeviceCommand::kEnter:
      if (!app_.empty()) run_transition("enter", "", -1, "");
      break;
    case DeviceCommand::kOpenApp: open_app(c.text); break;
    case DeviceCommand::kNone: break;
  }
}

namespace {

// Topmost node at the point that accepts the event (later in document order
// is drawn on top), and the list item it belongs to.
int hit(const ViewTree& t, int x, int y, bool (*accepts)(const ViewNode&)) {
  for (int i = static_cast<int>(t.nodes.size()) - 1; i >= 0; --i)
    if (t.nodes[i].bounds.contains(x, y) && t.nodes[i].enabled && accepts(t.nodes[i])) return i;
  return -1;
}

int item_of(const ViewTree& t, int i) {
  for (; i >= 0; i = t.nodes[i].parent)
    if (t.nodes[i].attribute("item")) return attr_int(t.nodes[i], "item", -1);
  return -1;
}

}  // namespace

void SimulatedDevice::tap(int x, int y, const char* event) {
  const ViewTree& t = rendered().tree;
  const bool long_press = std::string(event) == "long_click";
  int i = long_press ? hit(t, x, y, [](const ViewNode& n) { return n.long_clickable; })
                     : hit(t, x, y, [](const ViewNode& n) { return n.clickable || n.checkable || n.editable(); });
  if (i < 0) return;  // nothing there reacts: a no-op, as on a phone
  const ViewNode node = t.nodes[i];
  const int item = item_of(t, i);
  if (app_.empty()) {
    if (node.short_id() == "app_icon" && item >= 0 && item < static_cast<int>(installed_.size()) && !long_press)
      open_app(installed_[item].package);
    return;
  }
  if (!long_press && node.checkable) {
    if (const std::string* bind = node.attribute("bind")) {
      json& v = at_path(app(app_).state, render_sim_template(*bind, view_state(), {{"$index", item}}, false));
      v = !(v.is_boolean() && v.get<bool>());
      rendered_.reset();
    }
  }
  if (run_transition(event, node.short_id(), item, "")) return;
  if (const std::string* target = node.attribute("goto"); target && !long_press) goto_screen(*target);
}

void SimulatedDevice::type(int x, int y, const std::string& text) {
  const ViewTree& t = rendered().tree;
  int i = hit(t, x, y, [](const ViewNode& n) { return n.editable(); });
  if (i < 0) throw Error("input_text: no text field at (" + std::to_string(x) + ", " + std::to_string(y) + ")");
  const ViewNode node = t.nodes[i];
  const int item = item_of(t, i);
  bool used = false;
  if (const std::string* bind = node.attribute("bind")) {
    at_path(app(app_).state, render_sim_template(*bind, view_state(), {{"$index", item}}, false)) = text;
    rendered_.reset();
    used = true;
  }
  used = run_transition("input", node.short_id(), item, text) || used;
  if (!used) throw Error("input_text: field '" + node.short_id() + "' does not take text");
}

void SimulatedDevice::swipe(const DeviceCommand& c) {
  const Rendered& r = rendered();
  int i = hit(r.tree, c.x, c.y, [](const ViewNode& n) { return n.scrollable; });
  if (i < 0 || c.y == c.y2) return;
  const ViewNode& n = r.tree.nodes[i];
  const std::string key = Layout::scroller_key(screen_, n);
  auto ch = r.content_height.find(key);
  const int max_offset = std::max(0, (ch == r.content_height.end() ? 0 : ch->second) - n.bounds.height());
  int& offset = scroll_[key];
  offset = std::clamp(offset + (c.y - c.y2), 0, max_offset);
  rendered_.reset();
}

bool SimulatedDevice::run_transition(const std::string& event, const std::string& id, int item, const std::string& text) {
  SimApp& a = app(app_);
  for (const json& t : a.transitions) {
    if (t.value("screen", "") != screen_ || t.value("on", "click") != event) continue;
    if (t.contains("id") && t["id"].get<std::string>() != id) continue;
    if (t.contains("if")) {
      std::map<std::string, json> vars = {{"$index", item}, {"$text", text}};
      if (render_sim_template("{{#if " + t["if"].get<std::string>() + "}}1{{/if}}", view_state(), vars, false) != "1")
        continue;
    }
    try {
      apply_ops(t.value("do", json::array()), item, text);
    } catch (const json::exception& e) {
      throw Error("simulator: " + a.package + " transition " + t.dump() + ": " + e.what());
    }
    rendered_.reset();
    return true;
  }
  return false;
}

void SimulatedDevice::apply_ops(const json& ops, int item, const std::string& text) {
  std::map<std::string, json> vars = {{"$index", item}, {"$text", text}};
  // Strings anywhere in a value are templates over the state as it is before this operation.
  std::function<json(const json&)> value = [&](const json& v) -> json {
    if (v.is_string()) return render_sim_template(v.get<std::string>(), view_state(), vars, false);
    if (!v.is_structured()) return v;
    json out = v;
    for (auto& [k, item_value] : out.items()) item_value = value(item_value);
    return out;
  };
  auto path = [&](const std::string& p) { return render_sim_template(p, view_state(), vars, false); };
  for (const json& op : ops) {
    json& state = app(app_).state;
    if (op.contains("set")) {
      for (auto& [p, v] : op["set"].items()) {
        json resolved = value(v);
        at_path(state, path(p)) = resolved;
      }
    } else if (op.contains("toggle")) {
      json& v = at_path(state, path(op["toggle"].get<std::string>()));
      v = !(v.is_boolean() && v.get<bool>());
    } else if (op.contains("add")) {
      for (auto& [p, v] : op["add"].items()) {
        json& target = at_path(state, path(p));
        const json d = value(v);
        char* end = nullptr;
        const std::string ds = d.is_string() ? d.get<std::string>() : "";
        const double delta = d.is_number() ? d.get<double>() : std::strtod(ds.c_str(), &end);
        if (!d.is_number() && (ds.empty() || *end != 0))
          throw Error("simulator: 'add' needs a number, got " + d.dump());
        const double sum = (target.is_number() ? target.get<double>() : 0.0) + delta;
        if (sum == static_cast<long long>(sum)) target = static_cast<long long>(sum);
        else target = sum;
      }
    } else if (op.contains("append")) {
      for (auto& [p, fields] : op["append"].items()) {
        json& list = at_path(state, path(p));
        if (!list.is_array()) list = json::array();
        json item_value = value(fields);
        list.push_back(item_value);
      }
    } else if (op.contains("remove")) {
      std::string last;
      json& parent = walk_path(state, path(op["remove"].get<std::string>()), last);
      if (parent.is_array()) {
        size_t i = list_index(last, op["remove"].get<std::string>());
        if (i < parent.size()) parent.erase(i);
      } else {
        parent.erase(last);
      }
    } else if (op.contains("uninstall")) {
      const std::string pkg = value(op["uninstall"]).get<std::string>();
      installed_.erase(std::remove_if(installed_.begin(), installed_.end(),
                                      [&](const InstalledApp& a) { return a.package == pkg || a.name == pkg; }),
                       installed_.end());
    } else if (op.contains("goto")) {
      goto_screen(op["goto"].get<std::string>());
    } else {
      throw Error("simulator: unknown operation " + op.dump());
    }
    rendered_.reset();
  }
}

}  // namespace onellm

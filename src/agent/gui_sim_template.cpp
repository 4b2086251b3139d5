// The simulator's screen templates: a logic-light mustache dialect over the
// app's JSON state, enough to draw lists and conditional parts of a screen.
#include <map>
#include <vector>

#include "agent/gui_environment.h"
#include "base/error.h"

namespace onellm {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& what) { throw Error("simulator template: " + what); }

struct Scope {
  const json* item = nullptr;  // current {{#each}} item
  size_t index = 0;
};

class Renderer {
 public:
  Renderer(const json& state, const std::map<std::string, json>& vars, bool xml)
      : state_(state), vars_(vars), xml_(xml) {}

  std::string render(std::string_view tpl) {
    std::string out;
    size_t pos = 0;
    render_until(tpl, pos, {}, out, true);
    if (pos < tpl.size()) bad("unexpected tag near '" + std::string(tpl.substr(pos, 30)) + "'");
    return out;
  }

 private:
  // Renders (or skips, when !emit) until one of the `ends` tags, which is
  // consumed and returned; "" at the end of input.
  std::string render_until(std::string_view tpl, size_t& pos, const std::vector<std::string>& ends, std::string& out,
                           bool emit) {
    while (pos < tpl.size()) {
      size_t open = tpl.find("{{", pos);
      if (open == std::string_view::npos) open = tpl.size();
      if (emit) out.append(tpl.substr(pos, open - pos));
      pos = open;
      if (pos >= tpl.size()) break;
      size_t close = tpl.find("}}", pos);
      if (close == std::string_view::npos) bad("'{{' without '}}'");
      std::string tag(trim(tpl.substr(pos + 2, close - pos - 2)));
      pos = close + 2;
      // Nested lists multiply work; a screen needs far less than this.
      if (++work_ > kMaxWork) bad("more than " + std::to_string(kMaxWork) + " tags rendered (nested lists too large?)");
      if (tag.empty()) bad("empty tag {{}}");
      for (const std::string& e : ends)
        if (tag == e) return tag;
      if (tag.rfind("#each ", 0) == 0) {
        each(tpl, pos, tag.substr(6), out, emit);
      } else if (tag.rfind("#if ", 0) == 0) {
        conditional(tpl, pos, tag.substr(4), out, emit);
      } else if (tag[0] == '/' || tag == "else" || tag[0] == '#') {
        if (ends.empty()) bad("unexpected {{" + tag + "}}");
        bad("expected {{" + ends.front() + "}}, found {{" + tag + "}}");
      } else if (emit) {
        append_value(out, to_text(lookup(tag)));
      }
    }
    if (!ends.empty()) bad("missing {{" + ends.front() + "}}");
    return "";
  }

  struct DepthGuard {
    explicit DepthGuard(int& d) : depth(d) {
      if (++depth > kMaxDepth) bad("blocks nested deeper than " + std::to_string(kMaxDepth));
    }
    ~DepthGuard() { --depth; }
    int& depth;
  };

  void each(std::string_view tpl, size_t& pos, const std::string& path, std::string& out, bool emit) {
    DepthGuard guard(depth_);
    const size_t body = pos;
    const json list = emit ? lookup(path) : json();
    if (emit && !list.is_array() && !list.is_null()) bad("{{#each " + path + "}} is not a list");
    if (!emit || list.empty()) {
      render_until(tpl, pos, {"/each"}, out, false);
      return;
    }
    for (size_t i = 0; i < list.size(); ++i) {
      pos = body;
      scopes_.push_back({&list[i], i});
      render_until(tpl, pos, {"/each"}, out, true);
      scopes_.pop_back();
    }
  }

  void conditional(std::string_view tpl, size_t& pos, const std::string& cond, std::string& out, bool emit) {
    DepthGuard guard(depth_);
    const bool yes = emit && test(cond);
    std::string end = render_until(tpl, pos, {"else", "/if"}, out, emit && yes);
    if (end == "else") render_until(tpl, pos, {"/if"}, out, emit && !yes);
  }

  bool test(const std::string& cond) {
    size_t ne = cond.find("!="), eq = cond.find('=');
    if (ne != std::string::npos) return to_text(lookup(trim(cond.substr(0, ne)))) != trim(cond.substr(ne + 2));
    if (eq != std::string::npos) return to_text(lookup(trim(cond.substr(0, eq)))) == trim(cond.substr(eq + 1));
    const json v = lookup(cond);
    if (v.is_null()) return false;
    if (v.is_boolean()) return v.get<bool>();
    if (v.is_number()) return v.get<double>() != 0;
    if (v.is_string() || v.is_array() || v.is_object()) return !v.empty() && v != "false";
    return true;
  }

  static std::string trim(std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return std::string(s);
  }

  json lookup(const std::string& path) {
    if (path == "@index") {
      if (scopes_.empty()) bad("{{@index}} outside {{#each}}");
      return scopes_.back().index;
    }
    if (path == ".") {
      if (scopes_.empty()) bad("{{.}} outside {{#each}}");
      return *scopes_.back().item;
    }
    const json* v = &state_;
    std::string rest = path;
    if (path[0] == '.') {
      if (scopes_.empty()) bad("{{" + path + "}} outside {{#each}}");
      v = scopes_.back().item;
      rest = path.substr(1);
    } else if (path[0] == '$') {
      size_t dot = path.find('.');
      auto it = vars_.find(path.substr(0, dot));
      if (it == vars_.end()) bad(path.substr(0, dot) + " is not set here");
      if (dot == std::string::npos) return it->second;
      v = &it->second;
      rest = path.substr(dot + 1);
    }
    json holder;
    size_t start = 0;
    while (start <= rest.size()) {
      size_t dot = rest.find('.', start);
      if (dot == std::string::npos) dot = rest.size();
      std::string seg = rest.substr(start, dot - start);
      start = dot + 1;
      if (seg.empty()) bad("empty segment in path '" + path + "'");
      if (seg[0] == '@') {
        DepthGuard guard(depth_);  // @@@...: indirection nests like a block
        seg = to_text(lookup(seg.substr(1)));
      }
      if (seg == "length" && v->is_array()) {
        holder = v->size();
        v = &holder;
        continue;
      }
      if (v->is_object()) {
        auto it = v->find(seg);
        if (it == v->end()) return nullptr;
        v = &*it;
      } else if (v->is_array()) {
        char* end = nullptr;
        long i = std::strtol(seg.c_str(), &end, 10);
        if (*end != 0 || i < 0 || static_cast<size_t>(i) >= v->size()) return nullptr;
        v = &(*v)[static_cast<size_t>(i)];
      } else {
        return nullptr;
      }
    }
    return *v;
  }

 public:
  static std::string to_text(const json& v) {
    if (v.is_null()) return "";
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_float()) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f", v.get<double>());
      return buf;
    }
    return v.dump();
  }

 private:
  void append_value(std::string& out, const std::string& s) {
    if (!xml_) {
      out += s;
      return;
    }
    for (char c : s) {
      if (c == '<') out += "&lt;";
      else if (c == '>') out += "&gt;";
      else if (c == '&') out += "&amp;";
      else if (c == '"') out += "&quot;";
      else out += c;
    }
  }

  static constexpr int kMaxDepth = 32;
  static constexpr size_t kMaxWork = 1000000;
  const json& state_;
  const std::map<std::string, json>& vars_;
  bool xml_;
  std::vector<Scope> scopes_;
  int depth_ = 0;
  size_t work_ = 0;
};

}  // namespace

std::string render_sim_template(std::string_view tpl, const nlohmann::json& state,
                                const std::map<std::string, nlohmann::json>& vars, bool xml) {
  return Renderer(state, vars, xml).render(tpl);
}

}  // namespace onellm

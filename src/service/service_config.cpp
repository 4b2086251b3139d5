#include "service/service_config.h"

#include <fstream>
#include <sstream>
#include <toml++/toml.h>

#include "base/error.h"

namespace onellm {

std::vector<QosClass> ServiceConfig::default_qos_classes() {
  // Modelled on the app table of ELMS: a voice assistant needs a near-instant
  // first token, smart replies are short and quick, agents need a fast first
  // step, chat needs reading speed, background work takes what is left.
  return {
      {"voice", 300, 60, 40},
      {"smart_reply", 500, 80, 30},
      {"agent", 800, 100, 20},
      {"chat", 1500, 150, 10},
      {"background", 60000, 2000, 0},
  };
}

ServiceConfig ServiceConfig::development() {
  ServiceConfig c;
  c.development_mode = true;
  c.qos = default_qos_classes();
  AppConfig app;
  app.id = "default";
  c.apps.push_back(app);
  return c;
}

ServiceConfig ServiceConfig::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return from_toml(ss.str(), path);
}

namespace {

template <typename T>
T get_or(const toml::table& t, const char* key, T fallback, const std::string& where) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return fallback;
  if constexpr (std::is_same_v<T, std::string>) {
    if (auto v = n->value<std::string>()) return *v;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (auto v = n->value<bool>()) return *v;
  } else if constexpr (std::is_floating_point_v<T>) {
    if (auto v = n->value<double>()) return static_cast<T>(*v);
  } else {
    if (auto v = n->value<int64_t>()) return static_cast<T>(*v);
  }
  throw Error(where + ": key '" + key + "' has the wrong type");
}

}  // namespace

ServiceConfig ServiceConfig::from_toml(const std::string& text, const std::string& name) {
  toml::table root;
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << name << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
    throw Error(msg.str());
  }
  ServiceConfig c;
  c.qos = default_qos_classes();
  if (const toml::table* s = root["service"].as_table()) {
    const std::string w = name + " [service]";
    c.keep_alive_s = get_or<int64_t>(*s, "keep_alive_s", c.keep_alive_s, w);
    c.default_context = get_or<int64_t>(*s, "default_context", c.default_context, w);
    c.prefill_chunk = get_or<int64_t>(*s, "prefill_chunk", c.prefill_chunk, w);
    c.max_running = get_or<int64_t>(*s, "max_running", c.max_running, w);
    c.max_queue = get_or<int64_t>(*s, "max_queue", c.max_queue, w);
    c.max_sessions_in_memory = get_or<int64_t>(*s, "max_sessions_in_memory", c.max_sessions_in_memory, w);
    if (const toml::array* p = s->get_as<toml::array>("public_prefixes"))
      for (const auto& v : *p)
        if (auto str = v.value<std::string>()) c.public_prefixes.push_back(*str);
  }
  if (const toml::table* q = root["qos"].as_table()) {
    for (const auto& [key, node] : *q) {
      const toml::table* t = node.as_table();
      const std::string w = name + " [qos." + std::string(key.str()) + "]";
      if (t == nullptr) throw Error(w + ": must be a table");
      QosClass cls;
      cls.name = std::string(key.str());
      for (const QosClass& d : c.qos)
        if (d.name == cls.name) cls = d;
      cls.ttft_ms = get_or<double>(*t, "ttft_ms", cls.ttft_ms, w);
      cls.tpot_ms = get_or<double>(*t, "tpot_ms", cls.tpot_ms, w);
      cls.priority = get_or<int>(*t, "priority", cls.priority, w);
      if (cls.ttft_ms <= 0 || cls.tpot_ms <= 0) throw Error(w + ": objectives must be positive");
      bool replaced = false;
      for (QosClass& d : c.qos)
        if (d.name == cls.name) d = cls, replaced = true;
      if (!replaced) c.qos.push_back(cls);
    }
  }
  const toml::array* apps = root["app"].as_array();
  if (apps == nullptr || apps->empty()) throw Error(name + ": no [[app]] entries (every app must be declared)");
  for (const auto& node : *apps) {
    const toml::table* t = node.as_table();
    if (t == nullptr) throw Error(name + ": [[app]] entries must be tables");
    AppConfig app;
    app.id = get_or<std::string>(*t, "id", "", name + " [[app]]");
    const std::string w = name + " [[app]] '" + app.id + "'";
    if (app.id.empty()) throw Error(name + ": an [[app]] has no id");
    if (c.find_app(app.id) != nullptr) throw Error(w + ": duplicate app id");
    app.token = get_or<std::string>(*t, "token", "", w);
    app.default_qos = get_or<std::string>(*t, "default_qos", app.default_qos, w);
    app.foreground = get_or<bool>(*t, "foreground", true, w);
    if (const toml::array* u = t->get_as<toml::array>("uids"))
      for (const auto& v : *u) {
        auto uid = v.value<int64_t>();
        if (!uid) throw Error(w + ": uids must be integers");
        app.uids.push_back(*uid);
      }
    if (const toml::array* q = t->get_as<toml::array>("qos"))
      for (const auto& v : *q) {
        auto s = v.value<std::string>();
        if (!s) throw Error(w + ": qos must be a list of class names");
        app.allowed_qos.push_back(*s);
      }
    app.quota.requests_per_minute = get_or<int64_t>(*t, "requests_per_minute", 0, w);
    app.quota.tokens_per_day = get_or<int64_t>(*t, "tokens_per_day", 0, w);
    app.quota.max_sessions = get_or<int64_t>(*t, "max_sessions", 0, w);
    app.quota.max_context = get_or<int64_t>(*t, "max_context", 0, w);
    if (app.token.empty() && app.uids.empty()) throw Error(w + ": needs a token or uids to identify it");
    for (const std::string& q : app.allowed_qos)
      if (c.find_qos(q) == nullptr) throw Error(w + ": unknown qos class '" + q + "'");
    if (c.find_qos(app.default_qos) == nullptr) throw Error(w + ": unknown default_qos '" + app.default_qos + "'");
    c.apps.push_back(app);
  }
  return c;
}

const QosClass* ServiceConfig::find_qos(const std::string& name) const {
  for (const QosClass& q : qos)
    if (q.name == name) return &q;
  return nullptr;
}

const AppConfig* ServiceConfig::find_app(const std::string& id) const {
  for (const AppConfig& a : apps)
    if (a.id == id) return &a;
  return nullptr;
}

const AppConfig* ServiceConfig::app_for_uid(int64_t uid) const {
  for (const AppConfig& a : apps)
    for (int64_t u : a.uids)
      if (u == uid) return &a;
  return nullptr;
}

const AppConfig* ServiceConfig::app_for_token(const std::string& token) const {
  if (token.empty()) return nullptr;
  for (const AppConfig& a : apps)
    if (!a.token.empty() && a.token == token) return &a;
  return nullptr;
}

}  // namespace onellm

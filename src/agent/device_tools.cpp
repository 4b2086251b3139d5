// The device tools' definitions and the JSON Schema checks run on every call.
#include <set>

#include "agent/device.h"

namespace onellm::agent {
namespace {

// The definitions live in train/ (the corpus renders them for the default
// model); the agent layer reads the same text rather than a copy, so the
// device and what the model was trained on never drift apart.
constexpr const char* kDeviceTools =
#include "train/device_tools.json.inc"
    ;

const std::set<std::string> kDestructive = {"delete_alarm", "cancel_timer", "delete_event", "delete_contact",
                                            "delete_document"};
const std::set<std::string> kReadOnly = {"show_alarms", "get_contact", "web_search", "find_place", "list_events"};

std::string type_of(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

bool has_type(const Json& v, const std::string& type) {
  const std::string actual = type_of(v);
  if (actual == type) return true;
  if (type == "number") return actual == "integer";
  // JSON Schema: 7.0 is an integer.
  if (type == "integer" && actual == "number") {
    double d = v.get<double>();
    return d == static_cast<double>(static_cast<long long>(d));
  }
  return false;
}

std::string violation(const Json& schema, const Json& v, const std::string& where) {
  if (!schema.is_object()) return "";
  if (schema.contains("type")) {
    const Json& t = schema["type"];
    bool ok = false;
    if (t.is_string()) ok = has_type(v, t.get<std::string>());
    if (t.is_array())
      for (const Json& one : t) ok = ok || (one.is_string() && has_type(v, one.get<std::string>()));
    if (!ok) return where + " must be " + (t.is_string() ? t.get<std::string>() : t.dump()) + ", not " + type_of(v);
  }
  if (schema.contains("enum") && schema["enum"].is_array()) {
    bool found = false;
    for (const Json& e : schema["enum"]) found = found || e == v;
    if (!found) return where + " must be one of " + schema["enum"].dump() + ", not " + v.dump();
  }
  if (v.is_number()) {
    if (schema.contains("minimum") && v.get<double>() < schema["minimum"].get<double>())
      return where + " must be at least " + schema["minimum"].dump() + ", not " + v.dump();
    if (schema.contains("maximum") && v.get<double>() > schema["maximum"].get<double>())
      return where + " must be at most " + schema["maximum"].dump() + ", not " + v.dump();
  }
  if (v.is_string()) {
    size_t n = v.get_ref<const std::string&>().size();
    if (schema.contains("minLength") && n < schema["minLength"].get<size_t>())
      return where + " must have at least " + schema["minLength"].dump() + " characters";
    if (schema.contains("maxLength") && n > schema["maxLength"].get<size_t>())
      return where + " must have at most " + schema["maxLength"].dump() + " characters";
  }
  if (v.is_array() && schema.contains("items")) {
    for (size_t i = 0; i < v.size(); ++i) {
      std::string e = violation(schema["items"], v[i], where + "[" + std::to_string(i) + "]");
      if (!e.empty()) return e;
    }
  }
  if (v.is_object()) {
    const Json empty = Json::object();
    const Json& props = schema.contains("properties") ? schema["properties"] : empty;
    if (schema.contains("required") && schema["required"].is_array())
      for (const Json& r : schema["required"])
        if (r.is_string() && !v.contains(r.get<std::string>()))
          return "missing required argument '" + r.get<std::string>() + "'" +
                 (where == "arguments" ? "" : " in " + where);
    for (const auto& [key, value] : v.items()) {
      if (!props.contains(key)) return "unknown argument '" + key + "'" + (where == "arguments" ? "" : " in " + where);
      std::string e = violation(props[key], value, "argument '" + key + "'");
      if (!e.empty()) return e;
    }
  }
  return "";
}

}  // namespace

const Json& device_tool_definitions() {
  static const Json tools = Json::parse(kDeviceTools);
  return tools;
}

bool device_tool_is_destructive(const std::string& name) { return kDestructive.count(name) != 0; }
bool device_tool_is_read_only(const std::string& name) { return kReadOnly.count(name) != 0; }

std::string schema_violation(const Json& schema, const Json& args) {
  if (!args.is_object()) return "arguments must be a JSON object, not " + type_of(args);
  return violation(schema, args, "arguments");
}

}  // namespace onellm::agent

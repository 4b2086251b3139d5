// JSON Schema -> GBNF. Each schema node becomes one rule named after its
// location; $ref targets become rules once (so recursive schemas work).
// Anything that cannot be enforced exactly is rejected with its location.
#include "engine/json_schema.h"

#include <cctype>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "base/error.h"
#include "engine/json_schema_numbers.h"
#include "engine/json_schema_regex.h"

namespace onellm {
namespace {

using Json = nlohmann::ordered_json;


const char* kPrimitives = R"(ws ::= ( " " | "\n" [ \t]{0,20} )?
json-value ::= json-object | json-array | json-string | json-number | json-boolean | json-null
json-object ::= "{" ws ( json-string ws ":" ws json-value ( ws "," ws json-string ws ":" ws json-value )* )? ws "}"
json-array ::= "[" ws ( json-value ( ws "," ws json-value )* )? ws "]"
json-string ::= "\"" json-char* "\""
json-char ::= [^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" json-hex-char )
json-hex-char ::= [0-9a-cA-C] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} | [eEfF] [0-9a-fA-F]{3}
json-integer ::= "-"? ( "0" | [1-9] [0-9]{0,15} )
json-number ::= json-integer ( "." [0-9]{1,15} )? ( [eE] [-+]? [0-9]{1,2} )?
json-boolean ::= "true" | "false"
json-null ::= "null"
json-date ::= [1-9] [0-9]{3} "-" json-month-day | json-leap-year "-02-29"
json-month-day ::= ( "01" | "03" | "05" | "07" | "08" | "10" | "12" ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ) | ( "04" | "06" | "09" | "11" ) "-" ( "0" [1-9] | [12] [0-9] | "30" ) | "02-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] )
json-leap-year ::= [1-9] [0-9] ( "0" [48] | [2468] [048] | [13579] [26] ) | ( [2468] [048] | [13579] [26] ) "00"
json-time ::= ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )
)";

// Keywords that only annotate: accepted and ignored.
const std::set<std::string> kAnnotations = {"$schema", "$id", "$comment", "title", "description", "default",
                                            "examples", "deprecated", "readOnly", "writeOnly", "$defs",
                                            "definitions", "strict"};

class SchemaConverter {
 public:
  SchemaConverter(const Json& root, std::string prefix) : root_(root), prefix_(std::move(prefix)) {}

  // `name ::= ...` and the rules it uses (named prefix-...), no primitives.
  std::string rules(const std::string& name) {
    std::string root_rule = visit(root_, "#", "root");
    std::string out = name + " ::= " + root_rule + "\n";
    for (const auto& [rule, body] : rules_) out += rule + " ::= " + body + "\n";
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw Error("json schema: " + path + ": " + what);
  }

  std::string add_rule(const std::string& hint, const std::string& body) {
    std::string name;
    for (char c : hint) name += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '-';
    if (name.empty() || name.size() > 40) name = "s";
    name = prefix_ + "-" + name;
    std::string unique = name;
    for (int i = 2; rules_.count(unique); ++i) unique = name + "-" + std::to_string(i);
    rules_[unique] = body;
    return unique;
  }

  const Json& resolve_ref(const std::string& ref, const std::string& path) {
    if (ref.empty() || ref[0] != '#') fail(path, "only local $ref ('#/...') is supported, got '" + ref + "'");
    const Json* node = &root_;
    size_t pos = 1;
    while (pos < ref.size()) {
      if (ref[pos] != '/') fail(path, "malformed $ref '" + ref + "'");
      size_t end = ref.find('/', pos + 1);
      std::string key = ref.substr(pos + 1, end == std::string::npos ? std::string::npos : end - pos - 1);
      for (size_t i; (i = key.find("~1")) != std::string::npos;) key.replace(i, 2, "/");
      for (size_t i; (i = key.find("~0")) != std::string::npos;) key.replace(i, 2, "~");
      if (node->is_object() && node->contains(key)) node = &(*node)[key];
      else if (node->is_array() && !key.empty() && key.find_first_not_of("0123456789") == std::string::npos &&
               std::stoul(key) < node->size()) node = &(*node)[std::stoul(key)];
      else fail(path, "$ref '" + ref + "' points to nothing");
      pos = end == std::string::npos ? ref.size() : end;
    }
    return *node;
  }

  // The GBNF expression (usually a rule name) for the schema at `path`.
  std::string visit(const Json& s, const std::string& path, const std::string& hint) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) fail(path, "schema 'false' matches nothing");
      return "json-value";
    }
    if (!s.is_object()) fail(path, "a schema must be an object or a boolean");
    if (s.contains("$ref")) {
      if (!s["$ref"].is_string()) fail(path, "$ref must be a string");
      const std::string ref = s["$ref"];
      auto it = refs_.find(ref);
      if (it != refs_.end()) return it->second;
      std::string name = add_rule(ref.substr(ref.find_last_of('/') + 1), "");
      refs_[ref] = name;
      rules_[name] = visit(resolve_ref(ref, path), ref, hint);
      return name;
    }
    return add_rule(hint, body(s, path, hint));
  }

  std::string body(const Json& s, const std::string& path, const std::string& hint) {
    for (const auto& [key, value] : s.items()) {
      if (!kAnnotations.count(key) && !kKnown.count(key)) fail(path, "'" + key + "' is not supported");
    }
    if (s.contains("const")) return gbnf_literal(s["const"].dump());
    if (s.contains("enum")) {
      if (!s["enum"].is_array() || s["enum"].empty()) fail(path, "'enum' must be a non-empty array");
      std::string out;
      for (const Json& v : s["enum"]) out += (out.empty() ? "" : " | ") + gbnf_literal(v.dump());
      return out;
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (!s.contains(key)) continue;
      // oneOf is generated like anyOf: the branches should not overlap.
      if (!s[key].is_array() || s[key].empty()) fail(path, std::string("'") + key + "' must be a non-empty array");
      std::string out;
      for (size_t i = 0; i < s[key].size(); ++i) {
        Json branch = s[key][i];
        out += (i ? " | " : "") + visit(branch, path + "/" + key + "/" + std::to_string(i), hint);
      }
      return out;
    }
    if (s.contains("allOf")) {
      if (!s["allOf"].is_array() || s["allOf"].size() != 1) fail(path, "'allOf' is supported with one schema only");
      return visit(s["allOf"][0], path + "/allOf/0", hint);
    }
    if (!s.contains("type")) {
      if (s.contains("properties")) return object(s, path, hint);
      if (s.contains("items") || s.contains("prefixItems")) return array(s, path, hint);
      return "json-value";
    }
    const Json& type = s["type"];
    if (type.is_string()) return typed(type.get<std::string>(), s, path, hint);
    if (!type.is_array() || type.empty()) fail(path, "'type' must be a string or a non-empty array");
    std::string out;
    for (const Json& t : type) {
      if (!t.is_string()) fail(path, "'type' entries must be strings");
      out += (out.empty() ? "" : " | ") + add_rule(hint + "-" + t.get<std::string>(), typed(t.get<std::string>(), s, path, hint));
    }
    return out;
  }

  std::string typed(const std::string& type, const Json& s, const std::string& path, const std::string& hint) {
    if (type == "object") return object(s, path, hint);
    if (type == "array") return array(s, path, hint);
    if (type == "string") return string(s, path);
    if (type == "integer") return integer(s, path);
    if (type == "number") return number(s, path);
    if (type == "boolean") return "json-boolean";
    if (type == "null") return "json-null";
    fail(path, "unknown type '" + type + "'");
  }

  std::string integer(const Json& s, const std::string& path) {
    using schema_numbers::kMaxWhole;
    int64_t lo = -kMaxWhole, hi = kMaxWhole;
    bool bounded = false;
    auto take = [&](const char* key, int64_t& out, int64_t adjust, bool lower) {
      if (!s.contains(key)) return;
      bounded = true;
      const Json& v = s[key];
      if (!v.is_number()) fail(path, std::string("'") + key + "' must be a number");
      double d = v.get<double>();
      if (std::fabs(d) > double(kMaxWhole)) fail(path, std::string("'") + key + "' beyond 16 digits is not supported");
      int64_t b = int64_t(lower ? std::ceil(d) : std::floor(d));
      if (adjust && double(b) == d) b += adjust;
      out = lower ? std::max(out, b) : std::min(out, b);
    };
    take("minimum", lo, 0, true);
    take("exclusiveMinimum", lo, 1, true);
    take("maximum", hi, 0, false);
    take("exclusiveMaximum", hi, -1, false);
    if (!bounded) return "json-integer";
    if (lo > hi) fail(path, "no integer satisfies the bounds");
    return schema_numbers::integer_range(lo, hi);
  }

  // Bounds may be any decimal with up to 16 integer and 15 fraction digits;
  // a bounded number is written without an exponent.
  std::string number(const Json& s, const std::string& path) {
    std::optional<schema_numbers::DecimalBound> lo, hi;
    std::optional<double> lo_value, hi_value;
    auto take = [&](const char* key, bool exclusive, bool lower) {
      if (!s.contains(key)) return;
      const Json& v = s[key];
      if (!v.is_number()) fail(path, std::string("'") + key + "' must be a number");
      const double d = v.get<double>();
      std::optional<double>& current = lower ? lo_value : hi_value;
      // The tighter bound wins; at equal values the exclusive one.
      if (current && (lower ? d < *current : d > *current)) return;
      if (current && d == *current && !exclusive) return;
      try {
        (lower ? lo : hi) = schema_numbers::decimal_bound(d, exclusive, std::string("'") + key + "'");
      } catch (const Error& e) {
        fail(path, e.what());
      }
      current = d;
    };
    take("minimum", false, true);
    take("exclusiveMinimum", true, true);
    take("maximum", false, false);
    take("exclusiveMaximum", true, false);
    if (!lo && !hi) return "json-number";
    std::string body = schema_numbers::decimal_range(lo, hi);
    if (body.empty()) fail(path, "no number satisfies the bounds");
    return body;
  }

  size_t count(const Json& s, const char* key, const std::string& path, size_t fallback) {
    if (!s.contains(key)) return fallback;
    const Json& v = s[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0) fail(path, std::string("'") + key + "' must be a non-negative integer");
    if (v.get<int64_t>() > 10000) fail(path, std::string("'") + key + "' above 10000 is not supported");
    return size_t(v.get<int64_t>());
  }

  std::string string(const Json& s, const std::string& path) {
    if (s.contains("pattern")) {
      if (!s["pattern"].is_string()) fail(path, "'pattern' must be a string");
      for (const char* key : {"format", "minLength", "maxLength"})
        if (s.contains(key)) fail(path, std::string("'pattern' with '") + key + "' is not supported");
      try {
        return "\"\\\"\" " + schema_regex::pattern_to_gbnf(s["pattern"].get<std::string>()) + " \"\\\"\"";
      } catch (const Error& e) {
        fail(path, e.what());
      }
    }
    const size_t min = count(s, "minLength", path, 0), max = count(s, "maxLength", path, SIZE_MAX);
    if (max != SIZE_MAX && max < min) fail(path, "maxLength is below minLength");
    if (s.contains("format")) {
      if (!s["format"].is_string()) fail(path, "'format' must be a string");
      if (s.contains("minLength") || s.contains("maxLength")) fail(path, "'format' with length limits is not supported");
      const std::string format = s["format"];
      std::string inner;
      if (format == "date") inner = "json-date";
      else if (format == "time") inner = "json-time";
      else if (format == "date-time") inner = "json-date \"T\" json-time";
      else if (format == "uuid")
        inner = "[0-9a-f]{8} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{12}";
      else if (format == "email")
        // RFC 5321 dot-atoms (no leading, trailing or doubled dots); domain
        // labels of RFC 1035 (no hyphen at either end).
        inner = "[a-zA-Z0-9_%+-]{1,15} ( \".\" [a-zA-Z0-9_%+-]{1,15} ){0,3} \"@\" "  // local part <= 64 octets
                "[a-zA-Z0-9] ( [a-zA-Z0-9-]{0,29} [a-zA-Z0-9] )? ( \".\" [a-zA-Z] ( [a-zA-Z0-9-]{0,29} [a-zA-Z0-9] )? ){1,3}";
      else if (format == "ipv4")
        inner = "( \"25\" [0-5] | \"2\" [0-4] [0-9] | \"1\" [0-9]{2} | [1-9] [0-9] | [0-9] ) ( \".\" ( \"25\" [0-5] | \"2\" [0-4] [0-9] | \"1\" [0-9]{2} | [1-9] [0-9] | [0-9] ) ){3}";
      else if (format == "uri")
        // RFC 3986: a '%' only as a percent-encoded byte.
        inner = "[a-z] [a-z0-9+.-]{0,15} \"://\" ( [a-zA-Z0-9._~!$&'()*+,;=:@/?#-] | \"%\" [0-9A-Fa-f]{2} ){1,200}";
      else fail(path, "format '" + format + "' is not supported");
      return "\"\\\"\" " + inner + " \"\\\"\"";
    }
    std::string reps = max == SIZE_MAX ? "{" + std::to_string(min) + ",}"
                                       : "{" + std::to_string(min) + "," + std::to_string(max) + "}";
    return "\"\\\"\" json-char" + reps + " \"\\\"\"";
  }

  std::string array(const Json& s, const std::string& path, const std::string& hint) {
    if (s.contains("uniqueItems") && s["uniqueItems"] != false) fail(path, "'uniqueItems' is not supported");
    if (s.contains("contains")) fail(path, "'contains' is not supported");
    size_t min = count(s, "minItems", path, 0), max = count(s, "maxItems", path, SIZE_MAX);
    if (max != SIZE_MAX && max < min) fail(path, "maxItems is below minItems");
    std::vector<std::string> fixed;
    if (s.contains("prefixItems")) {
      if (!s["prefixItems"].is_array()) fail(path, "'prefixItems' must be an array");
      for (size_t i = 0; i < s["prefixItems"].size(); ++i)
        fixed.push_back(visit(s["prefixItems"][i], path + "/prefixItems/" + std::to_string(i), hint + "-" + std::to_string(i)));
    }
    std::string item = "json-value";
    bool more_allowed = true;
    if (s.contains("items")) {
      if (s["items"].is_boolean() && !s["items"].get<bool>()) more_allowed = false;
      else item = visit(s["items"], path + "/items", hint + "-item");
    }
    // Built from the end: tail(i) = the elements after i written ones
    // (each after the first preceded by a comma); element i is required
    // when i < min.
    if (fixed.size() > max) fixed.resize(max);
    const size_t n_fixed = fixed.size();
    if (min > n_fixed && !more_allowed) fail(path, "minItems needs more items than 'items: false' allows");
    if (!more_allowed) max = std::min(max, n_fixed);
    const std::string sep = "ws \",\" ws ";
    auto reps = [](size_t lo, size_t hi) {
      return "{" + std::to_string(lo) + "," + (hi == SIZE_MAX ? "" : std::to_string(hi)) + "}";
    };
    std::string tail;
    if (max > n_fixed) {  // the run of `item` after the prefix items
      const size_t lo = min > n_fixed ? min - n_fixed : 0;
      const size_t hi = max == SIZE_MAX ? SIZE_MAX : max - n_fixed;
      if (n_fixed > 0) tail = "( " + sep + item + " )" + reps(lo, hi);
      else if (lo > 0) tail = item + " ( " + sep + item + " )" + reps(lo - 1, hi == SIZE_MAX ? hi : hi - 1);
      else tail = "( " + item + " ( " + sep + item + " )" + reps(0, hi == SIZE_MAX ? hi : hi - 1) + " )?";
    }
    for (size_t i = n_fixed; i-- > 0;) {
      std::string step = (i > 0 ? sep : "") + fixed[i] + (tail.empty() ? "" : " " + tail);
      tail = i < min ? step : "( " + step + " )?";
    }
    return "\"[\" ws " + (tail.empty() ? "" : tail + " ") + "ws \"]\"";
  }

  std::string object(const Json& s, const std::string& path, const std::string& hint) {
    for (const char* key : {"patternProperties", "propertyNames", "minProperties", "maxProperties",
                            "dependentRequired", "dependentSchemas", "unevaluatedProperties"})
      if (s.contains(key)) fail(path, std::string("'") + key + "' is not supported");
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) fail(path, "'required' must be an array");
      for (const Json& r : s["required"]) {
        if (!r.is_string()) fail(path, "'required' entries must be strings");
        required.insert(r.get<std::string>());
      }
    }
    const Json empty = Json::object();
    const Json& props = s.contains("properties") ? s["properties"] : empty;
    if (!props.is_object()) fail(path, "'properties' must be an object");
    for (const std::string& r : required)
      if (!props.contains(r)) fail(path, "required property '" + r + "' has no schema in 'properties'");
    if (props.empty()) {
      const bool closed = s.contains("additionalProperties") && s["additionalProperties"] == false;
      if (closed) return "\"{\" ws \"}\"";
      if (!s.contains("additionalProperties") || s["additionalProperties"] == true) return "json-object";
      std::string value = visit(s["additionalProperties"], path + "/additionalProperties", hint + "-value");
      std::string kv = "json-string ws \":\" ws " + value;
      return "\"{\" ws ( " + kv + " ( ws \",\" ws " + kv + " )* )? ws \"}\"";
    }
    // Properties in schema order: required ones always, optional ones maybe.
    std::vector<std::pair<std::string, bool>> kvs;
    for (const auto& [name, sub] : props.items()) {
      std::string value = visit(sub, path + "/properties/" + name, hint + "-" + name);
      kvs.emplace_back(gbnf_literal(Json(name).dump()) + " ws \":\" ws " + value, required.count(name) > 0);
    }
    // rest(i): the properties from i on, given that one was already written
    // before them (so each starts with a comma).
    std::vector<std::string> rest(kvs.size() + 1);
    for (size_t i = kvs.size(); i-- > 0;) {
      std::string one = "ws \",\" ws " + kvs[i].first + (rest[i + 1].empty() ? "" : " " + rest[i + 1]);
      rest[i] = kvs[i].second ? one : "( ws \",\" ws " + kvs[i].first + " )?" + (rest[i + 1].empty() ? "" : " " + rest[i + 1]);
    }
    // first(i): none written yet; properties from i on.
    std::string first;  // empty: nothing (allowed only if nothing from i on is required)
    for (size_t i = kvs.size(); i-- > 0;) {
      std::string with = kvs[i].first + (rest[i + 1].empty() ? "" : " " + rest[i + 1]);
      if (kvs[i].second) {
        first = with;
      } else {
        std::string without = first.empty() ? "" : first;
        std::string rule = add_rule(hint + "-from-" + std::to_string(i), without.empty() ? with + " | " : with + " | " + without);
        first = rule;
      }
    }
    return "\"{\" ws " + first + " ws \"}\"";
  }

  static inline const std::set<std::string> kKnown = {
      "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
      "maxItems", "uniqueItems", "contains", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "minimum",
      "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "format", "pattern",
      "patternProperties", "propertyNames", "minProperties", "maxProperties", "dependentRequired",
      "dependentSchemas", "unevaluatedProperties"};

  const Json& root_;
  const std::string prefix_;
  std::map<std::string, std::string> rules_;
  std::map<std::string, std::string> refs_;
};

}  // namespace

std::string gbnf_literal(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20) {
      const char* hex = "0123456789ABCDEF";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

std::string json_primitives_gbnf() { return kPrimitives; }

std::string json_object_gbnf() { return std::string("root ::= json-object\n") + kPrimitives; }

std::string json_schema_to_gbnf(const nlohmann::ordered_json& schema) {
  return SchemaConverter(schema, "s").rules("root") + kPrimitives;
}

std::string json_schema_gbnf_rules(const nlohmann::ordered_json& schema, const std::string& rule_name) {
  return SchemaConverter(schema, rule_name).rules(rule_name);
}

std::string json_schema_text_to_gbnf(std::string_view text) {
  nlohmann::ordered_json schema;
  try {
    schema = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("json schema: not valid JSON: ") + e.what());
  }
  return json_schema_to_gbnf(schema);
}

}  // namespace onellm

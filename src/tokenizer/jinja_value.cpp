#include "tokenizer/jinja_value.h"

#include "base/utf8.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace onellm::jinja {

const Value* Dict::find(const std::string& key) const {
  for (const auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Dict::set(const std::string& key, Value value) {
  for (auto& [k, v] : items) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(key, std::move(value));
}

const Value* CallArgs::get(size_t index, const char* name) const {
  if (index < positional.size()) return &positional[index];
  if (name) {
    for (const auto& [k, v] : named) {
      if (k == name) return &v;
    }
  }
  return nullptr;
}

Value Value::list(List items, bool is_tuple) {
  Value v;
  v.type_ = Type::List;
  v.tuple_ = is_tuple;
  int depth = 0;
  for (const Value& item : items) {
    depth = std::max(depth, item.depth_);
    v.has_namespace_ |= item.has_namespace_;
  }
  if (depth + 1 > kMaxValueDepth) throw Error("value nested deeper than " + std::to_string(kMaxValueDepth));
  v.depth_ = depth + 1;
  v.list_ = std::make_shared<const List>(std::move(items));
  return v;
}

Value Value::dict(Dict d) {
  Value v;
  v.type_ = Type::Dict;
  int depth = 0;
  v.has_namespace_ = d.is_namespace;
  for (const auto& item : d.items) {
    depth = std::max(depth, item.second.depth_);
    v.has_namespace_ |= item.second.has_namespace_;
  }
  if (depth + 1 > kMaxValueDepth) throw Error("value nested deeper than " + std::to_string(kMaxValueDepth));
  v.depth_ = depth + 1;
  v.dict_ = std::make_shared<Dict>(std::move(d));
  return v;
}

const std::string& Value::undefined_name() const {
  static const std::string kEmpty;
  return str_ ? *str_ : kEmpty;
}

const char* type_name(const Value& v) {
  switch (v.type()) {
    case Type::Undefined: return "undefined";
    case Type::None: return "none";
    case Type::Bool: return "bool";
    case Type::Int: return "int";
    case Type::Float: return "float";
    case Type::String: return "string";
    case Type::List: return v.is_tuple() ? "tuple" : "list";
    case Type::Dict: return v.as_dict().is_namespace ? "namespace" : "dict";
    case Type::Callable: return "callable";
  }
  return "?";
}

bool truthy(const Value& v) {
  switch (v.type()) {
    case Type::Undefined:
    case Type::None: return false;
    case Type::Bool:
    case Type::Int: return v.as_int() != 0;
    case Type::Float: return v.as_double() != 0.0;
    case Type::String: return !v.as_string().empty();
    case Type::List: return !v.as_list().empty();
    case Type::Dict: return v.as_dict().is_namespace || !v.as_dict().items.empty();
    case Type::Callable: return true;
  }
  return false;
}

bool equals(const Value& a, const Value& b, int depth) {
  if (a.is_number() && b.is_number()) {
    if (a.type() == Type::Float || b.type() == Type::Float) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Type::Undefined:
    case Type::None: return true;
    case Type::String: return a.as_string() == b.as_string();
    case Type::List: {
      const List& x = a.as_list();
      const List& y = b.as_list();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!equals(x[i], y[i], depth + 1)) return false;
      }
      return true;
    }
    case Type::Dict: {
      const Dict& x = a.as_dict();
      const Dict& y = b.as_dict();
      if (x.is_namespace || y.is_namespace) return &x == &y;
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* other = y.find(k);
        if (!other || !equals(v, *other, depth + 1)) return false;
      }
      return true;
    }
    case Type::Callable: return &a.as_callable() == &b.as_callable();
    default: return false;
  }
}

int compare(const Value& a, const Value& b, int depth) {
  if (a.is_number() && b.is_number()) {
    if (a.type() == Type::Float || b.type() == Type::Float) {
      double x = a.as_double(), y = b.as_double();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    // Byte order of UTF-8 equals code point order.
    int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list()) {
    const List& x = a.as_list();
    const List& y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equals(x[i], y[i], depth + 1)) return compare(x[i], y[i], depth + 1);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  throw Error(std::string("cannot order ") + type_name(a) + " and " + type_name(b));
}

std::string float_repr(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  if (f == 0) return std::signbit(f) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout: fixed notation for
  // exponents in [-4, 16), scientific otherwise.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), f, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool negative = sci[0] == '-';
  if (negative) sci.erase(0, 1);
  size_t e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  int exponent = std::stoi(sci.substr(e_pos + 1));
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  std::string out;
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out = "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    } else if (static_cast<size_t>(exponent) + 1 >= digits.size()) {
      out = digits + std::string(exponent + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, exponent + 1) + "." + digits.substr(exponent + 1);
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += exp_buf;
  }
  return negative ? "-" + out : out;
}

static std::string string_repr(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == static_cast<unsigned char>(quote)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

std::string repr(const Value& v) {
  switch (v.type()) {
    case Type::String: return string_repr(v.as_string());
    case Type::List: {
      const List& items = v.as_list();
      std::string out = v.is_tuple() ? "(" : "[";
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        out += repr(items[i]);
      }
      if (v.is_tuple() && items.size() == 1) out += ",";
      return out + (v.is_tuple() ? ")" : "]");
    }
    case Type::Dict: {
      const Dict& d = v.as_dict();
      std::string out = d.is_namespace ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, item] : d.items) {
        if (!first) out += ", ";
        first = false;
        out += string_repr(k) + ": " + repr(item);
      }
      return out + (d.is_namespace ? "}>" : "}");
    }
    case Type::Undefined: return "Undefined";  // str() is "", repr() names it, as jinja2's
    default: return to_str(v);
  }
}

std::string to_str(const Value& v) {
  switch (v.type()) {
    case Type::Undefined: return "";
    case Type::None: return "None";
    case Type::Bool: return v.as_bool() ? "True" : "False";
    case Type::Int: return std::to_string(v.as_int());
    case Type::Float: return float_repr(v.as_double());
    case Type::String: return v.as_string();
    case Type::Callable: return "<function " + v.as_callable().name + ">";
    default: return repr(v);
  }
}

static void json_string(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

static void json_value(const Value& v, const JsonFormat& f, int level, std::string& out) {
  auto newline = [&](int lvl) {
    if (f.indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(f.indent) * lvl, ' ');
  };
  const std::string& item_sep = f.item_separator;
  switch (v.type()) {
    case Type::Undefined: throw Error("tojson: value is undefined");
    case Type::None: out += "null"; return;
    case Type::Bool: out += v.as_bool() ? "true" : "false"; return;
    case Type::Int: out += std::to_string(v.as_int()); return;
    case Type::Float: {
      double d = v.as_double();
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d > 0 ? "Infinity" : "-Infinity";
      else out += float_repr(d);
      return;
    }
    case Type::String: json_string(v.as_string(), out); return;
    case Type::List: {
      const List& items = v.as_list();
      if (items.empty()) { out += "[]"; return; }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += item_sep;
        newline(level + 1);
        json_value(items[i], f, level + 1, out);
      }
      newline(level);
      out += ']';
      return;
    }
    case Type::Dict: {
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& item : v.as_dict().items) items.push_back(&item);
      if (f.sort_keys) {
        std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
      }
      if (items.empty()) { out += "{}"; return; }
      out += '{';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += item_sep;
        newline(level + 1);
        json_string(items[i]->first, out);
        out += f.key_separator;
        json_value(items[i]->second, f, level + 1, out);
      }
      newline(level);
      out += '}';
      return;
    }
    case Type::Callable: throw Error("tojson: a function is not JSON serializable");
  }
}

std::string to_json(const Value& v, const JsonFormat& format) {
  JsonFormat f = format;
  if (f.item_separator.empty()) f.item_separator = f.indent >= 0 ? "," : ", ";
  std::string out;
  json_value(v, f, 0, out);
  return out;
}

Value from_json(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxValueDepth) throw Error("JSON nested deeper than " + std::to_string(kMaxValueDepth));
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::number(static_cast<double>(u));
      return Value::integer(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value::number(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value::string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List items;
      for (const auto& item : j) items.push_back(from_json(item, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      for (const auto& [k, item] : j.items()) d.set(k, from_json(item, depth + 1));
      return Value::dict(std::move(d));
    }
    default: throw Error("unsupported JSON value (binary or discarded)");
  }
}

std::u32string utf8_decode(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) {
      out += static_cast<char32_t>(0xDC00 + c);  // lone byte, round-trips (like surrogateescape)
      ++i;
      continue;
    }
    char32_t cp = len == 1 ? c : (c & (0x7f >> len));
    bool ok = true;
    for (int k = 1; k < len; ++k) {
      unsigned char cc = s[i + k];
      if ((cc >> 6) != 2) { ok = false; break; }
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (!ok) {
      out += static_cast<char32_t>(0xDC00 + c);
      ++i;
      continue;
    }
    out += cp;
    i += len;
  }
  return out;
}

std::string utf8_encode(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : s) {
    if (cp >= 0xDC80 && cp <= 0xDCFF) {
      out += static_cast<char>(cp - 0xDC00);
    } else {
      append_utf8(out, cp);
    }
  }
  return out;
}

bool is_ascii(const std::string& s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

size_t utf8_length(const std::string& s) {
  return is_ascii(s) ? s.size() : utf8_decode(s).size();
}

}  // namespace onellm::jinja

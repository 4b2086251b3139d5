// Jinja's built-in filters and tests (the ones chat templates use), with
// transformers' `tojson` (json.dumps, ensure_ascii=False).
#include <algorithm>
#include <cmath>
#include <set>

#include "tokenizer/jinja_eval.h"
#include "tokenizer/unicode_case.h"

namespace onellm::jinja {
namespace {

const std::set<std::string>& filter_names() {
  static const std::set<std::string> names = {
      "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
      "first", "float", "format", "indent", "int", "items", "join", "last", "length", "list", "lower", "map",
      "max", "min", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr",
      "slice", "sort", "string", "sum", "title", "tojson", "trim", "truncate", "unique", "upper", "urlencode",
      "wordcount"};
  return names;
}

const std::set<std::string>& test_names() {
  static const std::set<std::string> names = {
      "defined", "undefined", "none", "boolean", "true", "false", "integer", "float", "number", "string",
      "mapping", "iterable", "sequence", "callable", "sameas", "eq", "equalto", "==", "ne", "!=", "lt", "<",
      "lessthan", "le", "<=", "gt", ">", "greaterthan", "ge", ">=", "in", "odd", "even", "divisibleby",
      "lower", "upper", "escaped", "filter", "test"};
  return names;
}

List as_sequence(const Value& v, const char* filter) {
  switch (v.type()) {
    case Type::Undefined: return {};
    case Type::List: return v.as_list();
    case Type::Dict: {
      List keys;
      for (const auto& item : v.as_dict().items) keys.push_back(Value::string(item.first));
      return keys;
    }
    case Type::String: {
      List chars;
      for (char32_t c : utf8_decode(v.as_string())) chars.push_back(Value::string(utf8_encode(std::u32string(1, c))));
      return chars;
    }
    default: throw Error(std::string(filter) + ": '" + type_name(v) + "' object is not iterable");
  }
}

// map, select, reject, selectattr and rejectattr test their input's truth
// before iterating (Jinja2's `if seq:`): none | selectattr(...) is empty, and
// templates written for `tools` = none rely on it.
List falsy_as_empty(const Value& v, const char* filter) {
  return truthy(v) ? as_sequence(v, filter) : List{};
}

bool bool_arg(const CallArgs& args, size_t index, const char* name, bool fallback) {
  const Value* v = args.get(index, name);
  return v ? truthy(*v) : fallback;
}

// Jinja's attribute paths: "a.b" and integer parts index lists.
Value attribute_path(Renderer& r, const Value& item, const std::string& path) {
  Value v = item;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (v.is_undefined()) return v;
    v = numeric && v.is_list() ? get_item(v, Value::integer(std::stoll(part))) : get_item(v, Value::string(part));
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

// Ordering key for sort/min/max/unique: strings compare case-insensitively
// unless case_sensitive.
Value sort_key(Renderer& r, const Value& item, const Value* attribute, bool case_sensitive) {
  Value v = attribute && attribute->is_string() ? attribute_path(r, item, attribute->as_string()) : item;
  if (!case_sensitive && v.is_string()) return Value::string(unicode_lower(v.as_string()));
  return v;
}

CallArgs tail_args(const CallArgs& args, size_t from) {
  CallArgs out;
  for (size_t i = from; i < args.positional.size(); ++i) out.positional.push_back(args.positional[i]);
  out.named = args.named;
  return out;
}

Value select_filter(Renderer& r, const std::string& name, const Value& input, CallArgs& args) {
  bool by_attr = name == "selectattr" || name == "rejectattr";
  bool keep_if = name == "select" || name == "selectattr";
  size_t test_index = by_attr ? 1 : 0;
  const Value* attr = by_attr ? args.get(0, nullptr) : nullptr;
  if (by_attr && (!attr || !attr->is_string())) throw Error(name + ": attribute name must be a string");
  const Value* test = args.get(test_index, nullptr);
  if (test && !test->is_string()) throw Error(name + ": test name must be a string");
  if (test && test_names().count(test->as_string()) == 0) throw Error("unknown test '" + test->as_string() + "'");
  CallArgs test_args = tail_args(args, test_index + 1);
  List out;
  for (const Value& item : falsy_as_empty(input, name.c_str())) {
    r.charge(1);
    Value subject = attr ? attribute_path(r, item, attr->as_string()) : item;
    bool passed = test ? apply_test(r, test->as_string(), subject, test_args) : truthy(subject);
    if (passed == keep_if) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value map_filter(Renderer& r, const Value& input, CallArgs& args) {
  const Value* attribute = nullptr;
  const Value* fallback = nullptr;
  for (const auto& [k, v] : args.named) {
    if (k == "attribute") attribute = &v;
    if (k == "default") fallback = &v;
  }
  List out;
  if (attribute) {
    if (!attribute->is_string()) throw Error("map: attribute must be a string");
    for (const Value& item : falsy_as_empty(input, "map")) {
      r.charge(1);
      Value v = attribute_path(r, item, attribute->as_string());
      out.push_back(v.is_undefined() && fallback ? *fallback : v);
    }
    return Value::list(std::move(out));
  }
  const Value* filter = args.get(0, nullptr);
  if (!filter || !filter->is_string()) throw Error("map: needs a filter name or attribute=");
  if (filter_names().count(filter->as_string()) == 0) throw Error("unknown filter '" + filter->as_string() + "'");
  CallArgs rest = tail_args(args, 1);
  for (const Value& item : falsy_as_empty(input, "map")) {
    r.charge(1);
    CallArgs each = rest;
    out.push_back(apply_filter(r, filter->as_string(), item, each));
  }
  return Value::list(std::move(out));
}

Value tojson_filter(const Value& input, CallArgs& args) {
  JsonFormat format;
  const Value* indent = args.get(0, "indent");
  if (indent && !indent->is_none()) {
    if (!indent->is_int() || indent->as_int() < 0 || indent->as_int() > 64) throw Error("tojson: bad indent");
    format.indent = static_cast<int>(indent->as_int());
  }
  const Value* separators = args.get(99, "separators");
  if (separators && separators->is_list() && separators->as_list().size() == 2 &&
      separators->as_list()[0].is_string() && separators->as_list()[1].is_string()) {
    format.item_separator = separators->as_list()[0].as_string();
    format.key_separator = separators->as_list()[1].as_string();
  }
  format.sort_keys = bool_arg(args, 99, "sort_keys", false);
  return Value::string(to_json(input, format));
}

}  // namespace

bool is_known_filter(const std::string& name) { return filter_names().count(name) != 0; }
bool is_known_test(const std::string& name) { return test_names().count(name) != 0; }

Value apply_filter(Renderer& r, const std::string& name, const Value& input, CallArgs& args) {
  const Value* a0 = args.get(0, nullptr);
  if (name == "default" || name == "d") {
    bool boolean = bool_arg(args, 1, "boolean", false);
    bool use_default = input.is_undefined() || (boolean && !truthy(input));
    const Value* fallback = args.get(0, "default_value");
    return use_default ? (fallback ? *fallback : Value::string("")) : input;
  }
  if (name == "length" || name == "count") {
    if (input.is_string()) return Value::integer(static_cast<int64_t>(utf8_length(input.as_string())));
    if (input.is_list()) return Value::integer(static_cast<int64_t>(input.as_list().size()));
    if (input.is_dict()) return Value::integer(static_cast<int64_t>(input.as_dict().items.size()));
    if (input.is_undefined()) return Value::integer(0);
    throw Error(std::string("object of type '") + type_name(input) + "' has no len()");
  }
  if (name == "trim") {
    CallArgs strip_args;
    if (a0) strip_args.positional.push_back(*a0);
    bool found = false;
    return call_method(r, Value::string(to_str(input)), "strip", strip_args, found);
  }
  if (name == "upper" || name == "lower") {
    CallArgs none;
    bool found = false;
    return call_method(r, Value::string(to_str(input)), name, none, found);
  }
  if (name == "title") return Value::string(unicode_title_words(to_str(input)));
  if (name == "capitalize") return Value::string(unicode_capitalize(to_str(input)));
  if (name == "string") return input.is_string() ? input : Value::string(to_str(input));
  if (name == "safe") return input;
  if (name == "e" || name == "escape") {
    std::string out;
    for (char c : to_str(input)) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&#34;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
      }
    }
    return Value::string(out);
  }
  if (name == "tojson") return tojson_filter(input, args);
  if (name == "items") {
    if (input.is_undefined()) return Value::list({});
    if (!input.is_dict()) throw Error(std::string("items: expected a dict, got ") + type_name(input));
    bool found = false;
    CallArgs none;
    return call_method(r, input, "items", none, found);
  }
  if (name == "list") return Value::list(as_sequence(input, "list"));
  if (name == "first" || name == "last") {
    List items = as_sequence(input, name.c_str());
    if (items.empty()) return Value::undefined(name);
    return name == "first" ? items.front() : items.back();
  }
  if (name == "reverse") {
    if (input.is_string()) {
      std::u32string s = utf8_decode(input.as_string());
      std::reverse(s.begin(), s.end());
      return Value::string(utf8_encode(s));
    }
    List items = as_sequence(input, "reverse");
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
  }
  if (name == "join") {
    const Value* sep = args.get(0, "d");
    const Value* attr = args.get(1, "attribute");
    std::string out;
    bool first = true;
    for (const Value& item : as_sequence(input, "join")) {
      if (!first) out += sep ? to_str(*sep) : "";
      first = false;
      out += to_str(attr && attr->is_string() ? attribute_path(r, item, attr->as_string()) : item);
      r.check_string_size(out.size());
    }
    r.charge(out.size() / 64);
    return Value::string(out);
  }
  if (name == "replace") {
    bool found = false;
    return call_method(r, Value::string(to_str(input)), "replace", args, found);
  }
  if (name == "indent") {
    const Value* width = args.get(0, "width");
    std::string pad = width ? (width->is_string() ? width->as_string()
                                                  : std::string(std::clamp<int64_t>(width->is_int() ? width->as_int() : 4, 0, 256), ' '))
                            : std::string(4, ' ');
    bool first = bool_arg(args, 1, "first", false);
    bool blank = bool_arg(args, 2, "blank", false);
    std::string s = to_str(input), out;
    size_t start = 0;
    bool is_first = true;
    while (start <= s.size()) {
      size_t nl = s.find('\n', start);
      std::string line = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      if ((!is_first || first) && (blank || !line.empty())) out += pad;
      out += line;
      if (nl == std::string::npos) break;
      out += '\n';
      r.check_string_size(out.size());
      start = nl + 1;
      is_first = false;
    }
    return Value::string(out);
  }
  if (name == "map") return map_filter(r, input, args);
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    return select_filter(r, name, input, args);
  }
  if (name == "sort" || name == "unique" || name == "min" || name == "max") {
    bool reverse = name == "sort" && bool_arg(args, 0, "reverse", false);
    bool case_sensitive = bool_arg(args, name == "sort" ? 1 : 0, "case_sensitive", false);
    const Value* attribute = args.get(name == "sort" ? 2 : 1, "attribute");
    List items = as_sequence(input, name.c_str());
    r.charge(items.size() * 8);
    auto key = [&](const Value& v) { return sort_key(r, v, attribute, case_sensitive); };
    if (name == "unique") {
      List out, keys;
      for (const Value& item : items) {
        Value k = key(item);
        if (std::none_of(keys.begin(), keys.end(), [&](const Value& seen) { return equals(seen, k); })) {
          keys.push_back(k);
          out.push_back(item);
        }
      }
      return Value::list(std::move(out));
    }
    if (name == "min" || name == "max") {
      if (items.empty()) return Value::undefined(name);
      size_t best = 0;
      for (size_t i = 1; i < items.size(); ++i) {
        int c = compare(key(items[i]), key(items[best]));
        if (name == "min" ? c < 0 : c > 0) best = i;
      }
      return items[best];
    }
    std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
      return reverse ? compare(key(b), key(a)) < 0 : compare(key(a), key(b)) < 0;
    });
    return Value::list(std::move(items));
  }
  if (name == "dictsort") {
    if (!input.is_dict()) throw Error("dictsort: expected a dict");
    bool case_sensitive = bool_arg(args, 0, "case_sensitive", false);
    const Value* by = args.get(1, "by");
    bool by_value = by && by->is_string() && by->as_string() == "value";
    bool reverse = bool_arg(args, 2, "reverse", false);
    bool found = false;
    CallArgs none;
    List items = call_method(r, input, "items", none, found).as_list();
    std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
      Value ka = sort_key(r, a.as_list()[by_value ? 1 : 0], nullptr, case_sensitive);
      Value kb = sort_key(r, b.as_list()[by_value ? 1 : 0], nullptr, case_sensitive);
      return reverse ? compare(kb, ka) < 0 : compare(ka, kb) < 0;
    });
    return Value::list(std::move(items));
  }
  if (name == "sum") {
    const Value* attribute = args.get(0, "attribute");
    const Value* start = args.get(1, "start");
    Value total = start ? *start : Value::integer(0);
    for (const Value& item : as_sequence(input, "sum")) {
      total = arithmetic(r, "+", total, attribute && attribute->is_string() ? attribute_path(r, item, attribute->as_string()) : item);
    }
    return total;
  }
  if (name == "abs") {
    if (input.type() == Type::Float) return Value::number(std::fabs(input.as_double()));
    if (!input.is_int()) throw Error("abs: expected a number");
    if (input.as_int() == INT64_MIN) throw Error("integer overflow");
    return Value::integer(std::llabs(input.as_int()));
  }
  if (name == "int") {
    const Value* fallback = args.get(0, "default");
    Value dflt = fallback ? *fallback : Value::integer(0);
    if (input.is_int()) return Value::integer(input.as_int());
    if (input.type() == Type::Float) {
      double d = input.as_double();
      if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return dflt;
      return Value::integer(static_cast<int64_t>(d));
    }
    if (input.is_string()) {
      try {
        size_t used = 0;
        std::string s = input.as_string();
        long long v = std::stoll(s, &used, 10);
        if (s.find_first_not_of(" \t\n", used) == std::string::npos) return Value::integer(v);
      } catch (const std::exception&) {
      }
      // Then int(float(value)), as Jinja2 does: "4.5" -> 4, "1e3" -> 1000.
      try {
        size_t used = 0;
        const std::string& s = input.as_string();
        const double d = std::stod(s, &used);
        if (s.find_first_not_of(" \t\n", used) == std::string::npos && std::isfinite(d) && std::fabs(d) < 9.2e18)
          return Value::integer(static_cast<int64_t>(d));
      } catch (const std::exception&) {
      }
    }
    return dflt;
  }
  if (name == "float") {
    const Value* fallback = args.get(0, "default");
    if (input.is_number()) return Value::number(input.as_double());
    if (input.is_string()) {
      try {
        return Value::number(std::stod(input.as_string()));
      } catch (const std::exception&) {
      }
    }
    return fallback ? *fallback : Value::number(0.0);
  }
  if (name == "round") {
    if (!input.is_number()) throw Error("round: expected a number");
    const Value* precision = args.get(0, "precision");
    const Value* method = args.get(1, "method");
    int64_t digits = precision && precision->is_int() ? std::clamp<int64_t>(precision->as_int(), -15, 15) : 0;
    std::string how = method && method->is_string() ? method->as_string() : "common";
    // Python's round() keeps an int an int: 7|round is 7, not 7.0.
    if (how == "common" && input.is_int() && digits >= 0) return Value::integer(input.as_int());
    double scale = std::pow(10.0, static_cast<double>(digits));
    double x = input.as_double() * scale;
    // "common" is Python's round(): halves go to the even neighbour (2.5 -> 2).
    double y = how == "ceil" ? std::ceil(x) : how == "floor" ? std::floor(x) : std::nearbyint(x);
    return Value::number(y / scale);
  }
  if (name == "wordcount") {
    return Value::integer(static_cast<int64_t>(unicode_word_count(to_str(input))));
  }
  if (name == "attr") {
    if (!a0 || !a0->is_string()) throw Error("attr: needs an attribute name");
    return get_attribute(r, input, a0->as_string());
  }
  if (Value out; apply_text_filter(name, input, args, out)) return out;
  throw Error("unknown filter '" + name + "'");
}

bool apply_test(Renderer& r, const std::string& name, const Value& input, CallArgs& args) {
  const Value* a0 = args.get(0, nullptr);
  auto arg = [&]() -> const Value& {
    if (!a0) throw Error("test '" + name + "' needs an argument");
    return *a0;
  };
  if (name == "defined") return !input.is_undefined();
  if (name == "undefined") return input.is_undefined();
  if (name == "none") return input.is_none();
  if (name == "boolean") return input.type() == Type::Bool;
  if (name == "true") return input.type() == Type::Bool && input.as_bool();
  if (name == "false") return input.type() == Type::Bool && !input.as_bool();
  if (name == "integer") return input.type() == Type::Int;
  if (name == "float") return input.type() == Type::Float;
  if (name == "number") return input.is_number();
  if (name == "string") return input.is_string();
  if (name == "mapping") return input.is_dict();
  if (name == "iterable") return input.is_undefined() || input.is_string() || input.is_list() || input.is_dict();
  if (name == "sequence") return input.is_string() || input.is_list() || input.is_dict();
  if (name == "callable") return input.type() == Type::Callable;
  if (name == "sameas") {
    const Value& other = arg();
    if (input.type() != other.type()) return false;
    if (input.is_none() || input.is_undefined()) return true;
    if (input.type() == Type::Bool) return input.as_bool() == other.as_bool();
    return equals(input, other) && (input.is_number() || input.is_string());
  }
  if (name == "eq" || name == "equalto" || name == "==") return equals(input, arg());
  if (name == "ne" || name == "!=") return !equals(input, arg());
  if (name == "lt" || name == "<" || name == "lessthan") return compare(input, arg()) < 0;
  if (name == "le" || name == "<=") return compare(input, arg()) <= 0;
  if (name == "gt" || name == ">" || name == "greaterthan") return compare(input, arg()) > 0;
  if (name == "ge" || name == ">=") return compare(input, arg()) >= 0;
  if (name == "in") return contains(arg(), input);
  if (name == "odd" || name == "even" || name == "divisibleby") {
    if (!input.is_number()) throw Error("test '" + name + "' needs a number");
    if (!input.is_int()) {  // Python's float modulo: 2.5 is neither odd nor even
      const double x = input.as_double();
      auto mod = [&](double m) {
        const double r = std::fmod(x, m);
        return r != 0 && (r < 0) != (m < 0) ? r + m : r;
      };
      if (name == "odd") return mod(2) == 1;
      if (name == "even") return mod(2) == 0;
      const Value& d = arg();
      if (!d.is_number() || d.as_double() == 0) throw Error("divisibleby needs a non-zero number");
      return mod(d.as_double()) == 0;
    }
    int64_t n = input.as_int();
    if (name == "odd") return n % 2 != 0;
    if (name == "even") return n % 2 == 0;
    const Value& d = arg();
    if (!d.is_int() || d.as_int() == 0) throw Error("divisibleby needs a non-zero integer");
    if (d.as_int() == -1) return true;
    return n % d.as_int() == 0;
  }
  if (name == "lower" || name == "upper") {
    if (!input.is_string()) return false;
    CallArgs none;
    bool found = false;
    return truthy(call_method(r, input, name == "lower" ? "islower" : "isupper", none, found));
  }
  if (name == "escaped") return false;
  if (name == "filter") return a0 && a0->is_string() && is_known_filter(a0->as_string());
  if (name == "test") return a0 && a0->is_string() && is_known_test(a0->as_string());
  throw Error("unknown test '" + name + "'");
}

}  // namespace onellm::jinja

// Python object behaviour templates reach for: str and dict methods,
// attribute and item access, slicing, `in`, arithmetic, and the global
// functions (range, namespace, dict, raise_exception, strftime_now).
#include <cmath>
#include <ctime>
#include <optional>

#include "tokenizer/jinja_eval.h"
#include "tokenizer/unicode_case.h"

namespace onellm::jinja {
namespace {

bool is_py_space(char32_t c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
         c == 0x205f || c == 0x3000;
}

const std::string& string_arg(const Value* v, const char* what) {
  if (!v || !v->is_string()) throw Error(std::string(what) + " must be a string");
  return v->as_string();
}

std::string strip(const std::string& s, const Value* chars, bool left, bool right) {
  std::u32string text = utf8_decode(s);
  std::u32string set;
  bool whitespace = !chars || chars->is_none();
  if (!whitespace) set = utf8_decode(string_arg(chars, "strip characters"));
  auto strip_char = [&](char32_t c) { return whitespace ? is_py_space(c) : set.find(c) != std::u32string::npos; };
  size_t b = 0, e = text.size();
  if (left) while (b < e && strip_char(text[b])) ++b;
  if (right) while (e > b && strip_char(text[e - 1])) --e;
  return utf8_encode(text.substr(b, e - b));
}

Value split(const std::string& s, const Value* sep_arg, const Value* max_arg) {
  int64_t maxsplit = (max_arg && max_arg->is_int()) ? max_arg->as_int() : -1;
  List parts;
  if (!sep_arg || sep_arg->is_none()) {
    std::u32string text = utf8_decode(s);
    size_t i = 0;
    while (true) {
      while (i < text.size() && is_py_space(text[i])) ++i;
      if (i >= text.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        size_t e = text.size();
        while (e > i && is_py_space(text[e - 1])) --e;
        parts.push_back(Value::string(utf8_encode(text.substr(i, e - i))));
        break;
      }
      size_t j = i;
      while (j < text.size() && !is_py_space(text[j])) ++j;
      parts.push_back(Value::string(utf8_encode(text.substr(i, j - i))));
      i = j;
    }
    return Value::list(std::move(parts));
  }
  const std::string& sep = string_arg(sep_arg, "split separator");
  if (sep.empty()) throw Error("empty separator");
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    if (pos == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
      parts.push_back(Value::string(s.substr(start)));
      break;
    }
    parts.push_back(Value::string(s.substr(start, pos - start)));
    start = pos + sep.size();
  }
  return Value::list(std::move(parts));
}

bool affix_match(const std::string& s, const Value* arg, bool prefix) {
  auto one = [&](const std::string& a) {
    if (a.size() > s.size()) return false;
    return prefix ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (arg && arg->is_list()) {
    for (const Value& v : arg->as_list()) {
      if (one(string_arg(&v, "prefix"))) return true;
    }
    return false;
  }
  return one(string_arg(arg, prefix ? "startswith argument" : "endswith argument"));
}

std::string replace_all(Renderer& r, const std::string& s, const std::string& from, const std::string& to,
                        int64_t count) {
  std::string out;
  size_t start = 0;
  int64_t done = 0;
  if (from.empty()) {
    // Python inserts `to` between all characters.
    std::u32string text = utf8_decode(s);
    std::string ins = to;
    for (char32_t c : text) {
      if (count >= 0 && done >= count) { out += utf8_encode(std::u32string(1, c)); continue; }
      out += ins + utf8_encode(std::u32string(1, c));
      ++done;
      r.check_string_size(out.size());
    }
    if (count < 0 || done < count) out += ins;
    return out;
  }
  while (true) {
    size_t pos = s.find(from, start);
    if (pos == std::string::npos || (count >= 0 && done >= count)) break;
    out.append(s, start, pos - start);
    out += to;
    r.check_string_size(out.size());
    start = pos + from.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  return out;
}

Value string_method(Renderer& r, const std::string& s, const std::string& name, CallArgs& args, bool& found) {
  found = true;
  const Value* a0 = args.get(0, nullptr);
  if (name == "strip") return Value::string(strip(s, a0, true, true));
  if (name == "lstrip") return Value::string(strip(s, a0, true, false));
  if (name == "rstrip") return Value::string(strip(s, a0, false, true));
  if (name == "split") return split(s, args.get(0, "sep"), args.get(1, "maxsplit"));
  if (name == "startswith") return Value::boolean(affix_match(s, a0, true));
  if (name == "endswith") return Value::boolean(affix_match(s, a0, false));
  if (name == "upper") return Value::string(unicode_upper(s));
  if (name == "lower") return Value::string(unicode_lower(s));
  if (name == "title") return Value::string(unicode_title(s));  // str.title, not the filter's word split
  if (name == "capitalize") return Value::string(unicode_capitalize(s));
  if (name == "replace") {
    const Value* count = args.get(2, "count");
    return Value::string(replace_all(r, s, string_arg(a0, "replace argument"),
                                     string_arg(args.get(1, nullptr), "replace argument"),
                                     count && count->is_int() ? count->as_int() : -1));
  }
  if (name == "find" || name == "index" || name == "count") {
    const std::string& needle = string_arg(a0, "search argument");
    if (name == "count") {
      if (needle.empty()) return Value::integer(static_cast<int64_t>(utf8_length(s)) + 1);
      int64_t n = 0;
      for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + needle.size())) ++n;
      return Value::integer(n);
    }
    size_t p = s.find(needle);
    if (p == std::string::npos) {
      if (name == "index") throw Error("substring not found");
      return Value::integer(-1);
    }
    return Value::integer(static_cast<int64_t>(utf8_length(s.substr(0, p))));
  }
  if (name == "join") {
    if (!a0) throw Error("join() needs an argument");
    std::string out;
    bool first = true;
    for (const Value& v : a0->is_list() ? a0->as_list() : List{}) {
      if (!first) out += s;
      first = false;
      out += string_arg(&v, "joined item");
      r.check_string_size(out.size());
    }
    return Value::string(out);
  }
  if (name == "splitlines") {
    List lines;
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n' || s[i] == '\r') {
        lines.push_back(Value::string(s.substr(start, i - start)));
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
        start = i + 1;
      }
    }
    if (start < s.size()) lines.push_back(Value::string(s.substr(start)));
    return Value::list(std::move(lines));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    const std::string& a = string_arg(a0, "affix");
    bool prefix = name == "removeprefix";
    if (affix_match(s, a0, prefix)) return Value::string(prefix ? s.substr(a.size()) : s.substr(0, s.size() - a.size()));
    return Value::string(s);
  }
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace")
    return Value::boolean(unicode_is_all(s, name == "isdigit"   ? CharClass::kDigit
                                            : name == "isalpha" ? CharClass::kAlpha
                                            : name == "isalnum" ? CharClass::kAlnum
                                                                : CharClass::kSpace));
  if (name == "isupper") return Value::boolean(unicode_isupper(s));
  if (name == "islower") return Value::boolean(unicode_islower(s));
  found = false;
  return Value();
}

Value dict_method(const Value& object, const std::string& name, CallArgs& args, bool& found) {
  const Dict& d = object.as_dict();
  found = true;
  if (name == "items") {
    List items;
    for (const auto& [k, v] : d.items) items.push_back(Value::list({Value::string(k), v}, true));
    return Value::list(std::move(items));
  }
  if (name == "keys") {
    List keys;
    for (const auto& item : d.items) keys.push_back(Value::string(item.first));
    return Value::list(std::move(keys));
  }
  if (name == "values") {
    List values;
    for (const auto& item : d.items) values.push_back(item.second);
    return Value::list(std::move(values));
  }
  if (name == "get") {
    const Value* key = args.get(0, "key");
    if (!key) throw Error("get() needs a key");
    const Value* fallback = args.get(1, "default");
    const Value* v = key->is_string() ? d.find(key->as_string()) : nullptr;
    return v ? *v : (fallback ? *fallback : Value::none());
  }
  found = false;
  return Value();
}

bool is_dict_method(const std::string& name) {
  return name == "items" || name == "keys" || name == "values" || name == "get";
}

int64_t normalize_index(int64_t i, int64_t n) { return i < 0 ? i + n : i; }

}  // namespace

// list.count(x) and list.index(x): the read-only list methods (values are
// immutable here, so append and friends stay unknown).
Value list_method(const List& items, const std::string& name, CallArgs& args, bool& found) {
  found = name == "count" || name == "index";
  if (!found) return Value();
  const Value* x = args.get(0, nullptr);
  if (!x) throw Error("list." + name + "() takes exactly one argument");
  int64_t n = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!equals(items[i], *x)) continue;
    if (name == "index") return Value::integer(static_cast<int64_t>(i));
    ++n;
  }
  if (name == "index") throw Error(repr(*x) + " is not in list");
  return Value::integer(n);
}

Value call_method(Renderer& r, const Value& object, const std::string& name, CallArgs& args, bool& found) {
  found = false;
  if (object.is_string()) return string_method(r, object.as_string(), name, args, found);
  if (object.is_dict() && !object.as_dict().is_namespace) return dict_method(object, name, args, found);
  if (object.is_list()) return list_method(object.as_list(), name, args, found);
  return Value();
}

Value get_attribute(Renderer& r, const Value& object, const std::string& name) {
  if (object.is_undefined()) throw Error("'" + object.undefined_name() + "' is undefined");
  if (object.is_dict()) {
    if (!object.as_dict().is_namespace && is_dict_method(name)) {
      return Value::callable(name, [object, name](Renderer& rr, CallArgs& args) {
        bool found = false;
        return call_method(rr, object, name, args, found);
      });
    }
    const Value* v = object.as_dict().find(name);
    return v ? *v : Value::undefined(name);
  }
  if (object.is_list() && (name == "count" || name == "index")) {
    return Value::callable(name, [object, name](Renderer& rr, CallArgs& args) {
      bool ok = false;
      return call_method(rr, object, name, args, ok);
    });
  }
  if (object.is_string()) {
    CallArgs none;
    bool found = false;
    string_method(r, "", name, none, found);  // probe whether the method exists
    if (found) {
      return Value::callable(name, [object, name](Renderer& rr, CallArgs& args) {
        bool ok = false;
        return call_method(rr, object, name, args, ok);
      });
    }
  }
  return Value::undefined(name);
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_dict()) {
    if (!key.is_string()) return Value::undefined();
    const Value* v = object.as_dict().find(key.as_string());
    return v ? *v : Value::undefined(key.as_string());
  }
  if ((object.is_list() || object.is_string()) && key.is_int()) {
    if (object.is_list()) {
      const List& items = object.as_list();
      int64_t i = normalize_index(key.as_int(), static_cast<int64_t>(items.size()));
      if (i < 0 || i >= static_cast<int64_t>(items.size())) return Value::undefined("index");
      return items[static_cast<size_t>(i)];
    }
    std::u32string text = utf8_decode(object.as_string());
    int64_t i = normalize_index(key.as_int(), static_cast<int64_t>(text.size()));
    if (i < 0 || i >= static_cast<int64_t>(text.size())) return Value::undefined("index");
    return Value::string(utf8_encode(std::u32string(1, text[static_cast<size_t>(i)])));
  }
  if (object.is_none()) return Value::undefined();
  if (key.is_string() && !object.is_list() && !object.is_string()) return Value::undefined(key.as_string());
  if (object.is_list() || object.is_string()) {
    if (key.is_string()) return Value::undefined(key.as_string());
    throw Error(std::string("indices must be integers, not ") + type_name(key));
  }
  return Value::undefined();
}

Value slice_value(Renderer& r, const Value& object, const Value& start, const Value& stop, const Value& step) {
  auto opt_int = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (!v.is_int()) throw Error(std::string("slice ") + what + " must be an integer");
    return v.as_int();
  };
  int64_t st = opt_int(step, "step").value_or(1);
  if (st == 0) throw Error("slice step cannot be zero");
  if (st == INT64_MIN) st = -INT64_MAX;
  std::optional<int64_t> b = opt_int(start, "start"), e = opt_int(stop, "stop");
  auto select = [&](int64_t n, auto&& take) {
    // Python's slice.indices().
    auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
      if (!v) return dflt;
      int64_t x = *v < 0 ? *v + n : *v;
      if (st > 0) return std::min(std::max<int64_t>(x, 0), n);
      return std::min(std::max<int64_t>(x, -1), n - 1);
    };
    int64_t lo = clamp(b, st > 0 ? 0 : n - 1);
    int64_t hi = clamp(e, st > 0 ? n : -1);
    for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) {
      take(static_cast<size_t>(i));
      if ((st > 0 && i > INT64_MAX - st) || (st < 0 && i < INT64_MIN - st)) break;
    }
  };
  if (object.is_list()) {
    const List& items = object.as_list();
    List out;
    select(static_cast<int64_t>(items.size()), [&](size_t i) { out.push_back(items[i]); });
    r.charge(out.size());
    return Value::list(std::move(out), object.is_tuple());
  }
  if (object.is_string()) {
    std::u32string text = utf8_decode(object.as_string()), out;
    select(static_cast<int64_t>(text.size()), [&](size_t i) { out += text[i]; });
    r.charge(out.size() / 16);
    return Value::string(utf8_encode(out));
  }
  if (object.is_undefined()) throw Error("'" + object.undefined_name() + "' is undefined");
  throw Error(std::string("'") + type_name(object) + "' object is not subscriptable");
}

bool contains(const Value& container, const Value& item) {
  switch (container.type()) {
    case Type::Undefined: return false;
    case Type::String:
      if (!item.is_string()) throw Error("'in <string>' requires a string as left operand");
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Type::List:
      for (const Value& v : container.as_list()) {
        if (equals(v, item)) return true;
      }
      return false;
    case Type::Dict: return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
    default: throw Error(std::string("argument of type '") + type_name(container) + "' is not iterable");
  }
}

Value arithmetic(Renderer& r, const std::string& op, const Value& a, const Value& b) {
  auto fail = [&]() -> Value {
    if (a.is_undefined()) throw Error("'" + a.undefined_name() + "' is undefined");
    if (b.is_undefined()) throw Error("'" + b.undefined_name() + "' is undefined");
    throw Error("unsupported operand types for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
  };
  if (a.is_number() && b.is_number()) {
    bool ints = a.is_int() && b.is_int();
    int64_t x = a.as_int(), y = b.as_int(), z = 0;
    double p = a.as_double(), q = b.as_double();
    if (op == "+") {
      if (!ints) return Value::number(p + q);
      if (__builtin_add_overflow(x, y, &z)) throw Error("integer overflow");
      return Value::integer(z);
    }
    if (op == "-") {
      if (!ints) return Value::number(p - q);
      if (__builtin_sub_overflow(x, y, &z)) throw Error("integer overflow");
      return Value::integer(z);
    }
    if (op == "*") {
      if (!ints) return Value::number(p * q);
      if (__builtin_mul_overflow(x, y, &z)) throw Error("integer overflow");
      return Value::integer(z);
    }
    if (op == "/") {
      if (q == 0) throw Error("division by zero");
      return Value::number(p / q);
    }
    if (op == "//" || op == "%") {
      if (ints ? y == 0 : q == 0) throw Error(op == "%" ? "modulo by zero" : "division by zero");
      if (!ints) {
        double m = std::fmod(p, q);
        if (m != 0 && ((m < 0) != (q < 0))) m += q;
        if (m == 0) m = std::copysign(0.0, q);  // Python: the zero takes the divisor's sign
        return op == "%" ? Value::number(m) : Value::number(std::floor(p / q));
      }
      if (x == INT64_MIN && y == -1) throw Error("integer overflow");
      int64_t quot = x / y, rem = x % y;
      if (rem != 0 && ((rem < 0) != (y < 0))) {
        --quot;
        rem += y;
      }
      return Value::integer(op == "%" ? rem : quot);
    }
    if (op == "**") {
      if (ints && y >= 0) {
        int64_t result = 1, base = x;
        for (int64_t e = y; e > 0; e >>= 1) {
          if (e & 1 && __builtin_mul_overflow(result, base, &result)) throw Error("integer overflow");
          if (e > 1 && __builtin_mul_overflow(base, base, &base)) throw Error("integer overflow");
        }
        return Value::integer(result);
      }
      return Value::number(std::pow(p, q));
    }
    return fail();
  }
  if (op == "+" && a.is_string() && b.is_string()) {
    r.check_string_size(a.as_string().size() + b.as_string().size());
    r.charge((a.as_string().size() + b.as_string().size()) / 64);
    return Value::string(a.as_string() + b.as_string());
  }
  if (op == "+" && a.is_list() && b.is_list()) {
    r.check_list_size(a.as_list().size() + b.as_list().size());
    r.charge(a.as_list().size() + b.as_list().size());
    List items = a.as_list();
    items.insert(items.end(), b.as_list().begin(), b.as_list().end());
    return Value::list(std::move(items), a.is_tuple());
  }
  if (op == "*" && (a.is_string() || a.is_list() || b.is_string() || b.is_list()) && (a.is_int() || b.is_int())) {
    const Value& seq = a.is_int() ? b : a;
    int64_t n = std::max<int64_t>(0, a.is_int() ? a.as_int() : b.as_int());
    if (seq.is_string()) {
      size_t size = seq.as_string().size();
      if (size == 0 || n == 0) return Value::string("");
      if (size && static_cast<uint64_t>(n) > r.limits().max_output_bytes / size) r.check_string_size(SIZE_MAX);
      r.charge(size * n / 64);
      std::string out;
      for (int64_t i = 0; i < n; ++i) out += seq.as_string();
      return Value::string(std::move(out));
    }
    if (seq.is_list()) {
      size_t size = seq.as_list().size();
      if (size == 0 || n == 0) return Value::list({}, seq.is_tuple());
      if (size && static_cast<uint64_t>(n) > r.limits().max_list_items / size) r.check_list_size(SIZE_MAX);
      r.charge(size * n);
      List out;
      for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.as_list().begin(), seq.as_list().end());
      return Value::list(std::move(out), seq.is_tuple());
    }
  }
  return fail();
}

void add_global_functions(Dict& globals) {
  globals.set("range", Value::callable("range", [](Renderer& r, CallArgs& args) {
    int64_t v[3] = {0, 0, 1};
    size_t n = args.positional.size();
    if (n == 0 || n > 3) throw Error("range() takes 1 to 3 arguments");
    for (size_t i = 0; i < n; ++i) {
      if (!args.positional[i].is_int()) throw Error("range() arguments must be integers");
    }
    if (n == 1) v[1] = args.positional[0].as_int();
    else for (size_t i = 0; i < n; ++i) v[i] = args.positional[i].as_int();
    if (v[2] == 0) throw Error("range() step must not be zero");
    List items;
    for (int64_t i = v[0]; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2]) {
      r.check_list_size(items.size() + 1);
      items.push_back(Value::integer(i));
      if ((v[2] > 0 && i > INT64_MAX - v[2]) || (v[2] < 0 && i < INT64_MIN - v[2])) break;
    }
    r.charge(items.size());
    return Value::list(std::move(items));
  }));
  auto make_dict = [](bool is_namespace) {
    return [is_namespace](Renderer&, CallArgs& args) {
      Dict d;
      d.is_namespace = is_namespace;
      for (const Value& p : args.positional) {
        if (!p.is_dict()) throw Error("positional argument must be a dict");
        for (const auto& [k, v] : p.as_dict().items) d.set(k, v);
      }
      for (const auto& [k, v] : args.named) d.set(k, v);
      for (const auto& item : d.items) {
        if (is_namespace && item.second.holds_namespace()) {
          throw Error("a namespace cannot be stored inside a namespace");
        }
      }
      return Value::dict(std::move(d));
    };
  };
  globals.set("namespace", Value::callable("namespace", make_dict(true)));
  globals.set("dict", Value::callable("dict", make_dict(false)));
  globals.set("raise_exception", Value::callable("raise_exception", [](Renderer&, CallArgs& args) -> Value {
    const Value* msg = args.get(0, "message");
    throw Error("raise_exception: " + (msg ? to_str(*msg) : std::string()));
  }));
  globals.set("strftime_now", Value::callable("strftime_now", [](Renderer&, CallArgs& args) {
    const Value* fmt = args.get(0, "format");
    if (!fmt || !fmt->is_string()) throw Error("strftime_now() needs a format string");
    std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[256];
    size_t n = std::strftime(buf, sizeof(buf), fmt->as_string().c_str(), &local);
    return Value::string(std::string(buf, n));
  }));
}

}  // namespace onellm::jinja

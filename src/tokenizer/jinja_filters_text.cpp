// Jinja's text and grouping filters that few chat templates use: format
// (Python's printf-style %), center, truncate, urlencode, batch and slice,
// with Jinja2's and Python's exact results (held to Python's jinja2 by
// tests/chat_template_jinja2_test.cpp).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tokenizer/jinja_eval.h"

namespace onellm::jinja {
namespace {

size_t chars(const std::string& s) { return utf8_length(s); }

std::string first_chars(const std::string& s, size_t n) {
  std::u32string u = utf8_decode(s);
  if (u.size() > n) u.resize(n);
  return utf8_encode(u);
}

int64_t int_of(const Value* v, const char* filter, const char* name, int64_t fallback) {
  if (v == nullptr || v->is_none()) return fallback;
  if (!v->is_int()) throw Error(std::string(filter) + ": '" + name + "' must be an integer");
  return v->as_int();
}

// One conversion of Python's `fmt % args`: flags, width, precision, type.
struct Spec {
  bool left = false, plus = false, space = false, zero = false, alt = false;
  int width = 0, precision = -1;
  char type = 's';
};

std::string pad(std::string body, const Spec& sp, bool numeric) {
  const int n = static_cast<int>(chars(body));
  if (n >= sp.width) return body;
  const std::string fill(static_cast<size_t>(sp.width - n), ' ');
  if (sp.left) return body + fill;
  if (sp.zero && numeric) {  // zeros go after the sign and 0x prefix
    size_t at = (!body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ')) ? 1 : 0;
    if (body.size() >= at + 2 && body[at] == '0' && (body[at + 1] == 'x' || body[at + 1] == 'X' || body[at + 1] == 'o'))
      at += 2;
    return body.substr(0, at) + std::string(fill.size(), '0') + body.substr(at);
  }
  return fill + body;
}

std::string format_int(const Value& v, const Spec& sp) {
  if (!v.is_number()) throw Error("format: %" + std::string(1, sp.type) + " format: a real number is required, not " +
                                  type_name(v));
  const bool whole_only = sp.type == 'x' || sp.type == 'X' || sp.type == 'o';  // Python: %d takes floats, %x not
  if (whole_only && !v.is_int())
    throw Error("format: %" + std::string(1, sp.type) + " format: an integer is required, not " + type_name(v));
  const int64_t x = v.is_int() ? v.as_int() : static_cast<int64_t>(std::trunc(v.as_double()));
  uint64_t mag = x < 0 ? 0 - static_cast<uint64_t>(x) : static_cast<uint64_t>(x);
  const int base = sp.type == 'x' || sp.type == 'X' ? 16 : sp.type == 'o' ? 8 : 10;
  const char* digits = sp.type == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string d;
  do {
    d.insert(d.begin(), digits[mag % static_cast<uint64_t>(base)]);
    mag /= static_cast<uint64_t>(base);
  } while (mag > 0);
  if (sp.precision > static_cast<int>(d.size())) d.insert(0, static_cast<size_t>(sp.precision) - d.size(), '0');
  if (sp.alt && base == 16) d.insert(0, sp.type == 'X' ? "0X" : "0x");
  if (sp.alt && base == 8) d.insert(0, "0o");
  const std::string sign = x < 0 ? "-" : sp.plus ? "+" : sp.space ? " " : "";
  return pad(sign + d, sp, true);
}

std::string format_float(const Value& v, const Spec& sp) {
  if (!v.is_number()) throw Error(std::string("format: must be real number, not ") + type_name(v));
  const double x = v.as_double();
  if (std::isnan(x) || std::isinf(x)) {
    std::string body = std::isnan(x) ? "nan" : "inf";
    if (sp.type == 'F' || sp.type == 'E' || sp.type == 'G') for (char& c : body) c = static_cast<char>(c - 32);
    const std::string sign = std::signbit(x) && !std::isnan(x) ? "-" : sp.plus ? "+" : sp.space ? " " : "";
    Spec no_zero = sp;
    no_zero.zero = false;
    return pad(sign + body, no_zero, true);
  }
  std::string f = "%";
  if (sp.plus) f += '+';
  if (sp.space) f += ' ';
  if (sp.alt) f += '#';
  f += "." + std::to_string(sp.precision < 0 ? 6 : sp.precision) + sp.type;
  char buf[512];
  std::snprintf(buf, sizeof buf, f.c_str(), x);
  return pad(buf, sp, true);
}

std::string format_one(const Value& v, const Spec& sp) {
  switch (sp.type) {
    case 's': case 'r': case 'a': {
      std::string s = sp.type == 's' ? to_str(v) : repr(v);
      if (sp.precision >= 0) s = first_chars(s, static_cast<size_t>(sp.precision));
      return pad(s, sp, false);
    }
    case 'd': case 'i': case 'u': case 'x': case 'X': case 'o': return format_int(v, sp);
    case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': return format_float(v, sp);
    case 'c': {
      if (v.is_string() && chars(v.as_string()) == 1) return pad(v.as_string(), sp, false);
      if (v.is_int() && v.as_int() >= 0 && v.as_int() <= 0x10FFFF)
        return pad(utf8_encode(std::u32string(1, static_cast<char32_t>(v.as_int()))), sp, false);
      throw Error("format: %c requires an int or a unicode character");
    }
    default: throw Error(std::string("format: unsupported format character '") + sp.type + "'");
  }
}

// Python's `fmt % values` (a tuple) or `fmt % mapping` (%(name)s).
std::string percent_format(const std::string& fmt, const List& values, const Value* mapping) {
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) throw Error("format: incomplete format");
    const Value* arg = nullptr;
    if (fmt[i] == '(') {
      const size_t close = fmt.find(')', i);
      if (close == std::string::npos) throw Error("format: incomplete format key");
      if (mapping == nullptr) throw Error("format: format requires a mapping");
      arg = mapping->as_dict().find(fmt.substr(i + 1, close - i - 1));
      if (arg == nullptr) throw Error("format: key " + fmt.substr(i + 1, close - i - 1) + " is missing");
      i = close + 1;
    }
    Spec sp;
    for (; i < fmt.size(); ++i) {
      const char c = fmt[i];
      if (c == '-') sp.left = true;
      else if (c == '+') sp.plus = true;
      else if (c == ' ') sp.space = true;
      else if (c == '0') sp.zero = true;
      else if (c == '#') sp.alt = true;
      else break;
    }
    for (; i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9'; ++i)
      sp.width = std::min(sp.width * 10 + (fmt[i] - '0'), 4096);
    if (i < fmt.size() && fmt[i] == '.') {
      sp.precision = 0;
      for (++i; i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9'; ++i)
        sp.precision = std::min(sp.precision * 10 + (fmt[i] - '0'), 4096);
    }
    while (i < fmt.size() && (fmt[i] == 'h' || fmt[i] == 'l' || fmt[i] == 'L')) ++i;
    if (i >= fmt.size()) throw Error("format: incomplete format");
    sp.type = fmt[i];
    if (sp.type == '%') {
      out += '%';
      continue;
    }
    if (arg == nullptr) {
      if (mapping != nullptr && values.empty()) arg = mapping;  // "%s" % {...} formats the dict itself
      else if (next >= values.size()) throw Error("format: not enough arguments for format string");
      else arg = &values[next++];
    }
    out += format_one(*arg, sp);
  }
  if (mapping == nullptr && next < values.size())
    throw Error("format: not all arguments converted during string formatting");
  return out;
}

// url_quote of Jinja2: UTF-8 bytes, percent-encoded but for letters,
// digits, _.-~ and (outside a query string) '/'; in a query a space is '+'.
std::string url_quote(const std::string& s, bool for_query) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
        c == '-' || c == '~' || (c == '/' && !for_query)) {
      out += static_cast<char>(c);
    } else if (c == ' ' && for_query) {
      out += '+';
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace

bool apply_text_filter(const std::string& name, const Value& input, CallArgs& args, Value& out) {
  if (name == "format") {
    if (!args.positional.empty() && !args.named.empty())
      throw Error("format: can't handle positional and keyword arguments at the same time");
    if (!args.named.empty()) {
      Dict d;
      for (const auto& [k, v] : args.named) d.items.emplace_back(k, v);
      const Value mapping = Value::dict(std::move(d));
      out = Value::string(percent_format(to_str(input), {}, &mapping));
    } else {
      out = Value::string(percent_format(to_str(input), args.positional, nullptr));
    }
    return true;
  }
  if (name == "center") {
    const std::string s = to_str(input);
    const int64_t width = int_of(args.get(0, "width"), "center", "width", 80), n = static_cast<int64_t>(chars(s));
    if (width <= n) {
      out = Value::string(s);
      return true;
    }
    const int64_t margin = std::min<int64_t>(width, 1 << 16) - n;
    const int64_t left = margin / 2 + (margin & width & 1);  // CPython's str.center
    out = Value::string(std::string(static_cast<size_t>(left), ' ') + s +
                        std::string(static_cast<size_t>(margin - left), ' '));
    return true;
  }
  if (name == "truncate") {
    const std::string s = to_str(input);
    const int64_t length = int_of(args.get(0, "length"), "truncate", "length", 255);
    const bool killwords = args.get(1, "killwords") != nullptr && truthy(*args.get(1, "killwords"));
    const Value* end_arg = args.get(2, "end");
    const std::string end = end_arg != nullptr ? to_str(*end_arg) : "...";
    const int64_t leeway = int_of(args.get(3, "leeway"), "truncate", "leeway", 5);
    const int64_t end_len = static_cast<int64_t>(chars(end));
    if (length < end_len) throw Error("truncate: expected length >= " + std::to_string(end_len));
    if (leeway < 0) throw Error("truncate: expected leeway >= 0");
    if (static_cast<int64_t>(chars(s)) <= length + leeway) {
      out = Value::string(s);
      return true;
    }
    std::string kept = first_chars(s, static_cast<size_t>(length - end_len));
    if (!killwords) {
      const size_t space = kept.rfind(' ');
      if (space != std::string::npos) kept.resize(space);
    }
    out = Value::string(kept + end);
    return true;
  }
  if (name == "urlencode") {
    if (input.is_dict() || input.is_list()) {
      std::string q;
      auto pair = [&](const Value& k, const Value& v) {
        q += (q.empty() ? "" : "&") + url_quote(to_str(k), true) + "=" + url_quote(to_str(v), true);
      };
      if (input.is_dict()) {
        for (const auto& [k, v] : input.as_dict().items) pair(Value::string(k), v);
      } else {
        for (const Value& item : input.as_list()) {
          if (!item.is_list() || item.as_list().size() != 2) throw Error("urlencode: needs pairs");
          pair(item.as_list()[0], item.as_list()[1]);
        }
      }
      out = Value::string(q);
    } else {
      out = Value::string(url_quote(to_str(input), false));
    }
    return true;
  }
  if (name == "batch" || name == "slice") {
    List items;
    if (input.is_list()) items = input.as_list();
    else if (input.is_string())
      for (char32_t c : utf8_decode(input.as_string()))
        items.push_back(Value::string(utf8_encode(std::u32string(1, c))));
    else if (input.is_dict())
      for (const auto& kv : input.as_dict().items) items.push_back(Value::string(kv.first));
    else throw Error(name + ": '" + type_name(input) + "' object is not iterable");
    const int64_t count = int_of(args.get(0, name == "batch" ? "linecount" : "slices"), name.c_str(), "count", 0);
    if (count <= 0) throw Error(name + ": the count must be positive");
    const Value* fill = args.get(1, "fill_with");
    const bool filling = fill != nullptr && !fill->is_none();
    List groups;
    const int64_t n = static_cast<int64_t>(items.size());
    if (name == "batch") {
      for (int64_t at = 0; at < n; at += count) {
        List g(items.begin() + at, items.begin() + std::min(n, at + count));
        while (filling && static_cast<int64_t>(g.size()) < count) g.push_back(*fill);
        groups.push_back(Value::list(std::move(g)));
      }
    } else {  // Jinja2's do_slice: the first n % count slices take one more
      const int64_t per = n / count, extra = n % count;
      int64_t offset = 0;
      for (int64_t k = 0; k < count; ++k) {
        const int64_t start = offset + k * per;
        if (k < extra) ++offset;
        const int64_t end = offset + (k + 1) * per;
        List g(items.begin() + start, items.begin() + end);
        if (filling && k >= extra) g.push_back(*fill);
        groups.push_back(Value::list(std::move(g)));
      }
    }
    out = Value::list(std::move(groups));
    return true;
  }
  return false;
}

}  // namespace onellm::jinja

// Values of the Jinja interpreter behind chat templates, with the Python
// semantics Jinja inherits (truthiness, ==, ordering, str(), repr()) and the
// json.dumps formatting transformers' `tojson` filter produces.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace onellm::jinja {

// Bounds that keep any template, however hostile, finite in time and memory.
struct Limits {
  size_t max_output_bytes = size_t{64} << 20;  // rendered text and any one string
  uint64_t max_steps = 50'000'000;             // evaluated nodes, loop turns, copied bytes / 64
  int max_nesting = 200;                       // syntax nesting and value nesting
  int max_call_depth = 64;                     // macro recursion
  size_t max_list_items = size_t{1} << 20;     // range(), list repetition, concatenation
  int max_eval_depth = 400;                    // evaluator recursion (expressions, blocks, calls)
};

inline constexpr int kMaxValueDepth = 256;

class Value;
class Renderer;
using List = std::vector<Value>;

// Insertion-ordered mapping with string keys (all JSON and chat-template
// dicts); small, so lookups scan.
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;  // namespace(): the one mutable object
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value value);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> named;
  // Argument `index` by position, else by `name`, else nullptr.
  const Value* get(size_t index, const char* name) const;
};

struct Callable {
  std::string name;
  std::function<Value(Renderer&, CallArgs&)> fn;
};

enum class Type { Undefined, None, Bool, Int, Float, String, List, Dict, Callable };

// A Jinja value. Strings, lists and dicts are shared and never mutated after
// construction (except namespaces), so copies are cheap and safe.
class Value {
 public:
  Value() = default;  // undefined
  static Value undefined(std::string name = "") {
    Value v;
    v.str_ = std::make_shared<const std::string>(std::move(name));
    return v;
  }
  static Value none() { Value v; v.type_ = Type::None; return v; }
  static Value boolean(bool b) { Value v; v.type_ = Type::Bool; v.i_ = b; return v; }
  static Value integer(int64_t i) { Value v; v.type_ = Type::Int; v.i_ = i; return v; }
  static Value number(double f) { Value v; v.type_ = Type::Float; v.f_ = f; return v; }
  static Value string(std::string s) {
    Value v; v.type_ = Type::String; v.str_ = std::make_shared<const std::string>(std::move(s));
    return v;
  }
  // Containers record their nesting depth (checked against kMaxValueDepth so
  // printing, comparing and destroying them never recurses too deep) and
  // whether they hold a namespace (namespaces may not contain themselves).
  static Value list(List items, bool is_tuple = false);
  static Value dict(Dict d);
  static Value callable(std::string name, std::function<Value(Renderer&, CallArgs&)> fn) {
    Value v; v.type_ = Type::Callable;
    v.fn_ = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
    return v;
  }

  Type type() const { return type_; }
  bool is_undefined() const { return type_ == Type::Undefined; }
  bool is_none() const { return type_ == Type::None; }
  bool is_string() const { return type_ == Type::String; }
  bool is_list() const { return type_ == Type::List; }
  bool is_dict() const { return type_ == Type::Dict; }
  bool is_int() const { return type_ == Type::Int || type_ == Type::Bool; }  // bool is an int in Python
  bool is_number() const { return is_int() || type_ == Type::Float; }
  bool is_tuple() const { return tuple_; }
  int depth() const { return depth_; }
  bool holds_namespace() const { return has_namespace_; }

  bool as_bool() const { return i_ != 0; }
  int64_t as_int() const { return i_; }
  double as_double() const { return type_ == Type::Float ? f_ : static_cast<double>(i_); }
  const std::string& as_string() const { return *str_; }
  const std::string& undefined_name() const;
  const List& as_list() const { return *list_; }
  const Dict& as_dict() const { return *dict_; }
  Dict& mutable_dict() const { return *dict_; }
  const Callable& as_callable() const { return *fn_; }

 private:
  Type type_ = Type::Undefined;
  bool tuple_ = false;
  bool has_namespace_ = false;
  int depth_ = 0;
  int64_t i_ = 0;
  double f_ = 0;
  std::shared_ptr<const std::string> str_;
  std::shared_ptr<const List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<const Callable> fn_;
};

const char* type_name(const Value& v);
bool truthy(const Value& v);
bool equals(const Value& a, const Value& b, int depth = 0);
// <0, 0, >0 like Python's ordering; throws Error for unorderable types.
int compare(const Value& a, const Value& b, int depth = 0);
std::string to_str(const Value& v);   // Python str()
std::string repr(const Value& v);     // Python repr()
std::string float_repr(double f);     // Python repr(float)

struct JsonFormat {
  int indent = -1;  // -1: single line
  std::string item_separator;  // defaults follow json.dumps: ", " or "," with indent
  std::string key_separator = ": ";
  bool sort_keys = false;
};
// json.dumps(v, ensure_ascii=False, ...) as transformers' tojson filter calls it.
std::string to_json(const Value& v, const JsonFormat& format);
Value from_json(const nlohmann::ordered_json& j, int depth = 0);

// UTF-8 helpers: Python strings index by code point.
std::u32string utf8_decode(const std::string& s);
std::string utf8_encode(const std::u32string& s);
bool is_ascii(const std::string& s);
size_t utf8_length(const std::string& s);

}  // namespace onellm::jinja

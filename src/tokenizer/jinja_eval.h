// Renders a parsed Jinja template: scopes, loops, macros, and the filters,
// tests and methods of jinja_builtins.cpp.
#pragma once

#include <memory>
#include <string>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_value.h"

namespace onellm::jinja {

struct Frame;

class Renderer {
 public:
  explicit Renderer(const Limits& limits) : limits_(limits) {}

  // `context` holds the template's variables (messages, tools, ...); the
  // built-in functions (range, namespace, raise_exception...) are added.
  std::string render(const Template& tmpl, const Dict& context);

  // For builtins: count work against the step budget, check a new string's
  // or list's size, and call a callable value.
  void charge(uint64_t steps);
  void check_string_size(size_t bytes) const;
  void check_list_size(size_t items) const;
  Value call(const Value& callee, CallArgs& args);
  const Limits& limits() const { return limits_; }

 private:
  enum class Flow { Normal, Break, Continue };
  struct DepthGuard;

  Flow exec_body(const Body& body, const std::shared_ptr<Frame>& frame);
  Flow exec(const Stmt& s, const std::shared_ptr<Frame>& frame);
  Flow exec_for(const Stmt& s, const std::shared_ptr<Frame>& frame);
  void exec_set(const Stmt& s, const std::shared_ptr<Frame>& frame);
  void define_macro(const Stmt& s, const std::shared_ptr<Frame>& frame);
  Value call_macro(const Stmt& s, const std::weak_ptr<Frame>& scope, CallArgs& args);
  std::string capture(const Body& body, const std::shared_ptr<Frame>& frame);
  void emit(const std::string& text);

  Value eval(const Expr& e, const std::shared_ptr<Frame>& frame);
  Value eval_call(const Expr& e, const std::shared_ptr<Frame>& frame);
  Value eval_filter(const Expr& e, const std::shared_ptr<Frame>& frame, const Value* input);
  Value eval_test(const Expr& e, const std::shared_ptr<Frame>& frame);
  Value eval_binary(const Expr& e, const std::shared_ptr<Frame>& frame);
  Value eval_literal_container(const Expr& e, const std::shared_ptr<Frame>& frame);
  CallArgs eval_args(const Expr& e, const std::shared_ptr<Frame>& frame, size_t first);

  Limits limits_;
  std::string out_;
  uint64_t steps_ = 0;
  int depth_ = 0;
  int call_depth_ = 0;
};

// ---- builtins (jinja_builtins.cpp, jinja_methods.cpp) ----
Value apply_filter(Renderer& r, const std::string& name, const Value& input, CallArgs& args);
// format, center, truncate, urlencode, batch, slice (jinja_filters_text.cpp):
// false when `name` is none of them.
bool apply_text_filter(const std::string& name, const Value& input, CallArgs& args, Value& out);
bool apply_test(Renderer& r, const std::string& name, const Value& input, CallArgs& args);
// Jinja's getattr: methods of strings and dicts, then dict keys.
Value get_attribute(Renderer& r, const Value& object, const std::string& name);
// Jinja's getitem: dict keys, list and string indexes (undefined if absent).
Value get_item(const Value& object, const Value& key);
Value slice_value(Renderer& r, const Value& object, const Value& start, const Value& stop, const Value& step);
bool contains(const Value& container, const Value& item);
// Calls method `name` of a string, dict or list; sets `found` false if none.
Value call_method(Renderer& r, const Value& object, const std::string& name, CallArgs& args, bool& found);
void add_global_functions(Dict& globals);
// Python arithmetic; throws Error for unsupported operand types or overflow.
Value arithmetic(Renderer& r, const std::string& op, const Value& a, const Value& b);

}  // namespace onellm::jinja

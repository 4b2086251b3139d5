#include "tokenizer/jinja_eval.h"

#include <utility>

namespace onellm::jinja {

// One scope. Loop iterations, macro calls and `with` blocks get a child
// frame; `if` bodies write into the enclosing one, as in Jinja.
struct Frame {
  std::vector<std::pair<std::string, Value>> vars;
  std::shared_ptr<Frame> parent;

  const Value* lookup(const std::string& name) const {
    for (const Frame* f = this; f; f = f->parent.get()) {
      for (const auto& [k, v] : f->vars) {
        if (k == name) return &v;
      }
    }
    return nullptr;
  }
  void set(const std::string& name, Value value) {
    for (auto& [k, v] : vars) {
      if (k == name) {
        v = std::move(value);
        return;
      }
    }
    vars.emplace_back(name, std::move(value));
  }
};

namespace {

// A runtime error that already names its template position.
class PositionedError : public Error {
 public:
  using Error::Error;
};

std::shared_ptr<Frame> child_of(const std::shared_ptr<Frame>& parent) {
  auto f = std::make_shared<Frame>();
  f->parent = parent;
  return f;
}

template <typename F>
auto at_position(const Expr& e, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const PositionedError&) {
    throw;
  } catch (const Error& err) {
    throw PositionedError("chat template error at line " + std::to_string(e.line) + ", column " +
                          std::to_string(e.column) + ": " + err.what());
  }
}

}  // namespace

struct Renderer::DepthGuard {
  Renderer& r;
  explicit DepthGuard(Renderer& renderer) : r(renderer) {
    if (++r.depth_ > r.limits_.max_eval_depth) {
      --r.depth_;
      throw Error("chat template recursion deeper than " + std::to_string(r.limits_.max_eval_depth));
    }
    r.charge(1);
  }
  ~DepthGuard() { --r.depth_; }
};

void Renderer::charge(uint64_t steps) {
  steps_ += steps;
  if (steps_ > limits_.max_steps) {
    throw Error("chat template exceeded its step limit (" + std::to_string(limits_.max_steps) + ")");
  }
}

void Renderer::check_string_size(size_t bytes) const {
  if (bytes > limits_.max_output_bytes) {
    throw Error("chat template string larger than " + std::to_string(limits_.max_output_bytes) + " bytes");
  }
}

void Renderer::check_list_size(size_t items) const {
  if (items > limits_.max_list_items) {
    throw Error("chat template list longer than " + std::to_string(limits_.max_list_items) + " items");
  }
}

std::string Renderer::render(const Template& tmpl, const Dict& context) {
  auto root = std::make_shared<Frame>();
  Dict globals;
  add_global_functions(globals);
  for (auto& [k, v] : globals.items) root->set(k, v);
  for (const auto& [k, v] : context.items) root->set(k, v);
  out_.clear();
  steps_ = 0;
  exec_body(tmpl.body, root);
  return std::move(out_);
}

void Renderer::emit(const std::string& text) {
  check_string_size(out_.size() + text.size());
  charge(text.size() / 64);
  out_ += text;
}

std::string Renderer::capture(const Body& body, const std::shared_ptr<Frame>& frame) {
  std::string saved = std::move(out_);
  out_.clear();
  try {
    exec_body(body, frame);
  } catch (...) {
    out_ = std::move(saved);
    throw;
  }
  std::string captured = std::move(out_);
  out_ = std::move(saved);
  check_string_size(out_.size() + captured.size());
  return captured;
}

Renderer::Flow Renderer::exec_body(const Body& body, const std::shared_ptr<Frame>& frame) {
  for (const StmtPtr& s : body) {
    Flow flow = exec(*s, frame);
    if (flow != Flow::Normal) return flow;
  }
  return Flow::Normal;
}

Renderer::Flow Renderer::exec(const Stmt& s, const std::shared_ptr<Frame>& frame) {
  DepthGuard guard(*this);
  switch (s.kind) {
    case StmtKind::Text: emit(s.text); break;
    case StmtKind::Output: emit(to_str(eval(*s.expr, frame))); break;
    case StmtKind::If:
      for (size_t i = 0; i < s.conditions.size(); ++i) {
        if (truthy(eval(*s.conditions[i], frame))) return exec_body(s.bodies[i], frame);
      }
      return exec_body(s.else_body, frame);
    case StmtKind::For: return exec_for(s, frame);
    case StmtKind::Set: exec_set(s, frame); break;
    case StmtKind::SetBlock: frame->set(s.targets[0], Value::string(capture(s.body, frame))); break;
    case StmtKind::Macro: define_macro(s, frame); break;
    case StmtKind::Do: eval(*s.expr, frame); break;
    case StmtKind::FilterBlock: {
      Value text = Value::string(capture(s.body, frame));
      emit(to_str(eval_filter(*s.expr, frame, &text)));
      break;
    }
    case StmtKind::Scope: {
      auto scope = child_of(frame);
      for (size_t i = 0; i < s.targets.size(); ++i) scope->set(s.targets[i], eval(*s.values[i], frame));
      return exec_body(s.body, scope);
    }
    case StmtKind::Break: return Flow::Break;
    case StmtKind::Continue: return Flow::Continue;
  }
  return Flow::Normal;
}

static List iteration_items(const Value& v) {
  switch (v.type()) {
    case Type::Undefined: return {};
    case Type::List: return v.as_list();
    case Type::Dict: {
      if (v.as_dict().is_namespace) break;
      List keys;
      for (const auto& item : v.as_dict().items) keys.push_back(Value::string(item.first));
      return keys;
    }
    case Type::String: {
      List chars;
      for (char32_t c : utf8_decode(v.as_string())) chars.push_back(Value::string(utf8_encode(std::u32string(1, c))));
      return chars;
    }
    default: break;
  }
  throw Error(std::string("'") + type_name(v) + "' object is not iterable");
}

static void assign_targets(Frame& frame, const std::vector<std::string>& targets, const Value& value) {
  if (targets.size() == 1) {
    frame.set(targets[0], value);
    return;
  }
  if (!value.is_list() || value.as_list().size() != targets.size()) {
    throw Error("cannot unpack " + std::string(type_name(value)) + " into " + std::to_string(targets.size()) +
                " names");
  }
  for (size_t i = 0; i < targets.size(); ++i) frame.set(targets[i], value.as_list()[i]);
}

Renderer::Flow Renderer::exec_for(const Stmt& s, const std::shared_ptr<Frame>& frame) {
  Value iterable = eval(*s.expr, frame);
  List items = at_position(*s.expr, [&] { return iteration_items(iterable); });
  if (s.filter) {
    List kept;
    for (const Value& item : items) {
      auto probe = child_of(frame);
      at_position(*s.expr, [&] { assign_targets(*probe, s.targets, item); return 0; });
      if (truthy(eval(*s.filter, probe))) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec_body(s.else_body, frame);
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    charge(1);
    auto scope = child_of(frame);
    at_position(*s.expr, [&] { assign_targets(*scope, s.targets, items[i]); return 0; });
    Dict loop;
    loop.set("index", Value::integer(i + 1));
    loop.set("index0", Value::integer(i));
    loop.set("revindex", Value::integer(n - i));
    loop.set("revindex0", Value::integer(n - i - 1));
    loop.set("first", Value::boolean(i == 0));
    loop.set("last", Value::boolean(i == n - 1));
    loop.set("length", Value::integer(n));
    loop.set("depth", Value::integer(1));
    loop.set("depth0", Value::integer(0));
    loop.set("previtem", i > 0 ? items[i - 1] : Value::undefined("loop.previtem"));
    loop.set("nextitem", i + 1 < n ? items[i + 1] : Value::undefined("loop.nextitem"));
    loop.set("cycle", Value::callable("loop.cycle", [i](Renderer&, CallArgs& args) {
      if (args.positional.empty()) throw Error("loop.cycle() needs at least one argument");
      return args.positional[static_cast<size_t>(i) % args.positional.size()];
    }));
    scope->set("loop", Value::dict(std::move(loop)));
    Flow flow = exec_body(s.body, scope);
    if (flow == Flow::Break) break;
  }
  return Flow::Normal;
}

void Renderer::exec_set(const Stmt& s, const std::shared_ptr<Frame>& frame) {
  Value value = eval(*s.expr, frame);
  if (s.attr_object) {
    const Value* target = frame->lookup(s.attr_object->name);
    at_position(*s.attr_object, [&] {
      if (!target || !target->is_dict() || !target->as_dict().is_namespace) {
        throw Error("cannot set attribute '" + s.text + "' of '" + s.attr_object->name + "': not a namespace");
      }
      if (value.holds_namespace()) throw Error("a namespace cannot be stored inside a namespace");
      target->mutable_dict().set(s.text, value);
      return 0;
    });
    return;
  }
  at_position(*s.expr, [&] { assign_targets(*frame, s.targets, value); return 0; });
}

void Renderer::define_macro(const Stmt& s, const std::shared_ptr<Frame>& frame) {
  std::weak_ptr<Frame> scope = frame;  // weak: the frame holds the macro, avoid a cycle
  const Stmt* stmt = &s;
  frame->set(s.text, Value::callable(s.text, [stmt, scope](Renderer& r, CallArgs& args) {
    return r.call_macro(*stmt, scope, args);
  }));
}

Value Renderer::call_macro(const Stmt& s, const std::weak_ptr<Frame>& scope, CallArgs& args) {
  std::shared_ptr<Frame> parent = scope.lock();
  if (!parent) throw Error("macro '" + s.text + "' called after its scope ended");
  if (call_depth_ >= limits_.max_call_depth) {
    throw Error("macro calls nested deeper than " + std::to_string(limits_.max_call_depth));
  }
  if (args.positional.size() > s.params.size()) throw Error("too many arguments for macro '" + s.text + "'");
  auto frame = child_of(parent);
  for (size_t i = 0; i < s.params.size(); ++i) {
    const MacroParam& p = s.params[i];
    const Value* given = args.get(i, p.name.c_str());
    if (given) frame->set(p.name, *given);
    else if (p.default_value) frame->set(p.name, eval(*p.default_value, frame));
    else frame->set(p.name, Value::undefined(p.name));
  }
  for (const auto& [k, v] : args.named) {
    bool known = false;
    for (const auto& p : s.params) known |= p.name == k;
    if (!known) throw Error("macro '" + s.text + "' has no argument named '" + k + "'");
  }
  ++call_depth_;
  std::string text;
  try {
    text = capture(s.body, frame);
  } catch (...) {
    --call_depth_;
    throw;
  }
  --call_depth_;
  return Value::string(std::move(text));
}

Value Renderer::call(const Value& callee, CallArgs& args) {
  if (callee.is_undefined()) throw Error("'" + callee.undefined_name() + "' is undefined");
  if (callee.type() != Type::Callable) throw Error(std::string("'") + type_name(callee) + "' object is not callable");
  return callee.as_callable().fn(*this, args);
}

CallArgs Renderer::eval_args(const Expr& e, const std::shared_ptr<Frame>& frame, size_t first) {
  CallArgs args;
  for (size_t i = first; i < e.args.size(); ++i) args.positional.push_back(eval(*e.args[i], frame));
  for (const auto& [k, v] : e.kwargs) args.named.emplace_back(k, eval(*v, frame));
  return args;
}

Value Renderer::eval(const Expr& e, const std::shared_ptr<Frame>& frame) {
  DepthGuard guard(*this);
  switch (e.kind) {
    case ExprKind::Literal: return e.value;
    case ExprKind::Name: {
      const Value* v = frame->lookup(e.name);
      return v ? *v : Value::undefined(e.name);
    }
    case ExprKind::ListLit:
    case ExprKind::TupleLit:
    case ExprKind::DictLit: return eval_literal_container(e, frame);
    case ExprKind::Attr: {
      Value object = eval(*e.args[0], frame);
      return at_position(e, [&] { return get_attribute(*this, object, e.name); });
    }
    case ExprKind::Index: {
      Value object = eval(*e.args[0], frame);
      Value key = eval(*e.args[1], frame);
      return at_position(e, [&] {
        if (object.is_undefined()) throw Error("'" + object.undefined_name() + "' is undefined");
        return get_item(object, key);
      });
    }
    case ExprKind::Slice: {
      Value object = eval(*e.args[0], frame);
      Value parts[3];
      for (int i = 0; i < 3; ++i) parts[i] = e.args[i + 1] ? eval(*e.args[i + 1], frame) : Value::none();
      return at_position(e, [&] { return slice_value(*this, object, parts[0], parts[1], parts[2]); });
    }
    case ExprKind::Call: return eval_call(e, frame);
    case ExprKind::Filter: return eval_filter(e, frame, nullptr);
    case ExprKind::Test: return eval_test(e, frame);
    case ExprKind::Unary: {
      Value v = eval(*e.args[0], frame);
      if (e.name == "not") return Value::boolean(!truthy(v));
      return at_position(e, [&] {
        if (!v.is_number()) throw Error(std::string("bad operand type for unary ") + e.name + ": '" + type_name(v) + "'");
        if (e.name == "+") return v.type() == Type::Bool ? Value::integer(v.as_int()) : v;
        if (v.type() == Type::Float) return Value::number(-v.as_double());
        if (v.as_int() == INT64_MIN) throw Error("integer overflow");
        return Value::integer(-v.as_int());
      });
    }
    case ExprKind::Binary: return eval_binary(e, frame);
    case ExprKind::And: {
      Value a = eval(*e.args[0], frame);
      return truthy(a) ? eval(*e.args[1], frame) : a;
    }
    case ExprKind::Or: {
      Value a = eval(*e.args[0], frame);
      return truthy(a) ? a : eval(*e.args[1], frame);
    }
    case ExprKind::CondExpr:
      if (truthy(eval(*e.args[0], frame))) return eval(*e.args[1], frame);
      return e.args[2] ? eval(*e.args[2], frame) : Value::undefined("conditional expression");
  }
  return Value();
}

Value Renderer::eval_literal_container(const Expr& e, const std::shared_ptr<Frame>& frame) {
  return at_position(e, [&] {
    if (e.kind == ExprKind::DictLit) {
      Dict d;
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value key = eval(*e.args[i], frame);
        if (!key.is_string()) throw Error(std::string("dict keys must be strings, not ") + type_name(key));
        d.set(key.as_string(), eval(*e.args[i + 1], frame));
      }
      return Value::dict(std::move(d));
    }
    List items;
    for (const auto& a : e.args) items.push_back(eval(*a, frame));
    return Value::list(std::move(items), e.kind == ExprKind::TupleLit);
  });
}

Value Renderer::eval_call(const Expr& e, const std::shared_ptr<Frame>& frame) {
  const Expr& callee = *e.args[0];
  if (callee.kind == ExprKind::Attr) {
    // obj.method(...): call string/dict methods directly.
    Value object = eval(*callee.args[0], frame);
    CallArgs args = eval_args(e, frame, 1);
    return at_position(e, [&] {
      bool found = false;
      Value result = call_method(*this, object, callee.name, args, found);
      if (found) return result;
      return call(get_attribute(*this, object, callee.name), args);
    });
  }
  Value fn = eval(callee, frame);
  CallArgs args = eval_args(e, frame, 1);
  return at_position(e, [&] { return call(fn, args); });
}

Value Renderer::eval_filter(const Expr& e, const std::shared_ptr<Frame>& frame, const Value* input) {
  Value value = input ? *input : eval(*e.args[0], frame);
  CallArgs args = eval_args(e, frame, 1);
  return at_position(e, [&] { return apply_filter(*this, e.name, value, args); });
}

Value Renderer::eval_test(const Expr& e, const std::shared_ptr<Frame>& frame) {
  Value value = eval(*e.args[0], frame);
  CallArgs args = eval_args(e, frame, 1);
  bool result = at_position(e, [&] { return apply_test(*this, e.name, value, args); });
  return Value::boolean(result != e.negated);
}

Value Renderer::eval_binary(const Expr& e, const std::shared_ptr<Frame>& frame) {
  Value a = eval(*e.args[0], frame);
  Value b = eval(*e.args[1], frame);
  const std::string& op = e.name;
  return at_position(e, [&] {
    if (op == "==") return Value::boolean(equals(a, b));
    if (op == "!=") return Value::boolean(!equals(a, b));
    if (op == "<") return Value::boolean(compare(a, b) < 0);
    if (op == "<=") return Value::boolean(compare(a, b) <= 0);
    if (op == ">") return Value::boolean(compare(a, b) > 0);
    if (op == ">=") return Value::boolean(compare(a, b) >= 0);
    if (op == "in") return Value::boolean(contains(b, a));
    if (op == "not in") return Value::boolean(!contains(b, a));
    if (op == "~") {
      std::string s = to_str(a) + to_str(b);
      check_string_size(s.size());
      charge(s.size() / 64);
      return Value::string(std::move(s));
    }
    return arithmetic(*this, op, a, b);
  });
}

}  // namespace onellm::jinja

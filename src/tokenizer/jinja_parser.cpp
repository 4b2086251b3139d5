// Recursive-descent parser for the Jinja subset chat templates use, with
// Jinja's operator precedence: condexpr < or < and < not < compare < +,- <
// ~ < *,/,//,% < ** < unary < postfix/filters.
#include <algorithm>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_lexer.h"

namespace onellm::jinja {
namespace {

class Parser {
 public:
  Parser(std::vector<Token> tokens, const Limits& limits) : toks_(std::move(tokens)), limits_(limits) {}

  Template run() {
    Template t;
    std::string end = parse_body(t.body, {});
    if (!end.empty()) fail(cur(), "unexpected '" + end + "'");
    return t;
  }

 private:
  struct Guard {
    Parser& p;
    Guard(Parser& parser, const Token& at) : p(parser) {
      if (++p.depth_ > p.limits_.max_nesting) p.fail(at, "template nested too deeply");
    }
    ~Guard() { --p.depth_; }
  };

  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t ahead = 1) const { return toks_[std::min(pos_ + ahead, toks_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }

  [[noreturn]] void fail(const Token& at, const std::string& message) const {
    throw Error("chat template syntax error at line " + std::to_string(at.line) + ", column " +
                std::to_string(at.column) + ": " + message);
  }

  bool is_op(const char* op) const { return cur().kind == TokenKind::Operator && cur().text == op; }
  bool is_name(const char* name) const { return cur().kind == TokenKind::Name && cur().text == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail(cur(), std::string("expected '") + op + "', found '" + describe(cur()) + "'");
  }
  std::string expect_name() {
    if (cur().kind != TokenKind::Name) fail(cur(), "expected a name, found '" + describe(cur()) + "'");
    std::string n = cur().text;
    advance();
    return n;
  }
  void expect_block_end() {
    if (cur().kind != TokenKind::BlockEnd) fail(cur(), "expected '%}', found '" + describe(cur()) + "'");
    advance();
  }
  static std::string describe(const Token& t) {
    switch (t.kind) {
      case TokenKind::End: return "end of template";
      case TokenKind::Text: return "text";
      case TokenKind::String: return "string literal";
      default: return t.text;
    }
  }

  ExprPtr make(ExprKind kind, const Token& at, std::vector<ExprPtr> args = {}) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->column = at.column;
    for (const auto& a : args) {
      if (a) e->height = std::max(e->height, a->height + 1);
    }
    if (e->height > limits_.max_nesting) fail(at, "expression nested too deeply");
    e->args = std::move(args);
    return e;
  }
  void add_kwarg_heights(Expr& e, const Token& at) {
    for (const auto& [k, v] : e.kwargs) e.height = std::max(e.height, v->height + 1);
    if (e.height > limits_.max_nesting) fail(at, "expression nested too deeply");
  }

  // ---- statements ----

  // Parses statements until one of `end_tags` opens a block; returns that tag
  // name (left unconsumed after the '{%') or "" at the end of the template.
  std::string parse_body(Body& body, const std::vector<std::string>& end_tags) {
    Guard guard(*this, cur());
    while (true) {
      const Token& t = cur();
      if (t.kind == TokenKind::End) {
        if (!end_tags.empty()) fail(t, "unexpected end of template, expected '{% " + end_tags.front() + " %}'");
        return "";
      }
      if (t.kind == TokenKind::Text) {
        auto s = new_stmt(StmtKind::Text, t);
        s->text = t.text;
        body.push_back(std::move(s));
        advance();
      } else if (t.kind == TokenKind::VarBegin) {
        advance();
        auto s = new_stmt(StmtKind::Output, t);
        s->expr = parse_tuple(true);
        if (cur().kind != TokenKind::VarEnd) fail(cur(), "expected '}}', found '" + describe(cur()) + "'");
        advance();
        body.push_back(std::move(s));
      } else if (t.kind == TokenKind::BlockBegin) {
        const Token& name_tok = peek();
        if (name_tok.kind != TokenKind::Name) fail(name_tok, "expected a statement name");
        if (std::find(end_tags.begin(), end_tags.end(), name_tok.text) != end_tags.end()) {
          advance();
          return name_tok.text;
        }
        advance();
        body.push_back(parse_statement());
      } else {
        fail(t, "unexpected '" + describe(t) + "'");
      }
    }
  }

  StmtPtr new_stmt(StmtKind kind, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = at.line;
    s->column = at.column;
    return s;
  }

  // Consumes `{% name %}` where the '{%' and name are current.
  void expect_end_tag(const std::string& name) {
    if (!skip_name(name.c_str())) fail(cur(), "expected '" + name + "'");
    expect_block_end();
  }

  StmtPtr parse_statement() {
    const Token& t = cur();
    std::string kw = expect_name();
    if (kw == "if") return parse_if(t);
    if (kw == "for") return parse_for(t);
    if (kw == "set") return parse_set(t);
    if (kw == "macro") return parse_macro(t);
    if (kw == "break" || kw == "continue") {
      expect_block_end();
      return new_stmt(kw == "break" ? StmtKind::Break : StmtKind::Continue, t);
    }
    if (kw == "do") {
      auto s = new_stmt(StmtKind::Do, t);
      s->expr = parse_tuple(true);
      expect_block_end();
      return s;
    }
    if (kw == "filter") {
      auto s = new_stmt(StmtKind::FilterBlock, t);
      s->expr = parse_filter(make(ExprKind::Literal, t), t);
      expect_block_end();
      parse_body(s->body, {"endfilter"});
      expect_end_tag("endfilter");
      return s;
    }
    if (kw == "with" || kw == "generation") {
      auto s = new_stmt(StmtKind::Scope, t);
      while (kw == "with" && cur().kind != TokenKind::BlockEnd) {
        if (!s->targets.empty()) expect_op(",");
        s->targets.push_back(expect_name());
        expect_op("=");
        s->values.push_back(parse_expression(true));
      }
      expect_block_end();
      std::string end = "end" + kw;
      parse_body(s->body, {end});
      expect_end_tag(end);
      return s;
    }
    fail(t, "unsupported statement '" + kw + "'");
  }

  StmtPtr parse_if(const Token& t) {
    auto s = new_stmt(StmtKind::If, t);
    s->conditions.push_back(parse_tuple(true));
    expect_block_end();
    while (true) {
      s->bodies.emplace_back();
      std::string end = parse_body(s->bodies.back(), {"elif", "else", "endif"});
      advance();  // the tag name
      if (end == "elif") {
        s->conditions.push_back(parse_tuple(true));
        expect_block_end();
      } else if (end == "else") {
        expect_block_end();
        parse_body(s->else_body, {"endif"});
        expect_end_tag("endif");
        return s;
      } else {
        expect_block_end();
        return s;
      }
    }
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool paren = skip_op("(");
    names.push_back(expect_name());
    while (skip_op(",")) names.push_back(expect_name());
    if (paren) expect_op(")");
    return names;
  }

  StmtPtr parse_for(const Token& t) {
    auto s = new_stmt(StmtKind::For, t);
    s->targets = parse_targets();
    if (!skip_name("in")) fail(cur(), "expected 'in' in for loop");
    s->expr = parse_tuple(false);
    if (skip_name("if")) s->filter = parse_expression(true);
    if (is_name("recursive")) fail(cur(), "recursive loops are not supported");
    expect_block_end();
    std::string end = parse_body(s->body, {"else", "endfor"});
    advance();
    expect_block_end();
    if (end == "else") {
      parse_body(s->else_body, {"endfor"});
      expect_end_tag("endfor");
    }
    return s;
  }

  StmtPtr parse_set(const Token& t) {
    const Token& target_tok = cur();
    std::string first = expect_name();
    if (skip_op(".")) {
      auto s = new_stmt(StmtKind::Set, t);
      s->attr_object = make(ExprKind::Name, target_tok);
      s->attr_object->name = first;
      s->text = expect_name();
      expect_op("=");
      s->expr = parse_tuple(true);
      expect_block_end();
      return s;
    }
    std::vector<std::string> targets{first};
    while (skip_op(",")) targets.push_back(expect_name());
    if (cur().kind == TokenKind::BlockEnd && targets.size() == 1) {
      advance();
      auto s = new_stmt(StmtKind::SetBlock, t);
      s->targets = std::move(targets);
      parse_body(s->body, {"endset"});
      expect_end_tag("endset");
      return s;
    }
    auto s = new_stmt(StmtKind::Set, t);
    s->targets = std::move(targets);
    expect_op("=");
    s->expr = parse_tuple(true);
    expect_block_end();
    return s;
  }

  StmtPtr parse_macro(const Token& t) {
    auto s = new_stmt(StmtKind::Macro, t);
    s->text = expect_name();
    expect_op("(");
    while (!skip_op(")")) {
      if (!s->params.empty()) expect_op(",");
      MacroParam p;
      p.name = expect_name();
      if (skip_op("=")) p.default_value = parse_expression(true);
      s->params.push_back(std::move(p));
    }
    expect_block_end();
    parse_body(s->body, {"endmacro"});
    advance();
    if (cur().kind == TokenKind::Name) advance();  // {% endmacro name %}
    expect_block_end();
    return s;
  }

  // ---- expressions ----

  ExprPtr parse_tuple(bool with_condexpr) {
    const Token& t = cur();
    ExprPtr first = parse_expression(with_condexpr);
    if (!is_op(",")) return first;
    std::vector<ExprPtr> items;
    items.push_back(std::move(first));
    while (skip_op(",")) {
      if (cur().kind == TokenKind::BlockEnd || cur().kind == TokenKind::VarEnd) break;
      items.push_back(parse_expression(with_condexpr));
    }
    return make(ExprKind::TupleLit, t, std::move(items));
  }

  ExprPtr parse_expression(bool with_condexpr) {
    Guard guard(*this, cur());
    ExprPtr e = parse_or();
    if (!with_condexpr) return e;
    while (is_name("if")) {
      const Token& t = cur();
      advance();
      ExprPtr cond = parse_or();
      ExprPtr otherwise = skip_name("else") ? parse_expression(true) : nullptr;
      std::vector<ExprPtr> args;
      args.push_back(std::move(cond));
      args.push_back(std::move(e));
      args.push_back(std::move(otherwise));
      e = make(ExprKind::CondExpr, t, std::move(args));
    }
    return e;
  }

  ExprPtr binary(ExprKind kind, const Token& at, std::string op, ExprPtr a, ExprPtr b) {
    std::vector<ExprPtr> args;
    args.push_back(std::move(a));
    args.push_back(std::move(b));
    ExprPtr e = make(kind, at, std::move(args));
    e->name = std::move(op);
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      const Token& t = cur();
      advance();
      e = binary(ExprKind::Or, t, "or", std::move(e), parse_and());
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      const Token& t = cur();
      advance();
      e = binary(ExprKind::And, t, "and", std::move(e), parse_not());
    }
    return e;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      Guard guard(*this, cur());
      const Token& t = cur();
      advance();
      std::vector<ExprPtr> args;
      args.push_back(parse_not());
      ExprPtr e = make(ExprKind::Unary, t, std::move(args));
      e->name = "not";
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    ExprPtr e = parse_math1();
    while (true) {
      const Token& t = cur();
      if (t.kind == TokenKind::Operator &&
          (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == "<=" || t.text == ">" || t.text == ">=")) {
        std::string op = t.text;
        advance();
        e = binary(ExprKind::Binary, t, op, std::move(e), parse_math1());
      } else if (is_name("in")) {
        advance();
        e = binary(ExprKind::Binary, t, "in", std::move(e), parse_math1());
      } else if (is_name("not") && peek().kind == TokenKind::Name && peek().text == "in") {
        advance();
        advance();
        e = binary(ExprKind::Binary, t, "not in", std::move(e), parse_math1());
      } else {
        return e;
      }
    }
  }

  template <typename Next>
  ExprPtr parse_binary_level(std::initializer_list<const char*> ops, Next next) {
    ExprPtr e = (this->*next)();
    while (true) {
      const Token& t = cur();
      if (t.kind != TokenKind::Operator) return e;
      auto it = std::find_if(ops.begin(), ops.end(), [&](const char* op) { return t.text == op; });
      if (it == ops.end()) return e;
      advance();
      e = binary(ExprKind::Binary, t, *it, std::move(e), (this->*next)());
    }
  }

  ExprPtr parse_math1() { return parse_binary_level({"+", "-"}, &Parser::parse_concat); }
  ExprPtr parse_concat() { return parse_binary_level({"~"}, &Parser::parse_math2); }
  ExprPtr parse_math2() { return parse_binary_level({"*", "/", "//", "%"}, &Parser::parse_pow); }
  ExprPtr parse_pow() { return parse_binary_level({"**"}, &Parser::parse_unary_with_filter); }
  ExprPtr parse_unary_with_filter() { return parse_unary(true); }

  ExprPtr parse_unary(bool with_filter) {
    Guard guard(*this, cur());
    const Token& t = cur();
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      std::string op = t.text;
      advance();
      std::vector<ExprPtr> args;
      args.push_back(parse_unary(false));
      e = make(ExprKind::Unary, t, std::move(args));
      e->name = op;
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    Guard guard(*this, cur());
    const Token& t = cur();
    switch (t.kind) {
      case TokenKind::Name: {
        advance();
        ExprPtr e = make(ExprKind::Literal, t);
        if (t.text == "true" || t.text == "True") e->value = Value::boolean(true);
        else if (t.text == "false" || t.text == "False") e->value = Value::boolean(false);
        else if (t.text == "none" || t.text == "None") e->value = Value::none();
        else {
          e->kind = ExprKind::Name;
          e->name = t.text;
        }
        return e;
      }
      case TokenKind::String: {
        std::string s;
        while (cur().kind == TokenKind::String) {  // adjacent literals concatenate
          s += cur().text;
          advance();
        }
        ExprPtr e = make(ExprKind::Literal, t);
        e->value = Value::string(std::move(s));
        return e;
      }
      case TokenKind::Integer:
      case TokenKind::Float: {
        advance();
        ExprPtr e = make(ExprKind::Literal, t);
        e->value = t.kind == TokenKind::Integer ? Value::integer(t.int_value) : Value::number(t.float_value);
        return e;
      }
      case TokenKind::Operator:
        if (t.text == "(") {
          advance();
          if (skip_op(")")) return make(ExprKind::TupleLit, t);
          ExprPtr first = parse_expression(true);
          if (skip_op(")")) return first;
          std::vector<ExprPtr> items;
          items.push_back(std::move(first));
          while (skip_op(",")) {
            if (is_op(")")) break;
            items.push_back(parse_expression(true));
          }
          expect_op(")");
          return make(ExprKind::TupleLit, t, std::move(items));
        }
        if (t.text == "[") {
          advance();
          std::vector<ExprPtr> items;
          while (!skip_op("]")) {
            if (!items.empty()) {
              expect_op(",");
              if (skip_op("]")) break;
            }
            items.push_back(parse_expression(true));
          }
          return make(ExprKind::ListLit, t, std::move(items));
        }
        if (t.text == "{") {
          advance();
          std::vector<ExprPtr> items;
          while (!skip_op("}")) {
            if (!items.empty()) {
              expect_op(",");
              if (skip_op("}")) break;
            }
            items.push_back(parse_expression(true));
            expect_op(":");
            items.push_back(parse_expression(true));
          }
          return make(ExprKind::DictLit, t, std::move(items));
        }
        break;
      default: break;
    }
    fail(t, "unexpected '" + describe(t) + "'");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      const Token& t = cur();
      if (is_op(".")) {
        advance();
        if (cur().kind == TokenKind::Integer) {  // x.0 is x[0]
          ExprPtr idx = make(ExprKind::Literal, cur());
          idx->value = Value::integer(cur().int_value);
          advance();
          std::vector<ExprPtr> args;
          args.push_back(std::move(e));
          args.push_back(std::move(idx));
          e = make(ExprKind::Index, t, std::move(args));
          continue;
        }
        std::string name = expect_name();
        std::vector<ExprPtr> args;
        args.push_back(std::move(e));
        e = make(ExprKind::Attr, t, std::move(args));
        e->name = name;
      } else if (is_op("[")) {
        advance();
        e = parse_subscript(std::move(e), t);
      } else if (is_op("(")) {
        advance();
        std::vector<ExprPtr> args;
        args.push_back(std::move(e));
        e = parse_call_args(make(ExprKind::Call, t), std::move(args), t);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr object, const Token& t) {
    std::vector<ExprPtr> parts(3);
    bool is_slice = false;
    for (int i = 0; i < 3; ++i) {
      if (!is_op(":") && !is_op("]")) parts[i] = parse_expression(true);
      if (i < 2 && skip_op(":")) {
        is_slice = true;
        continue;
      }
      break;
    }
    expect_op("]");
    std::vector<ExprPtr> args;
    args.push_back(std::move(object));
    if (!is_slice) {
      if (!parts[0]) fail(t, "empty subscript");
      args.push_back(std::move(parts[0]));
      return make(ExprKind::Index, t, std::move(args));
    }
    for (auto& p : parts) args.push_back(std::move(p));
    return make(ExprKind::Slice, t, std::move(args));
  }

  // Fills `node` (Call, Filter or Test) with `head` followed by the
  // arguments of a parenthesised list whose '(' is already consumed.
  ExprPtr parse_call_args(ExprPtr node, std::vector<ExprPtr> head, const Token& t) {
    std::vector<ExprPtr> args = std::move(head);
    bool first = true;
    while (!skip_op(")")) {
      if (!first) {
        expect_op(",");
        if (skip_op(")")) break;
      }
      first = false;
      if (is_op("*") || is_op("**")) fail(cur(), "*args and **kwargs are not supported");
      if (cur().kind == TokenKind::Name && peek().kind == TokenKind::Operator && peek().text == "=") {
        std::string key = cur().text;
        advance();
        advance();
        node->kwargs.emplace_back(key, parse_expression(true));
      } else {
        if (!node->kwargs.empty()) fail(cur(), "positional argument after keyword argument");
        args.push_back(parse_expression(true));
      }
    }
    ExprKind kind = node->kind;
    std::string name = node->name;
    auto kwargs = std::move(node->kwargs);
    ExprPtr e = make(kind, t, std::move(args));
    e->name = name;
    e->kwargs = std::move(kwargs);
    add_kwarg_heights(*e, t);
    return e;
  }

  ExprPtr parse_filter(ExprPtr value, const Token& t) {
    const Token& name_tok = cur();
    std::string name = expect_name();
    while (skip_op(".")) {
      name += '.';
      name += expect_name();
    }
    if (!is_known_filter(name)) fail(name_tok, "unknown filter '" + name + "'");
    std::vector<ExprPtr> head;
    head.push_back(std::move(value));
    if (skip_op("(")) {
      ExprPtr node = make(ExprKind::Filter, t);
      node->name = name;
      return parse_call_args(std::move(node), std::move(head), t);
    }
    ExprPtr e = make(ExprKind::Filter, t, std::move(head));
    e->name = name;
    return e;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      const Token& t = cur();
      if (is_op("|")) {
        advance();
        e = parse_filter(std::move(e), t);
      } else if (is_name("is")) {
        advance();
        bool negated = skip_name("not");
        const Token& name_tok = cur();
        std::string name = expect_name();
        if (!is_known_test(name)) fail(name_tok, "unknown test '" + name + "'");
        std::vector<ExprPtr> head;
        head.push_back(std::move(e));
        if (skip_op("(")) {
          ExprPtr node = make(ExprKind::Test, t);
          node->name = name;
          e = parse_call_args(std::move(node), std::move(head), t);
        } else {
          const Token& a = cur();
          bool starts_arg = a.kind == TokenKind::String || a.kind == TokenKind::Integer || a.kind == TokenKind::Float ||
                            (a.kind == TokenKind::Operator && (a.text == "[" || a.text == "{")) ||
                            (a.kind == TokenKind::Name && a.text != "else" && a.text != "or" && a.text != "and" &&
                             a.text != "if" && a.text != "in" && a.text != "is" && a.text != "not");
          if (starts_arg) head.push_back(parse_postfix(parse_primary()));
          e = make(ExprKind::Test, t, std::move(head));
          e->name = name;
        }
        e->negated = negated;
      } else if (is_op("(")) {
        advance();
        std::vector<ExprPtr> args;
        args.push_back(std::move(e));
        e = parse_call_args(make(ExprKind::Call, t), std::move(args), t);
      } else {
        return e;
      }
    }
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  const Limits& limits_;
  int depth_ = 0;
};

}  // namespace

Template parse_template(const std::string& source, const Limits& limits) {
  return Parser(lex(source), limits).run();
}

}  // namespace onellm::jinja

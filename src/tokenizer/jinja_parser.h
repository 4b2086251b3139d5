// Recursive-descent parser for the Jinja subset chat templates use (private
// to the tokenizer folder), with Jinja's operator precedence: condexpr < or <
// and < not < compare < +,- < ~ < *,/,//,% < ** < unary < postfix/filters.
// Statements are parsed in jinja_parser.cpp, expressions in jinja_expr_parser.cpp.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_lexer.h"

namespace onellm::jinja {

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
  std::string parse_body(Body& body, const std::vector<std::string>& end_tags);
  StmtPtr new_stmt(StmtKind kind, const Token& at);
  void expect_end_tag(const std::string& name);
  StmtPtr parse_statement();
  StmtPtr parse_if(const Token& t);
  std::vector<std::string> parse_targets();
  StmtPtr parse_for(const Token& t);
  StmtPtr parse_set(const Token& t);
  StmtPtr parse_macro(const Token& t);

  // ---- expressions ----
  ExprPtr parse_tuple(bool with_condexpr);
  ExprPtr parse_expression(bool with_condexpr);
  ExprPtr binary(ExprKind kind, const Token& at, std::string op, ExprPtr a, ExprPtr b);
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr parse_postfix(ExprPtr e);
  ExprPtr parse_subscript(ExprPtr object, const Token& t);
  ExprPtr parse_call_args(ExprPtr node, std::vector<ExprPtr> head, const Token& t);
  ExprPtr parse_filter(ExprPtr value, const Token& t);
  ExprPtr parse_filter_expr(ExprPtr e);
  ExprPtr parse_math1() { return parse_binary_level({"+", "-"}, &Parser::parse_concat); }
  ExprPtr parse_concat() { return parse_binary_level({"~"}, &Parser::parse_math2); }
  ExprPtr parse_math2() { return parse_binary_level({"*", "/", "//", "%"}, &Parser::parse_pow); }
  ExprPtr parse_pow() { return parse_binary_level({"**"}, &Parser::parse_unary_with_filter); }
  ExprPtr parse_unary_with_filter() { return parse_unary(true); }
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

  std::vector<Token> toks_;
  size_t pos_ = 0;
  const Limits& limits_;
  int depth_ = 0;
};

}  // namespace onellm::jinja

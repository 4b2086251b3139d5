// Expression parsing, lowest to highest precedence.
#include "tokenizer/jinja_parser.h"

namespace onellm::jinja {

ExprPtr Parser::parse_tuple(bool with_condexpr) {
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

ExprPtr Parser::parse_expression(bool with_condexpr) {
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

ExprPtr Parser::binary(ExprKind kind, const Token& at, std::string op, ExprPtr a, ExprPtr b) {
  std::vector<ExprPtr> args;
  args.push_back(std::move(a));
  args.push_back(std::move(b));
  ExprPtr e = make(kind, at, std::move(args));
  e->name = std::move(op);
  return e;
}

ExprPtr Parser::parse_or() {
  ExprPtr e = parse_and();
  while (is_name("or")) {
    const Token& t = cur();
    advance();
    e = binary(ExprKind::Or, t, "or", std::move(e), parse_and());
  }
  return e;
}

ExprPtr Parser::parse_and() {
  ExprPtr e = parse_not();
  while (is_name("and")) {
    const Token& t = cur();
    advance();
    e = binary(ExprKind::And, t, "and", std::move(e), parse_not());
  }
  return e;
}

ExprPtr Parser::parse_not() {
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

ExprPtr Parser::parse_compare() {
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

ExprPtr Parser::parse_unary(bool with_filter) {
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

ExprPtr Parser::parse_primary() {
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

ExprPtr Parser::parse_postfix(ExprPtr e) {
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

ExprPtr Parser::parse_subscript(ExprPtr object, const Token& t) {
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
ExprPtr Parser::parse_call_args(ExprPtr node, std::vector<ExprPtr> head, const Token& t) {
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

ExprPtr Parser::parse_filter(ExprPtr value, const Token& t) {
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

ExprPtr Parser::parse_filter_expr(ExprPtr e) {
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

}  // namespace onellm::jinja

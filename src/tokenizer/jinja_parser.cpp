// Statement parsing: text, {{ }}, if/for/set/macro/filter/with/generation.
#include "tokenizer/jinja_parser.h"

namespace onellm::jinja {

// Parses statements until one of `end_tags` opens a block; returns that tag
// name (left unconsumed after the '{%') or "" at the end of the template.
std::string Parser::parse_body(Body& body, const std::vector<std::string>& end_tags) {
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

StmtPtr Parser::new_stmt(StmtKind kind, const Token& at) {
  auto s = std::make_unique<Stmt>();
  s->kind = kind;
  s->line = at.line;
  s->column = at.column;
  return s;
}

// Consumes `{% name %}` where the '{%' and name are current.
void Parser::expect_end_tag(const std::string& name) {
  if (!skip_name(name.c_str())) fail(cur(), "expected '" + name + "'");
  expect_block_end();
}

StmtPtr Parser::parse_statement() {
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

StmtPtr Parser::parse_if(const Token& t) {
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

std::vector<std::string> Parser::parse_targets() {
  std::vector<std::string> names;
  bool paren = skip_op("(");
  names.push_back(expect_name());
  while (skip_op(",")) names.push_back(expect_name());
  if (paren) expect_op(")");
  return names;
}

StmtPtr Parser::parse_for(const Token& t) {
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

StmtPtr Parser::parse_set(const Token& t) {
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

StmtPtr Parser::parse_macro(const Token& t) {
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



Template parse_template(const std::string& source, const Limits& limits) {
  return Parser(lex(source), limits).run();
}

}  // namespace onellm::jinja

// Syntax tree of a parsed Jinja template. Nodes are plain structs with a kind
// tag; the evaluator switches on it.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace onellm::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprKind {
  Literal,   // value
  Name,      // name
  ListLit,   // args
  TupleLit,  // args
  DictLit,   // args: key, value, key, value...
  Attr,      // args[0].name
  Index,     // args[0][args[1]]
  Slice,     // args[0][args[1]:args[2]:args[3]] (null parts omitted)
  Call,      // args[0](args[1..], kwargs)
  Filter,    // args[0] | name(args[1..], kwargs)
  Test,      // args[0] is [not] name(args[1..])
  Unary,     // op args[0]: "-", "+", "not"
  Binary,    // args[0] op args[1]: + - * / // % ** ~ == != < <= > >= in "not in"
  And,
  Or,
  CondExpr,  // args[1] if args[0] else args[2] (args[2] may be null)
};

struct Expr {
  ExprKind kind;
  int line = 0, column = 0;
  int height = 1;    // longest path to a leaf; bounded so evaluation cannot recurse too deep
  Value value;       // Literal
  std::string name;  // Name, Attr, Filter, Test, operator of Unary/Binary
  bool negated = false;  // Test: "is not"
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

enum class StmtKind {
  Text,        // text
  Output,      // {{ expr }}
  If,          // branches: conditions[i] -> bodies[i]; else_body
  For,         // targets in expr [if filter]: body, else_body
  Set,         // targets = expr; or attr_object.attr = expr
  SetBlock,    // {% set name %}body{% endset %}
  Macro,       // name(params) body
  Do,          // {% do expr %}: evaluate, discard
  FilterBlock, // {% filter name %}body{% endfilter %}: expr is a Filter on Literal
  Scope,       // {% with %}, {% generation %}: body in a child scope (with assignments)
  Break,
  Continue,
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  StmtKind kind;
  int line = 0, column = 0;
  std::string text;                  // Text; Macro name; Set attribute name
  ExprPtr expr;                      // Output value, For iterable, Set value
  ExprPtr filter;                    // For: inline `if` filter
  ExprPtr attr_object;               // Set: `ns` of `ns.attr = value`
  std::vector<std::string> targets;  // For / Set / SetBlock / Scope assignment names
  std::vector<ExprPtr> values;       // Scope: values of the `with` assignments
  std::vector<ExprPtr> conditions;   // If
  std::vector<Body> bodies;          // If: one per condition
  Body body, else_body;
  std::vector<MacroParam> params;    // Macro
};

struct Template {
  Body body;
};

// Throws onellm::Error with line and column for syntax errors, unknown
// filters or tests and unsupported statements (extends, include, import...).
Template parse_template(const std::string& source, const Limits& limits);

// Known filter and test names (checked at parse time like Jinja does).
bool is_known_filter(const std::string& name);
bool is_known_test(const std::string& name);

}  // namespace onellm::jinja

// JSON Schema -> GBNF, so that structured output is a grammar like any other.
// Supported keywords and their limits: docs/grammar.md.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace onellm {

// The grammar of JSON texts valid under `schema` (property order as written
// in the schema). Throws Error naming the keyword and its location
// ("#/properties/age: 'multipleOf' is not supported") for anything it cannot
// enforce exactly, so constrained output always validates.
std::string json_schema_to_gbnf(const nlohmann::ordered_json& schema);
std::string json_schema_text_to_gbnf(std::string_view schema_text);  // parses it first (bad JSON -> Error)

// The rules defining `rule_name` as the schema (helper rules are named
// rule_name-...), without the primitives: for grammars that embed schemas.
std::string json_schema_gbnf_rules(const nlohmann::ordered_json& schema, const std::string& rule_name);

// Any JSON value whose top level is an object (response_format json_object).
std::string json_object_gbnf();

// GBNF rules (no root) for JSON building blocks, for grammars built around
// JSON: value, object, array, string, number, integer, boolean, null, ws.
std::string json_primitives_gbnf();

// `text` as a GBNF string literal, quotes included.
std::string gbnf_literal(std::string_view text);

}  // namespace onellm

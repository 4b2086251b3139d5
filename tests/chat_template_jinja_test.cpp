// Jinja semantics of the chat-template interpreter, each expected output as
// Python's jinja2 (with transformers' settings) renders it; errors and limits.
#include <string>

#include <gtest/gtest.h>

#include "base/error.h"
#include "tokenizer/chat_template.h"

namespace onellm {
namespace {

std::string R(const std::string& source, ChatJson context = ChatJson::object()) {
  ChatTemplateOptions opts;
  opts.extra_context = std::move(context);
  return ChatTemplate(source).render({}, opts);
}

std::string error_of(const std::string& source, ChatJson context = ChatJson::object(),
                     ChatTemplateLimits limits = {}) {
  try {
    ChatTemplateOptions opts;
    opts.extra_context = std::move(context);
    opts.limits = limits;
    ChatTemplate(source).render({}, opts);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(Jinja, PythonValueFormatting) {
  EXPECT_EQ(R("{{ none }}|{{ true }}|{{ 1.0 }}|{{ 0.1 + 0.2 }}|{{ 1e20 }}|{{ 2.5e-5 }}"),
            "None|True|1.0|0.30000000000000004|1e+20|2.5e-05");
  EXPECT_EQ(R("{{ [1, 'a', none, [true]] }}|{{ {'k': \"it's\"} }}|{{ (1,) }}"), "[1, 'a', None, [True]]|{'k': \"it's\"}|(1,)");
  EXPECT_EQ(R("{{ x }}|{{ x.y is defined }}", {{"x", {{"a", 1}}}}), "{'a': 1}|False");
}

TEST(Jinja, Arithmetic) {
  EXPECT_EQ(R("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 }} {{ -2 ** 2 }}"),
            "3 -4 2 3.5 1024 7 4");
  EXPECT_EQ(R("{{ 'ab' * 3 }} {{ [1] + [2] }} {{ 'a' ~ 1 ~ none }} {{ 'x' + 'y' }}"), "ababab [1, 2] a1None xy");
  EXPECT_TRUE(contains(error_of("{{ 'a' + 1 }}"), "unsupported operand"));
  EXPECT_TRUE(contains(error_of("{{ 1 // 0 }}"), "division by zero"));
}

TEST(Jinja, ComparisonsAndLogic) {
  EXPECT_EQ(R("{{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }} {{ 'b' in 'abc' }} {{ 3 not in [1,2] }}"),
            "True True True True True");
  EXPECT_EQ(R("{{ 0 or 'x' }} {{ 1 and 'y' }} {{ none or [] }} {{ not '' }}"), "x y [] True");
  EXPECT_EQ(R("{{ 'yes' if 0 else 'no' }}|{{ 'a' if false }}|"), "no||");
}

TEST(Jinja, IndexingAndSlicing) {
  EXPECT_EQ(R("{{ [1,2,3][::-1] }} {{ [1,2,3,4][1:3] }} {{ 'hello'[-1] }} {{ 'hello'[1:-1] }} {{ [1,2,3][-2:] }}"),
            "[3, 2, 1] [2, 3] o ell [2, 3]");
  EXPECT_EQ(R("{{ 'héllo'[1] }}{{ 'héllo'|length }}{{ 'añb'[::-1] }}"), "é5bña");
  EXPECT_EQ(R("{{ x[5] is defined }} {{ x.0 }}", {{"x", {10, 20}}}), "False 10");
}

TEST(Jinja, StringMethods) {
  EXPECT_EQ(R("{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\nx\\n'.lstrip('\\n') }}|{{ 'ab  '.rstrip() }}"),
            "a b|a|x\n|ab");
  EXPECT_EQ(R("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }}"),
            "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c']");
  EXPECT_EQ(R("{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} {{ 'Hi'.upper() }} "
              "{{ 'a-b'.replace('-', '+') }} {{ ', '.join(['a', 'b']) }} {{ 'hello world'.title() }}"),
            "True True HI a+b a, b Hello World");
}

// Case changes per Unicode code point as Python's str methods (and ß -> SS);
// the title filter splits words as Jinja2 does, str.title() as Python does.
TEST(Jinja, UnicodeCase) {
  EXPECT_EQ(R("{{ 'ünï straße'|upper }}|{{ 'ÜNÏ Ωμέγα'.lower() }}|"
              "{{ 'hello2world élan_vital'|title }}|{{ 'hello2world élan_vital'.title() }}|{{ 'éCOLE'|capitalize }}"),
            "ÜNÏ STRASSE|ünï ωμέγα|Hello2world Élan_vital|Hello2World Élan_Vital|École");
  EXPECT_EQ(R("{{ 'ÉCOLE 1'.isupper() }} {{ 'école'.islower() }} {{ '123'.isupper() }} {{ ['B', 'a', 'É']|sort }}"),
            "True True False ['a', 'B', 'É']");
  EXPECT_EQ(R("{{ 'straße x'.title() }} {{ 'Cabé'.isalpha() }} {{ '١٢'.isdigit() }} {{ '  '.isspace() }} "
              "{{ 'a,b,,c été'|wordcount }}"),
            "Straße X True True True 4");
}

// Numbers as Python has them: round() keeps ints, int() takes "4.5", a float
// modulo's zero has the divisor's sign, floats can be odd or even.
TEST(Jinja, PythonNumbers) {
  EXPECT_EQ(R("{{ 7|round }} {{ 2.5|round }} {{ 3.5|round }} {{ true|round }} {{ '4.5'|int }} {{ ' 12 '|int }} "
              "{{ '1e3'|int }} {{ 'x'|int(-1) }} {{ 0.0 % -4 }} {{ 2.5 is odd }} {{ 4.0 is even }} {{ 7.5 is divisibleby 2.5 }}"),
            "7 2.0 4.0 1 4 12 1000 -1 -0.0 False True True");
}

// repr() of an undefined value inside a container, list.count and list.index.
TEST(Jinja, UndefinedReprAndListMethods) {
  EXPECT_EQ(R("{{ [x.missing, {'k': x.y}] }}|{{ x.missing }}|{{ [1, 2, 1].count(1) }}|{{ ['a', 'b'].index('b') }}",
              {{"x", ChatJson::object()}}),
            "[Undefined, {'k': Undefined}]||2|1");
  EXPECT_TRUE(contains(error_of("{{ [1].index(5) }}"), "not in list"));
}

TEST(Jinja, Filters) {
  EXPECT_EQ(R("{{ [3,1,2]|length }} {{ '  x '|trim }} {{ 'ab'|upper }} {{ [1,2,3]|first }} {{ [1,2,3]|last }} "
              "{{ [1,2]|join('-') }} {{ 'abc'|list }} {{ [3,1,2]|sort }} {{ [1,2]|reverse|list }}"),
            "3 x AB 1 3 1-2 ['a', 'b', 'c'] [1, 2, 3] [2, 1]");
  EXPECT_EQ(R("{{ u|default('d') }} {{ none|default('d') }} {{ ''|default('d', true) }} {{ u|d('e') }}"), "d None d e");
  EXPECT_EQ(R("{% for k, v in {'a': 1, 'b': 2}|items %}{{ k }}={{ v }};{% endfor %}"
              "{% for k, v in {'c': 3}.items() %}{{ k }}={{ v }}{% endfor %}"),
            "a=1;b=2;c=3");
  EXPECT_EQ(R("{{ x|map(attribute='n')|join(',') }} {{ x|selectattr('n', 'equalto', 2)|list|length }} "
              "{{ [1,2,3,4]|select('even')|list }} {{ ['a','b']|reject('equalto','a')|list }} {{ ['a','b']|map('upper')|list }}",
              {{"x", {{{"n", 1}}, {{"n", 2}}}}}),
            "1,2 1 [2, 4] ['b'] ['A', 'B']");
  // Jinja2 tests the input's truth before iterating: none and empty inputs
  // give nothing (functionary's template filters `tools` = none this way);
  // a truthy non-sequence is still an error.
  EXPECT_EQ(R("{{ none|selectattr('type', 'equalto', 'x')|list|length }} {{ none|rejectattr('a')|list }} "
              "{{ none|map(attribute='a')|list }} {{ none|select|list }} {{ 0|reject('odd')|list }} "
              "{{ u|map('upper')|list }}"),
            "0 [] [] [] [] []");
  EXPECT_TRUE(contains(error_of("{{ 5|selectattr('a')|list }}"), "not iterable"));
  EXPECT_EQ(R("{{ {'b': 1, 'a': 'é\"\\n'}|tojson }}"), "{\"b\": 1, \"a\": \"é\\\"\\n\"}");
  EXPECT_EQ(R("{{ [1, {'a': []}]|tojson(indent=2) }}"), "[\n  1,\n  {\n    \"a\": []\n  }\n]");
  EXPECT_EQ(R("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }} {{ 3.0|tojson }} {{ none|tojson }}"),
            "{\"a\": 2, \"b\": 1} 3.0 null");
  EXPECT_EQ(R("{{ x.get('a') }} {{ x.get('z', 5) }} {{ x.get('z') }} {{ x|length }}", {{"x", {{"a", 1}}}}), "1 5 None 1");
}

TEST(Jinja, Tests) {
  EXPECT_EQ(R("{{ 'a' is string }} {{ 1 is string }} {{ none is none }} {{ 1 is not none }} {{ u is defined }} "
              "{{ {} is mapping }} {{ 'x' is iterable }} {{ 3 is odd }} {{ false is false }} {{ 0 is false }} "
              "{{ 6 is divisibleby 3 }} {{ 1 is number }}"),
            "True False True True False True True True True False True True");
}

TEST(Jinja, WhitespaceControlLikeTransformers) {
  // trim_blocks drops the newline after a block tag; lstrip_blocks drops the
  // indentation before it; {{ }} lines keep theirs.
  EXPECT_EQ(R("<\n  {% if true %}\n  x\n  {% endif %}\n>"), "<\n  x\n>");
  EXPECT_EQ(R("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(R("a {{- 'b' -}} c"), "abc");
  EXPECT_EQ(R("a\n{# comment #}\nb"), "a\nb");
  EXPECT_EQ(R("  {%+ if true %}x{% endif %}"), "  x");
  EXPECT_EQ(R("{% if true +%}\nx{% endif %}"), "\nx");
  EXPECT_EQ(R("x\n"), "x");  // keep_trailing_newline is off
  EXPECT_EQ(R("{% raw %}{{ not evaluated }}{% endraw %}"), "{{ not evaluated }}");
}

TEST(Jinja, LoopsAndScopes) {
  EXPECT_EQ(R("{% for x in [1,2,3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}"
              "{{ loop.revindex }};{% endfor %}"),
            "10TrueFalse3;21FalseFalse2;32FalseTrue1;");
  EXPECT_EQ(R("{% for x in [1,2,3,4] if x is even %}{{ x }}{{ loop.length }}{% endfor %}"), "2242");
  EXPECT_EQ(R("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(R("{% for x in [1,2,3,4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}"
              "{{ x }}{% endfor %}"),
            "13");
  // set inside a loop does not leak; namespace attributes do; set in if does.
  EXPECT_EQ(R("{% set a = 1 %}{% set ns = namespace(b=1) %}{% for x in [5] %}{% set a = x %}{% set ns.b = x %}"
              "{% endfor %}{% if true %}{% set c = 7 %}{% endif %}{{ a }}{{ ns.b }}{{ c }}"),
            "157");
  EXPECT_EQ(R("{% for x in {'a': 1, 'b': 2} %}{{ x }}{% endfor %}{% for c in 'hé' %}[{{ c }}]{% endfor %}"), "ab[h][é]");
  EXPECT_EQ(R("{% set s %}in{{ 1 }}{% endset %}{{ s|upper }}"), "IN1");
  EXPECT_EQ(R("{% for x in range(3) %}{{ loop.cycle('a', 'b') }}{% endfor %}{{ range(1, 7, 2)|list }}"), "aba[1, 3, 5]");
}

TEST(Jinja, Macros) {
  EXPECT_EQ(R("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
              "{{ greet('A') }} {{ greet('B', punct='?') }}"),
            "Hi A! Hi B?");
  EXPECT_EQ(R("{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}"
              "{{ fact(5) }}"),
            "120");
  EXPECT_EQ(R("{% filter upper %}abc{% endfilter %}{% generation %}x{% endgeneration %}"), "ABCx");
}

TEST(Jinja, SyntaxErrorsNamePosition) {
  EXPECT_TRUE(contains(error_of("{{ x|nosuchfilter }}"), "unknown filter 'nosuchfilter'"));
  EXPECT_TRUE(contains(error_of("line1\n{{ x|nosuchfilter }}"), "line 2"));
  EXPECT_TRUE(contains(error_of("{% if x %}abc"), "unexpected end of template"));
  EXPECT_TRUE(contains(error_of("{% for x in y %}abc{% endif %}"), "syntax error"));
  EXPECT_TRUE(contains(error_of("{{ x is nosuchtest }}"), "unknown test"));
  EXPECT_TRUE(contains(error_of("{{ 'abc }}"), "unterminated string"));
  EXPECT_TRUE(contains(error_of("{{ x"), "unclosed tag"));
  EXPECT_TRUE(contains(error_of("{# x"), "unclosed comment"));
  EXPECT_TRUE(contains(error_of("{% extends 'base' %}"), "unsupported statement 'extends'"));
  EXPECT_TRUE(contains(error_of("{% endfor %}"), "syntax error"));
}

TEST(Jinja, RuntimeErrors) {
  std::string e = error_of("ok\n{{ raise_exception('Roles must alternate') }}");
  EXPECT_TRUE(contains(e, "Roles must alternate")) << e;
  EXPECT_TRUE(contains(e, "line 2")) << e;
  EXPECT_TRUE(contains(error_of("{{ u.x }}"), "'u' is undefined"));
  EXPECT_TRUE(contains(error_of("{{ nofunc() }}"), "'nofunc' is undefined"));
  EXPECT_TRUE(contains(error_of("{% for x in 5 %}{% endfor %}"), "not iterable"));
}

TEST(Jinja, LimitsStopHostileTemplates) {
  ChatTemplateLimits small;
  small.max_steps = 100000;
  small.max_output_bytes = 1 << 16;
  EXPECT_TRUE(contains(error_of("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                                {}, small),
                       "step limit"));
  EXPECT_TRUE(contains(error_of("{% for i in range(10000) %}xxxxxxxxxx{% endfor %}", {}, small), "larger than"));
  EXPECT_TRUE(contains(error_of("{{ 'x' * 100000000 }}", {}, small), "larger than"));
  EXPECT_TRUE(contains(error_of("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"), "deeper than"));
  // Built by append: GCC 12 warns (-Warray-bounds, a false positive) on
  // "literal" + std::string(n, c) chains.
  std::string parens = "{{ ";
  parens.append(5000, '(').append("1").append(5000, ')').append(" }}");
  EXPECT_TRUE(contains(error_of(parens), "nested too deeply"));
  std::string pluses = "{{ 1";
  pluses.append(3000, '+').append("1 }}");
  EXPECT_TRUE(contains(error_of(pluses), "nested too deeply"));
  std::string chain = "{{ 1";
  for (int i = 0; i < 3000; ++i) chain += " + 1";
  EXPECT_TRUE(contains(error_of(chain + " }}"), "nested too deeply"));
  std::string blocks;
  for (int i = 0; i < 3000; ++i) blocks += "{% if true %}";
  EXPECT_TRUE(contains(error_of(blocks), "nested too deeply"));
  EXPECT_TRUE(contains(error_of("{% set ns = namespace(a=1) %}{% set ns.a = ns %}"), "namespace"));
  EXPECT_TRUE(contains(error_of("{% set ns = namespace(a=[]) %}{% for i in range(1000) %}{% set ns.a = [ns.a] %}"
                                "{% endfor %}"),
                       "nested deeper"));
}

}  // namespace
}  // namespace onellm

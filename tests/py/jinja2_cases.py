#!/usr/bin/python3
"""Chat-template cases rendered by Python's jinja2 as transformers sets it up (trim_blocks, lstrip_blocks,
loopcontrols, tojson as json.dumps with ensure_ascii=False, raise_exception, a sandbox), for
tests/chat_template_jinja2_test.cpp to render with onellm's interpreter and compare.

  jinja2_cases.py SEED N [TEMPLATES_HEADER]

Prints {"cases": [{"template", "context", "output"}]}; "output" is null where jinja2 raised. Two kinds:
- N random templates from a typed grammar (numbers, strings, lists, dicts, booleans and the statements
  chat templates use), so that every expression is meaningful: a difference is a difference in semantics,
  not in how two engines fail on nonsense. Generators (select, map, unique ...) are always consumed by
  |list, because onellm builds lists where jinja2 is lazy.
- The published templates of TEMPLATES_HEADER (tests/chat_template_templates.h) over conversations
  with tools, tool calls (arguments as objects and as text, content null) and Unicode.
Exit 77 when jinja2 is not installed (Debian python3-jinja2).
"""
import json
import random
import re
import sys

try:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("SKIP: python3-jinja2 is not installed", file=sys.stderr)
    sys.exit(77)

TRUNCATE_ARGS = ('', ', true', ', false, ' + repr('>>'), ', leeway=0', ', killwords=true, leeway=1')
CONTEXT = {"s": "Hello, Wörld  ", "t": "straße ÉCOLE x-ray", "e": "", "csv": "a,b,,c", "n": 7, "z": 0, "neg": -3,
           "f": 2.5, "g": -0.75, "l": [3, 1, 2, 3], "sl": ["b", "a", "C", "é"], "el": [],
           "d": {"b": 1, "a": "x", "c": [1, 2]},
           "objs": [{"name": "x", "v": 2, "t": "function"}, {"name": "Y", "v": 1, "t": "code"},
                    {"name": "z", "v": 3, "t": "function"}],
           "tr": True, "fa": False, "nul": None}


STR_METHODS = ("strip()", "upper()", "lower()", "title()", "capitalize()", "lstrip()", "rstrip()", "rstrip(' ')",
               "strip('H ')")
AFFIXES = ("'H'", "'  '", "'x'", "('a', 'y')")
TESTED = ("s", "n", "nul", "u", "d", "l", "f", "tr", "d.a", "d.q")
TYPE_TESTS = ("defined", "none", "string", "number", "mapping", "iterable", "boolean", "integer", "float")


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def pick(self, *options):
        return self.r.choice(options)

    def num(self, d=0):
        r = self.r
        if d > 2:
            return self.pick("n", "z", "neg", "f", "g", str(r.randrange(-4, 12)), "0.5", "1.25")
        return self.pick(
            lambda: str(r.randrange(-4, 12)), lambda: self.pick("n", "z", "neg", "f", "g", "1.0", "-2.5"),
            lambda: f"({self.num(d + 1)} {self.pick('+', '-', '*')} {self.num(d + 1)})",
            lambda: f"({self.num(d + 1)} {self.pick('/', '//', '%')} {self.pick('2', '3', '-4', '2.5')})",
            lambda: f"({self.pick('2', '3', '1.5', 'neg')} ** {self.pick('0', '1', '2', '3')})",
            lambda: f"({self.str(d + 1)}|length)", lambda: f"({self.lst(d + 1)}|length)",
            lambda: f"({self.numlist(d + 1)}|sum)", lambda: f"({self.numlist(d + 1)}|{self.pick('min', 'max')})",
            lambda: f"({self.num(d + 1)}|{self.pick('abs', 'int', 'float', 'round', 'round(1)')})",
            lambda: f"{self.strvar()}.{self.pick('count', 'find')}({self.pick(repr('l'), repr('o'), repr('é'))})",
            lambda: f"({self.num(d + 1)} if {self.bool(d + 1)} else {self.num(d + 1)})",
            lambda: f"{self.pick('l', 'sl')}.index({self.pick('3', repr('a'))})",
            lambda: f"({self.pick('l', 'sl')}.count({self.pick('3', repr('C'), '1')}))",
            lambda: f"objs[{self.pick('0', '1', '-1')}].v", lambda: "d.b", lambda: "d['c'][1]",
            lambda: f"({self.str(d + 1)}|wordcount)",
            lambda: f"({self.pick(repr('12'), repr('-3'), repr('4.5'))}|int)")()

    def strvar(self):
        return self.pick("s", "t", "e", "csv")

    def str(self, d=0):
        r = self.r
        lit = self.pick("'abc'", "'a b'", "''", "'  pad '", "'ünï Ωμέγα'", "'Hello World'", "'x\\ny'", "'Δ-x(y)'",
                        "\"it's\"", "'hello2world under_score'")
        if d > 2:
            return self.pick(lit, self.strvar())
        return self.pick(
            lambda: lit, lambda: self.strvar(),
            lambda: f"({self.str(d + 1)} ~ {self.pick(self.str(d + 1), self.num(d + 1))})",
            lambda: f"({self.str(d + 1)} + {self.str(d + 1)})",
            lambda: f"({self.str(d + 1)}|{self.pick('upper', 'lower', 'title', 'capitalize', 'trim', 'string')})",
            lambda: f"{self.str(d + 1)}.{self.pick(*STR_METHODS)}",
            lambda: f"{self.str(d + 1)}.replace({self.pick(repr('l'), repr(' '), repr(''))}, {self.pick(repr('L'), repr('_'))})",
            lambda: f"({self.str(d + 1)}|replace({self.pick(repr('o'), repr('a'))}, {self.pick(repr('0'), repr('@@'))}))",
            lambda: f"({self.num(d + 1)}|string)",
            lambda: f"({self.strlist(d + 1)}|join({self.pick(repr(', '), repr(''), repr('-'))}))",
            lambda: f"{self.str(d + 1)}[{self.pick('1:3', '::-1', '-2:', ':1', '1', '-1')}]" if d < 2 else lit,
            lambda: f"({self.str(d + 1)} * {self.pick('0', '2', '3')})",
            lambda: f"({self.pick(self.lst(d + 1), self.dct(d + 1), self.str(d + 1), self.num(d + 1), 'nul', 'tr')}|tojson)",
            lambda: f"({self.dct(d + 1)}|tojson(indent=2))", lambda: f"({self.dct(d + 1)}|tojson(sort_keys=true))",
            lambda: f"({self.str(d + 1)} if {self.bool(d + 1)} else {self.str(d + 1)})",
            lambda: f"({self.str(d + 1)}|indent({self.pick('2', '4')}))",
            lambda: f"({self.pick('nul', 'u', 'e', 's')}|default({self.pick(repr('D'), repr('D') + ', true')}))",
            lambda: f"({self.pick(self.lst(d + 1), self.dct(d + 1), 'nul', 'tr', 'f', 'g')}|string)",
            lambda: f"({self.lst(d + 1)}|first|string)", lambda: f"({self.lst(d + 1)}|last|string)",
            lambda: "d.a", lambda: "d.get('a')", lambda: "d.get('q', 'none')",
            lambda: f"objs[{self.pick('0', '-1')}].name",
            lambda: f"{self.strvar()}.split({self.pick('', repr(','), repr(' '))})|join('|')",
            lambda: f"({self.str(d + 1)}|center({self.pick('5', '10', '11', '20')}))",
            lambda: f"(({self.str(d + 1)} * 4)|truncate({self.pick('5', '8', '12')}"
                    f"{self.pick(*TRUNCATE_ARGS)}))",
            lambda: self.formatted(d),
            lambda: f"({self.pick(self.str(d + 1), self.dct(d + 1))}|urlencode)")()

    def formatted(self, d):
        """Python's printf-style % through |format, the arguments matching the conversions."""
        n, s = (lambda: self.num(d + 1)), (lambda: self.str(d + 1))
        return self.pick(
            lambda: f"('%s and %s'|format({s()}, {n()}))",
            lambda: f"('%5.2f|%-6d|%+d|% d'|format({n()}, {n()}, {n()}, {n()}))",
            lambda: f"('%04x|%X|%#x|%#o|%o'|format({self.pick('7', '255', '-12', '0')}, 171, 255, 8, -9))",
            lambda: f"('%(a)s=%(b)r'|format(a={s()}, b={self.pick(n(), s())}))",
            lambda: f"('[%10s|%-10s|%.3s|%r]'|format({s()}, {s()}, {s()}, {s()}))",
            lambda: f"('%e %g %G %.3e %10.4f %-8.1f|'|format({n()}, {n()}, {n()}, {n()}, {n()}, {n()}))",
            lambda: f"('%c%c|%%%s%%|%i|%05d'|format(65, 'é', {s()}, {n()}, {n()}))",
            lambda: f"('%s|%s|%d'|format({self.pick('nul', 'tr', 'fa', 'l')}, {self.lst(d + 1)}, "
                    f"{self.pick('tr', 'fa')}))")()

    def numlist(self, d=0):
        return self.pick("l", "el", "[1, 2.5, -3]", "objs|map(attribute='v')|list", f"({self.pick('l', '[2, 1]')}|sort)",
                         "range(4)|list", "range(1, 8, 3)|list", "(l|unique|list)")

    def strlist(self, d=0):
        return self.pick("sl", "[]", "['x', 'y']", "objs|map(attribute='name')|list", "sl|map('upper')|list",
                         "(sl|sort)", "(sl|sort(case_sensitive=true))", "(sl|reverse|list)", "csv.split(',')",
                         "s.split()", "d|list", "d.keys()|list", "(sl|select('lower')|list)", "(sl|reject('upper')|list)",
                         "('ab'|list)")

    def lst(self, d=0):
        if d > 2:
            return self.pick("l", "sl", "el", "objs")
        return self.pick(
            lambda: self.numlist(d), lambda: self.strlist(d), lambda: "objs",
            lambda: f"(objs|selectattr('v', '{self.pick('gt', 'lt', 'eq', 'ge')}', {self.pick('1', '2')})|list)",
            lambda: f"(objs|rejectattr('t', 'equalto', 'code')|list)", lambda: "(objs|selectattr('name')|list)",
            lambda: f"(objs|sort(attribute='{self.pick('v', 'name')}'{self.pick('', ', reverse=true')}))",
            lambda: f"({self.numlist(d + 1)} + {self.strlist(d + 1)})",
            lambda: f"{self.pick('l', 'sl')}[{self.pick('1:', ':2', '::-1', '::2', '-2:')}]",
            lambda: f"[{', '.join(self.pick(self.num(d + 1), self.str(d + 1)) for _ in range(self.r.randrange(4)))}]",
            lambda: "(d|dictsort)", lambda: "(d.items()|list)", lambda: "(d|items|list)",
            lambda: f"(l|select('{self.pick('odd', 'even')}')|list)",
            lambda: f"(l|{self.pick('min', 'max')}|string|list)",
            lambda: f"({self.lst(d + 1)}|batch({self.pick('1', '2', '3')}{self.pick('', ', ' + repr('F'))})|list)",
            lambda: f"({self.pick(self.lst(d + 1), self.str(d + 1))}|slice({self.pick('1', '2', '3', '4')}"
                    f"{self.pick('', ', 0')})|list)")()

    def dct(self, d=0):
        if d > 2:
            return "d"
        keys = self.r.sample(["a", "b", "k", "é"], self.r.randrange(4))
        return self.pick("d", "{}", "{" + ", ".join(f"'{k}': {self.pick(self.num(d + 1), self.str(d + 1), self.lst(d + 1))}"
                                                     for k in keys) + "}")

    def bool(self, d=0):
        if d > 2:
            return self.pick("tr", "fa", "true", "false")
        return self.pick(
            lambda: f"({self.num(d + 1)} {self.pick('==', '!=', '<', '<=', '>', '>=')} {self.num(d + 1)})",
            lambda: f"({self.str(d + 1)} {self.pick('==', '!=', '<', '>')} {self.str(d + 1)})",
            lambda: f"({self.str(d + 1)} {self.pick('in', 'not in')} {self.pick(self.str(d + 1), 'sl')})",
            lambda: f"({self.num(d + 1)} in {self.numlist(d + 1)})",
            lambda: f"({self.pick(repr('a'), repr('q'))} in d)",
            lambda: f"{self.str(d + 1)}.{self.pick('startswith', 'endswith')}({self.pick(*AFFIXES)})",
            lambda: f"({self.bool(d + 1)} {self.pick('and', 'or')} {self.bool(d + 1)})",
            lambda: f"(not {self.bool(d + 1)})",
            lambda: f"({self.pick(*TESTED)} is {self.pick('', 'not ')}{self.pick(*TYPE_TESTS)})",
            lambda: f"({self.num(d + 1)} is {self.pick('odd', 'even', 'divisibleby 3', 'divisibleby(2)')})",
            lambda: f"({self.str(d + 1)} is {self.pick('lower', 'upper')})",
            lambda: f"{self.str(d + 1)}.{self.pick('isupper()', 'islower()', 'isdigit()', 'isalpha()', 'isspace()')}",
            lambda: f"({self.lst(d + 1)} == {self.lst(d + 1)})")()

    def any(self, d=0):
        return self.pick(self.num, self.str, self.lst, self.bool, self.dct)(d)

    def statement(self):
        r = self.r
        body = self.pick(
            lambda: "{{ " + self.any() + " }}",
            lambda: "{% for x in " + self.lst(1) + " %}{{ loop.index0 }}:{{ x }}{% if not loop.last %},{% endif %}"
                    "{{ loop.first }}{{ loop.length }}{% endfor %}",
            lambda: "{% for k, v in " + self.pick("d.items()", "d|items", "d|dictsort") + " %}{{ k }}={{ v }};{% endfor %}",
            lambda: "{% for x in " + self.lst(1) + " if " + self.pick("x", "x is string", "x is number") + " %}"
                    "{{ loop.index }}{{ x }}{% else %}none{% endfor %}",
            lambda: "{% set v = " + self.any() + " %}{{ v }}|{{ v|tojson }}",
            lambda: "{% if " + self.bool() + " %}T{% elif " + self.bool() + " %}E{% else %}F{% endif %}",
            lambda: "{%- set ns = namespace(c=0, s='') -%}{%- for x in " + self.numlist(1) + " -%}"
                    "{%- set ns.c = ns.c + x -%}{%- set ns.s = ns.s ~ x -%}{%- endfor -%}{{ ns.c }}/{{ ns.s }}",
            lambda: "{% macro m(a, b='dflt') %}<{{ a }}|{{ b }}>{% endmacro %}{{ m(" + self.str() + ") }}{{ m(1, b="
                    + self.num() + ") }}",
            lambda: "{% for x in " + self.lst(1) + " %}{% if loop.index > 2 %}{% break %}{% endif %}{{ x }};"
                    "{% endfor %}",
            lambda: "{% for x in " + self.lst(1) + " %}{% if x is string %}{% continue %}{% endif %}{{ x }};"
                    "{% endfor %}")()
        # The whitespace rules: trim_blocks and lstrip_blocks, and -%} / {%- against them.
        return self.pick(body, body, "  " + body + "\n  tail", "line\n    {% if true %}\n" + body + "\n    {% endif %}\nend",
                         "{%- if true -%}\n  " + body + "  \n{%- endif %}\n x", "a\n{# c #}\n" + body + " {{- ' b' }}")


def published_templates(header):
    text = open(header, encoding="utf-8").read()
    return dict(re.findall(r'inline constexpr const char\* (\w+) = R"TPL\((.*?)\)TPL"', text, re.S))


def conversations():
    tool = {"type": "function", "function": {"name": "get_weather", "description": "Weather \"now\" for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City"},
                                                            "unit": {"type": "string", "enum": ["c", "f"]}},
                           "required": ["city"]}}}
    obj_call = {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                                 "arguments": {"city": "Zürich", "unit": "c"}}}
    text_call = {"id": "call_2", "type": "function", "function": {"name": "get_weather",
                                                                  "arguments": "{\"city\": \"Köln\"}"}}
    yield {"messages": [{"role": "user", "content": "Hello there! ünïcödé 🙂"}]}
    yield {"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"},
                        {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Joke \"now\"\n"}]}
    yield {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
           "add_generation_prompt": False}
    yield {"tools": [tool], "messages": [{"role": "user", "content": "Weather in Paris?"}]}
    for call in (obj_call, text_call):
        yield {"tools": [tool], "messages": [
            {"role": "system", "content": "Use tools."}, {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "name": "get_weather", "content": "{\"temp\": 21}"},
            {"role": "assistant", "content": "It is 21 °C."}, {"role": "user", "content": "Thanks"}]}
    yield {"enable_thinking": False, "messages": [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>\nx\n</think>\n\nHello"},
        {"role": "user", "content": "Bye"}]}


def main():
    seed, n = int(sys.argv[1]), int(sys.argv[2])
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    cases = []

    def add(template, context):
        try:
            out = env.from_string(template).render(**json.loads(json.dumps(context)))
        except Exception:  # noqa: BLE001 - any jinja2 failure: the case only checks that onellm does not crash
            out = None
        cases.append({"template": template, "context": context, "output": out})

    gen = Gen(seed)
    for _ in range(n):
        add(gen.statement(), CONTEXT)
    if len(sys.argv) > 3:
        for name, source in sorted(published_templates(sys.argv[3]).items()):
            if "strftime_now" in source:  # the date would differ between the two renders
                continue
            for conv in conversations():
                context = {"bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": True, "tools": None}
                context.update(conv)
                add(source, context)
    json.dump({"cases": cases}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()

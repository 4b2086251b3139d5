"""Property test of structured output: for many randomly generated JSON Schemas, the text
`onellm run --json-schema` prints from a random-weight model (sampling at temperature 1, with
and without top-k) always parses and validates under the schema, checked by the independent
`jsonschema` package (Debian python3-jsonschema). Also: malformed and unsupported schemas give
a clear error and exit code, never a crash.

Schemas per run: ONELLM_SCHEMA_CASES (default 1000). Exit 77 = skipped (no binary or no
jsonschema module).
"""
import json
import os
import random
import subprocess
import sys
import tempfile

BIN = os.environ.get("ONELLM_BIN", "")
CASES = int(os.environ.get("ONELLM_SCHEMA_CASES", "1000"))

try:
    import jsonschema
except ImportError:
    print("python3-jsonschema is not installed")
    sys.exit(77)

failed = 0

# Formats jsonschema checks itself (ipv4, date) plus the others written here from their RFCs, so that
# every format the grammar emits is held to its standard.
FORMATS = jsonschema.FormatChecker(formats=["ipv4", "date"])
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_PATTERNS = {
    # RFC 5321 mailbox: dot-atom local part (at most 64 octets) @ a domain of at least two labels
    "email": r"(?=[^@]{1,64}@)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@"
             + _LABEL + r"(?:\." + _LABEL + r")+",
    # RFC 3986 URI with an authority: scheme "://" then unreserved / sub-delims / ":@/?#" / pct-encoded
    "uri": r"[A-Za-z][A-Za-z0-9+.-]*://(?:[A-Za-z0-9._~!$&'()*+,;=:@/?#-]|%[0-9A-Fa-f]{2})+",
    "uuid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    # RFC 3339 full-time and date-time (the date part checked again by the date checker below)
    "time": r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])",
}


def _check_format(name):
    import re
    pattern = re.compile(_PATTERNS[name])

    def check(value):
        return not isinstance(value, str) or pattern.fullmatch(value) is not None
    FORMATS.checks(name)(check)


for _name in _PATTERNS:
    _check_format(_name)


@FORMATS.checks("date-time")
def _date_time(value):
    if not isinstance(value, str) or "T" not in value:
        return not isinstance(value, str)
    date, time = value.split("T", 1)
    return FORMATS.conforms(date, "date") and FORMATS.conforms(time, "time")


def fail(what):
    global failed
    failed += 1
    print("FAIL:", what)


WORDS = ["name", "age", "city", "tags", "id", "when", "ok", "kind", "items", "note", "x", "y", "päck", "a b"]


def gen_schema(rng, depth, defs):
    kinds = ["string", "integer", "number", "boolean", "null", "enum", "const", "string_pattern", "object", "array",
             "anyOf", "string_format", "ref", "type_list"]
    if depth <= 0:
        kinds = kinds[:8]
    k = rng.choice(kinds)
    if k == "string":
        lo = rng.randint(0, 3)
        return {"type": "string", "minLength": lo, "maxLength": lo + rng.randint(0, 8)}
    if k == "string_pattern":  # checked by Python's re (search semantics), as the spec says
        return {"type": "string", "pattern": rng.choice([  # bounded: a random model must finish them
            r"^[a-z]{3,8}$", r"^\d{3}-\d{4}$", r"^(yes|no|maybe)$", r"^[A-Z][a-z]{0,5}$", r"^[A-Za-z ]{1,10}!$",
            r"^#[0-9a-fA-F]{6}$", r"^(?:ab|cd){1,4}x?$", r"^\w{1,8}@\w{1,8}\.(com|org)$", r"^[^0-9\s]{2,5}$",
            r"^\d\d$", r"^say \"[a-z]{1,6}\"$", r"^.{1,4}$", r"^(\+|-)?\d{1,6}(\.\d{1,2})?$"])}
    if k == "string_format":
        return {"type": "string", "format": rng.choice(["date", "time", "date-time", "uuid", "email", "ipv4", "uri"])}
    if k == "integer":
        s = {"type": "integer"}
        if rng.random() < 0.7:
            lo = rng.randint(-1000, 1000)
            s["minimum"] = lo
            s["maximum"] = lo + rng.randint(0, 5000)
        if rng.random() < 0.2:
            s.pop("maximum", None)
            s["exclusiveMaximum"] = s.get("minimum", 0) + 3
        return s
    if k == "number":
        s = {"type": "number"}
        if rng.random() < 0.6:
            lo = rng.randint(-50, 50)
            s["minimum"] = lo
            s["maximum"] = lo + rng.randint(0, 100)
            if rng.random() < 0.5:  # decimal and exclusive bounds
                s["minimum"] = lo + rng.choice([0.5, 0.25, 0.125, 0.001])
                s["maximum"] = s["minimum"] + rng.choice([0.75, 1.5, 10.0625, 0.002])
                if rng.random() < 0.5:
                    s["exclusiveMinimum"] = s.pop("minimum")
                if rng.random() < 0.5:
                    s["exclusiveMaximum"] = s.pop("maximum")
        return s
    if k == "boolean":
        return {"type": "boolean"}
    if k == "null":
        return {"type": "null"}
    if k == "enum":
        pool = ["red", "green", 3, 4.5, None, True, "ünï", "say \"hi\"", {"a": 1}, [1, 2]]
        return {"enum": rng.sample(pool, rng.randint(1, 4))}
    if k == "const":
        return {"const": rng.choice(["fixed", 42, False, None, {"k": [1, "v"]}])}
    if k == "object":
        names = rng.sample(WORDS, rng.randint(0, 4))
        props = {n: gen_schema(rng, depth - 1, defs) for n in names}
        s = {"type": "object", "properties": props, "additionalProperties": False}
        req = [n for n in names if rng.random() < 0.5]
        if req:
            s["required"] = req
        return s
    if k == "array":
        lo = rng.randint(0, 2)
        s = {"type": "array", "items": gen_schema(rng, depth - 1, defs), "minItems": lo, "maxItems": lo + rng.randint(0, 3)}
        if rng.random() < 0.25:
            s["prefixItems"] = [gen_schema(rng, 0, defs) for _ in range(rng.randint(1, 2))]
        return s
    if k == "anyOf":
        # Branches of different types, so anyOf and oneOf agree.
        a = {"type": "integer", "minimum": 0, "maximum": 99}
        b = {"type": "string", "maxLength": 5}
        c = {"type": "array", "items": {"type": "boolean"}, "maxItems": 2}
        key = rng.choice(["anyOf", "oneOf"])
        return {key: rng.sample([a, b, c], 2)}
    if k == "ref":
        name = "d%d" % len(defs)
        defs[name] = None  # reserve the name before generating the definition
        defs[name] = gen_schema(rng, depth - 1, defs)
        return {"$ref": "#/$defs/" + name}
    return {"type": rng.sample(["string", "integer", "boolean", "null"], 2), "maxLength": 6}


def main():
    if not BIN or not os.path.exists(BIN):
        print("no onellm binary")
        return 77
    rng = random.Random(1234)
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "tiny.gguf")
        subprocess.run([BIN, "make-tiny-model", "--arch", "qwen2", "--type", "F32", "-o", model], check=True,
                       capture_output=True)
        n_ok = 0
        for i in range(CASES):
            defs = {}
            schema = gen_schema(rng, 3, defs)
            if defs:
                schema = dict(schema, **{"$defs": defs}) if "$ref" not in schema else {"$defs": defs, **schema}
            path = os.path.join(tmp, "schema.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(schema, f, ensure_ascii=False)
            args = [BIN, "run", "-m", model, "-p", "json:", "--json-schema", path, "--temp", "1.0",
                    "--seed", str(i), "-n", "4000", "-t", "1"]
            if i % 2:
                args += ["--top-k", "0", "--top-p", "1", "--min-p", "0"]  # whole-vocabulary masks
            r = subprocess.run(args, capture_output=True, timeout=120)
            if r.returncode != 0:
                fail("case %d: exit %d: %s\nschema %s" % (i, r.returncode, r.stderr.decode()[-400:], json.dumps(schema)))
                continue
            text = r.stdout.decode("utf-8")
            try:
                value = json.loads(text)
            except ValueError as e:
                fail("case %d: output is not JSON (%s): %r\nschema %s" % (i, e, text[:300], json.dumps(schema)))
                continue
            try:
                jsonschema.validate(value, schema, format_checker=FORMATS)
            except jsonschema.ValidationError as e:
                fail("case %d: invalid: %s\noutput %r\nschema %s" % (i, e.message, text[:300], json.dumps(schema)))
                continue
            n_ok += 1

        # Bad schemas: a clear message naming the problem, exit code 1, no crash.
        bad = {
            '{"type": "integer", "multipleOf": 2}': "'multipleOf' is not supported",
            '{"type": "object", "properties": {"p": {"type": "string", "pattern": "(a)\\\\1"}}}': "#/properties/p",
            '{"type": ': "not valid JSON",
            '{"$ref": "#/$defs/nope"}': "points to nothing",
            '{"type": "array", "minItems": 3, "maxItems": 1}': "maxItems is below minItems",
        }
        for text, expected in bad.items():
            path = os.path.join(tmp, "bad.json")
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run([BIN, "run", "-m", model, "-p", "x", "--json-schema", path, "-n", "5"],
                               capture_output=True, timeout=60)
            err = r.stderr.decode()
            if r.returncode != 1 or expected not in err or r.stdout:
                fail("bad schema %s: exit %d, stderr %r" % (text, r.returncode, err[-300:]))
        gpath = os.path.join(tmp, "bad.gbnf")
        with open(gpath, "w") as f:
            f.write('root ::= "a" undefined-rule\n')
        r = subprocess.run([BIN, "run", "-m", model, "-p", "x", "--grammar", gpath], capture_output=True, timeout=60)
        if r.returncode != 1 or "undefined-rule" not in r.stderr.decode():
            fail("bad grammar: exit %d, %r" % (r.returncode, r.stderr.decode()[-300:]))

    print("%d/%d schemas: output parsed and validated; %d failures" % (n_ok, CASES, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""End-to-end tests of structured output and tool calling in the real daemon (`onellm serve` on a
temporary socket and port) with a random-weight model: every call the daemon returns names a
given tool and has arguments that validate against the tool's schema (checked with the
independent `jsonschema` package), for tool_choice required / named / auto / none, parallel or
not, streaming or not, in /v1/chat/completions and in native sessions; response_format
json_object and json_schema; tool-role follow-ups; and typed errors for bad tools and schemas.
Exit 77 = skipped (no binary or no jsonschema module)."""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import service_e2e_test as e2e  # noqa: E402
from service_e2e_test import Daemon, check, sse_events  # noqa: E402

BIN = os.environ.get("ONELLM_BIN", "")

try:
    import jsonschema
except ImportError:
    print("python3-jsonschema is not installed")
    sys.exit(77)


TOOLS = [
    {"type": "function", "function": {"name": "set_alarm", "description": "Set an alarm.",
     "parameters": {"type": "object", "properties": {
         "hour": {"type": "integer", "minimum": 0, "maximum": 23},
         "minute": {"type": "integer", "minimum": 0, "maximum": 59},
         "label": {"type": "string", "maxLength": 12}}, "required": ["hour", "minute"]}}},
    {"type": "function", "function": {"name": "toggle", "description": "Switch a setting.",
     "parameters": {"type": "object", "properties": {
         "setting": {"enum": ["wifi", "bluetooth", "dnd"]}, "on": {"type": "boolean"}},
         "required": ["setting", "on"]}}},
]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
MESSAGES = [{"role": "user", "content": "wake me at 7"}]


def valid_calls(calls, names=None):
    ok = bool(calls)
    for c in calls or []:
        f = c.get("function", {})
        if c.get("type") != "function" or not c.get("id") or f.get("name") not in (names or SCHEMAS):
            return False
        try:
            jsonschema.validate(json.loads(f["arguments"]), SCHEMAS[f["name"]])
        except (ValueError, jsonschema.ValidationError):
            return False
    return ok


def chat(d, **fields):
    body = {"messages": MESSAGES, "max_tokens": 400, "temperature": 1.0, "seed": fields.pop("seed", 1)}
    body.update(fields)
    return d.request("POST", "/v1/chat/completions", body, unix=True)


def main():
    if not BIN or not os.path.exists(BIN):
        print("no onellm binary")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "tiny.gguf")
        subprocess.run([BIN, "make-tiny-model", "--arch", "qwen2", "--type", "F32", "--n-ctx", "4096", "-o", model],
                       check=True, capture_output=True)
        config = os.path.join(tmp, "service.toml")
        with open(config, "w") as f:
            f.write("[service]\nkeep_alive_s = 0\ndefault_context = 4096\n\n[[app]]\nid = \"agent\"\nuids = [%d]\n"
                    "qos = [\"agent\", \"chat\"]\n" % os.getuid())
        d = Daemon(tmp, model, config)
        try:
            run_checks(d)
        finally:
            code = d.stop()
            check(code == 0, "daemon exit code %s" % code)
        os.makedirs(os.path.join(tmp, "biased"))
        model_copy_bias_is_the_default(tmp, model, config)
        cli_tools_hold_calls_to_the_given_tools(tmp)
        builtin_tools_hold_calls_of_chats_without_tools(tmp, config)
    print("%d passed, %d failed" % (e2e.passed, e2e.failed))
    return 1 if e2e.failed else 0


NOTE = [{"type": "function", "function": {"name": "note", "description": "Keep a note.", "parameters": {
    "type": "object", "properties": {"text": {"type": "string", "pattern": "^[a-z ]{1,40}$"}},
    "required": ["text"]}}}]
NOTE_REQUEST = "please remember the purple elephant"


def note_texts(d, **fields):
    """The text argument of 3 sampled note calls (seeds 1-3; "" where there is no call)."""
    texts = []
    for seed in (1, 2, 3):
        st, r = chat(d, messages=[{"role": "user", "content": NOTE_REQUEST}], tools=NOTE, tool_choice="required",
                     seed=seed, **fields)
        calls = r["choices"][0]["message"].get("tool_calls") if st == 200 else None
        texts.append(json.loads(calls[0]["function"]["arguments"]).get("text", "") if calls else "")
        print("note %s seed %d: %r" % (fields, seed, texts[-1]))
    return texts


def copied_spans(d, **fields):
    """Of 3 sampled note calls, how many have a text that is a span of the request starting at a word."""
    spans = 0
    for text in note_texts(d, **fields):
        at = NOTE_REQUEST.find(text) if text else -1
        spans += at == 0 or (at > 0 and NOTE_REQUEST[at - 1] == " ")
    return spans


def model_copy_bias_is_the_default(tmp, model, config):
    """A model file with onellm.copy_bias is decoded with it unless the request says otherwise."""
    import gguf_ref
    biased = os.path.join(tmp, "biased.gguf")
    gguf_ref.rewrite_gguf(model, biased, [("onellm.copy_bias", gguf_ref.FLOAT32, 100.0)])
    d = Daemon(os.path.join(tmp, "biased"), biased, config)
    try:
        check(copied_spans(d) == 3, "the model's copy bias is the default")
        check(copied_spans(d, copy_bias=0) < 3, "copy_bias 0 in the request turns it off")
    finally:
        check(d.stop() == 0, "daemon of the biased model exits cleanly")
    bad = os.path.join(tmp, "bad.gguf")
    gguf_ref.rewrite_gguf(model, bad, [("onellm.copy_bias", gguf_ref.FLOAT32, -5.0)])
    r = subprocess.run([BIN, "run", "-m", bad, "--chat", "-p", "hi", "-n", "2"], capture_output=True, text=True)
    check(r.returncode == 1 and "onellm.copy_bias" in r.stderr, "a bad onellm.copy_bias is named: " + r.stderr[-300:])
    model_call_gate_is_read_and_checked(tmp, model, config)
    model_copy_arguments_hold_values_to_spans(tmp, model, config)


def whole_word_spans(d, **fields):
    """Of 3 sampled note calls, how many have a text that is a span of the request from a word start to a word end."""
    return sum(bool(t) and (" " + t + " ") in (" " + NOTE_REQUEST + " ") for t in note_texts(d, **fields))


def model_copy_arguments_hold_values_to_spans(tmp, model, config):
    """onellm.copy_arguments: with a copy bias too weak to keep a copy (1), the arguments it names are still
    whole-word spans of the request; a malformed entry is named."""
    import gguf_ref
    weak = os.path.join(tmp, "weak.gguf")
    gguf_ref.rewrite_gguf(model, weak, [("onellm.copy_bias", gguf_ref.FLOAT32, 1.0)])
    held = os.path.join(tmp, "held.gguf")
    gguf_ref.rewrite_gguf(weak, held, [("onellm.copy_arguments", gguf_ref.ARRAY, (gguf_ref.STRING, ["note.text"]))])
    for path, want in ((held, True), (weak, False)):
        os.makedirs(os.path.join(tmp, os.path.basename(path) + ".d"))
        d = Daemon(os.path.join(tmp, os.path.basename(path) + ".d"), path, config)
        try:
            n = whole_word_spans(d)
            check((n == 3) == want, "%s: %d of 3 note texts are whole-word spans" % (os.path.basename(path), n))
        finally:
            check(d.stop() == 0, "daemon of %s exits cleanly" % path)
    bad = os.path.join(tmp, "bad-copy-arguments.gguf")
    gguf_ref.rewrite_gguf(model, bad, [("onellm.copy_arguments", gguf_ref.ARRAY, (gguf_ref.STRING, ["note"]))])
    r = subprocess.run([BIN, "run", "-m", bad, "--chat", "-p", "hi", "-n", "2"], capture_output=True, text=True)
    check(r.returncode == 1 and "onellm.copy_arguments" in r.stderr, "a bad onellm.copy_arguments is named: " + r.stderr[-300:])


def model_call_gate_is_read_and_checked(tmp, model, config):
    """onellm.min_call_probability: read by serve and run, a bad value named, the request field range-checked."""
    import gguf_ref
    gated = os.path.join(tmp, "gated.gguf")
    gguf_ref.rewrite_gguf(model, gated, [("onellm.min_call_probability", gguf_ref.FLOAT32, 0.99)])
    os.makedirs(os.path.join(tmp, "gated"))
    d = Daemon(os.path.join(tmp, "gated"), gated, config)
    try:
        for seed in (1, 2):
            st, r = chat(d, messages=[{"role": "user", "content": "hello there"}], tools=WEATHER, seed=seed,
                         max_tokens=8)
            check(st == 200 and not r["choices"][0]["message"].get("tool_calls"),
                  "a random model below the model's call gate answers in words: %s" % st)
        st, r = chat(d, messages=[{"role": "user", "content": "hi"}], min_call_probability=1.5, max_tokens=2)
        check(st == 400 and "min_call_probability" in json.dumps(r), "min_call_probability 1.5 is refused: %s" % st)
    finally:
        check(d.stop() == 0, "daemon of the gated model exits cleanly")
    bad = os.path.join(tmp, "badgate.gguf")
    gguf_ref.rewrite_gguf(model, bad, [("onellm.min_call_probability", gguf_ref.FLOAT32, 1.0)])
    r = subprocess.run([BIN, "run", "-m", bad, "--chat", "-p", "hi", "-n", "2"], capture_output=True, text=True)
    check(r.returncode == 1 and "onellm.min_call_probability" in r.stderr,
          "a bad onellm.min_call_probability is named: " + r.stderr[-300:])


WEATHER = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
                           "required": ["city"], "additionalProperties": False}}}]


def cli_calls(text):
    """The JSON of each <tool_call>...</tool_call> in run/chat output (None where one does not parse)."""
    out = []
    for part in text.split("<tool_call>")[1:]:
        try:  # the call ends with its JSON: a string argument may hold "</tool_call>"
            call, end = json.JSONDecoder().raw_decode(part.lstrip())
            out.append(call if part.lstrip()[end:].lstrip().startswith("</tool_call>") else None)
        except ValueError:
            out.append(None)
    return out


def cli_tools_hold_calls_to_the_given_tools(tmp):
    """run --chat / chat --tools: the bundled model answers "set an alarm" with set_alarm on its own;
    given only get_weather, every call it writes names get_weather with valid arguments, and a
    request for a joke still gets a plain answer (the grammar is lazy)."""
    bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "onellm-device.gguf")
    if not os.path.exists(bundled):
        check(False, "the bundled model is missing: " + bundled)
        return
    run = [BIN, "run", "-m", bundled, "--chat", "-n", "80", "-t", "2", "--temp", "0", "-p"]
    free = subprocess.run(run + ["set an alarm for 7:30"], capture_output=True, text=True)
    names = [c and c.get("name") for c in cli_calls(free.stdout)]
    check(free.returncode == 0 and names == ["set_alarm"], "without --tools the model calls set_alarm: " + free.stdout)
    tools_file = os.path.join(tmp, "weather.json")
    with open(tools_file, "w") as f:
        json.dump(WEATHER, f)
    for prompt in ("set an alarm for 7:30", "what is the weather in Paris", "call mom"):
        r = subprocess.run(run + [prompt, "--tools", tools_file], capture_output=True, text=True)
        calls = cli_calls(r.stdout)
        ok = r.returncode == 0 and bool(calls) and all(c and c.get("name") == "get_weather" for c in calls)
        for c in calls if ok else []:
            try:
                jsonschema.validate(c["arguments"], WEATHER[0]["function"]["parameters"])
            except jsonschema.ValidationError:
                ok = False
        check(ok, "--tools %r: only get_weather, valid arguments: %s" % (prompt, r.stdout + r.stderr[-300:]))
    joke = subprocess.run(run + ["tell me a joke", "--tools", json.dumps(WEATHER)], capture_output=True, text=True)
    check(joke.returncode == 0 and joke.stdout.strip() and "<tool_call>" not in joke.stdout,
          "--tools inline, plain answer stays free: " + joke.stdout)
    # --tool-choice: a tool's name or required makes the reply a call even to a joke; none is no tools.
    for choice in ("get_weather", "required"):
        r = subprocess.run(run + ["tell me a joke", "--tools", tools_file, "--tool-choice", choice],
                           capture_output=True, text=True)
        calls = cli_calls(r.stdout)
        check(r.returncode == 0 and len(calls) >= 1 and all(c and c.get("name") == "get_weather" for c in calls),
              "--tool-choice %s: the reply is a get_weather call: %s" % (choice, r.stdout + r.stderr[-300:]))
    r = subprocess.run(run + ["set an alarm for 7:30", "--tools", tools_file, "--tool-choice", "none"],
                       capture_output=True, text=True)
    check(r.returncode == 0 and r.stdout == free.stdout, "--tool-choice none is no tools: " + r.stdout)
    # chat: two turns on stdin, both held to the tools (required, so that the second turn, which
    # follows a call without a result since chat runs no tools, is a call whatever the model prefers).
    r = subprocess.run([BIN, "chat", "-m", bundled, "-n", "80", "-t", "2", "--temp", "0", "--tools", tools_file,
                        "--tool-choice", "required"],
                       input="set an alarm for 7:30\nset a timer for 5 minutes\n", capture_output=True, text=True)
    calls = cli_calls(r.stdout)
    check(r.returncode == 0 and len(calls) >= 2 and all(c and c.get("name") == "get_weather" for c in calls),
          "chat --tools --tool-choice required: every turn is a get_weather call: " + r.stdout)
    for args, needle in ((["--tools", "[1"], "--tools: not JSON"),
                         (["--tools", '[{"type": "function"}]'], "tools[0].function.name"),
                         (["--tools", tools_file, "--json-schema", "{}"], "cannot be combined"),
                         (["--tools", tools_file, "--tool-choice", "nope"], "no tool is named 'nope'"),
                         (["--tool-choice", "required"], "--tool-choice needs --tools")):
        r = subprocess.run(run + ["hi"] + args, capture_output=True, text=True)
        check(r.returncode == 1 and needle in r.stderr, "bad --tools named (%s): %s" % (needle, r.stderr[-300:]))
    r = subprocess.run([BIN, "run", "-m", bundled, "-p", "hi", "--tools", tools_file], capture_output=True, text=True)
    check(r.returncode == 1 and "--tools needs --chat" in r.stderr, "--tools without --chat: " + r.stderr[-300:])
    # chat --help answers without loading a model (a bad -m is not read).
    r = subprocess.run([BIN, "chat", "-m", os.path.join(tmp, "absent.gguf"), "--help"], capture_output=True, text=True)
    check(r.returncode == 0 and "/reset" in r.stdout and "--tools" in r.stdout, "chat --help: " + r.stdout + r.stderr)


def builtin_tools_hold_calls_of_chats_without_tools(tmp, config):
    """onellm.builtin_tools: the bundled model rewritten to know only get_weather. A chat without tools
    (run --chat, serve) may still call, but only get_weather with valid arguments; --no-builtin-tools,
    and tool_choice none in a request, leave the model free (it calls set_alarm); a bad key is named."""
    import gguf_ref
    bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "onellm-device.gguf")
    weather = os.path.join(tmp, "weather-builtin.gguf")
    gguf_ref.rewrite_gguf(bundled, weather, [("onellm.builtin_tools", gguf_ref.STRING, json.dumps(WEATHER))])

    def names(text):
        return [c and c.get("name") for c in cli_calls(text)]

    def weather_calls_only(calls):
        ok = bool(calls) and all(c and c.get("name") == "get_weather" for c in calls)
        for c in calls if ok else []:
            try:
                jsonschema.validate(c["arguments"], WEATHER[0]["function"]["parameters"])
            except jsonschema.ValidationError:
                ok = False
        return ok

    run = [BIN, "run", "-m", weather, "--chat", "-n", "80", "-t", "2", "--temp", "0", "-p", "set an alarm for 7:30"]
    r = subprocess.run(run, capture_output=True, text=True)
    check(r.returncode == 0 and weather_calls_only(cli_calls(r.stdout)),
          "run --chat: calls keep to the built-in get_weather: " + r.stdout + r.stderr[-300:])
    r = subprocess.run(run + ["--no-builtin-tools"], capture_output=True, text=True)
    check(r.returncode == 0 and names(r.stdout) == ["set_alarm"], "--no-builtin-tools: set_alarm: " + r.stdout)
    info = subprocess.run([BIN, "info", weather], capture_output=True, text=True)
    check("built-in tools: get_weather" in info.stdout, "info lists the built-in tools: " + info.stdout[-400:])

    state = os.path.join(tmp, "builtin")
    os.makedirs(state)
    alarm = [{"role": "user", "content": "set an alarm for 7:30"}]
    d = Daemon(state, weather, config)
    try:
        st, r = chat(d, messages=alarm, temperature=0, max_tokens=80)
        msg = r["choices"][0]["message"] if st == 200 else {}
        check(st == 200 and not msg.get("tool_calls") and weather_calls_only(cli_calls(msg.get("content") or "")),
              "serve, no tools: the reply's calls keep to get_weather and stay text: %s" % r)
        st, r = chat(d, messages=alarm, temperature=0, max_tokens=80, tool_choice="none")
        msg = r["choices"][0]["message"] if st == 200 else {}
        check(st == 200 and names(msg.get("content") or "") == ["set_alarm"],
              "serve, tool_choice none: the built-in tools do not apply: %s" % r)
    finally:
        check(d.stop() == 0, "daemon of the built-in-tools model exits cleanly")
    d = Daemon(state, weather, config, extra=["--no-builtin-tools"])
    try:
        st, r = chat(d, messages=alarm, temperature=0, max_tokens=80)
        msg = r["choices"][0]["message"] if st == 200 else {}
        check(st == 200 and names(msg.get("content") or "") == ["set_alarm"], "serve --no-builtin-tools: %s" % r)
    finally:
        check(d.stop() == 0, "daemon with --no-builtin-tools exits cleanly")

    bad = os.path.join(tmp, "bad-builtin.gguf")
    gguf_ref.rewrite_gguf(bundled, bad, [("onellm.builtin_tools", gguf_ref.STRING, "[{\"type\": \"function\"}]")])
    r = subprocess.run([BIN, "run", "-m", bad, "--chat", "-p", "hi", "-n", "2"], capture_output=True, text=True)
    check(r.returncode == 1 and "onellm.builtin_tools" in r.stderr, "a bad onellm.builtin_tools is named: " + r.stderr[-300:])


def run_checks(d):
    # tool_choice required, several seeds: every call valid; finish_reason tool_calls.
    # Parallel calls may run into max_tokens (then "length"; the cut call is dropped).
    for seed in range(6):
        parallel = seed % 2 == 0
        st, r = chat(d, tools=TOOLS, tool_choice="required", seed=seed, parallel_tool_calls=parallel)
        msg = r["choices"][0]["message"] if st == 200 else {}
        check(st == 200 and valid_calls(msg.get("tool_calls")), "required seed %d: %s" % (seed, r))
        check(st == 200 and (parallel or len(msg["tool_calls"]) == 1), "one call unless parallel: %s" % r)
        finish = r["choices"][0]["finish_reason"] if st == 200 else None
        check(finish == "tool_calls" or (parallel and finish == "length"), "finish_reason: %s" % r)
        check(st == 200 and "<tool_call>" not in (msg.get("content") or ""), "no raw call text: %s" % r)
    # A call cut by max_tokens: no call, no fragment of one as content (as the stream shows it).
    for seed in range(3):
        st, r = chat(d, tools=TOOLS, tool_choice="required", seed=seed, max_tokens=6)
        msg = r["choices"][0]["message"] if st == 200 else {}
        check(st == 200 and r["choices"][0]["finish_reason"] == "length" and not msg.get("tool_calls")
              and "<tool_call>" not in (msg.get("content") or "") and "{" not in (msg.get("content") or ""),
              "cut call seed %d: %s" % (seed, r))
    # A named function, no parallel calls: exactly one call of that function.
    st, r = chat(d, tools=TOOLS, tool_choice={"type": "function", "function": {"name": "toggle"}},
                 parallel_tool_calls=False, seed=3)
    calls = r["choices"][0]["message"].get("tool_calls") if st == 200 else None
    check(st == 200 and valid_calls(calls, ["toggle"]) and len(calls) == 1, "named: %s" % r)
    # auto: either text or valid calls; none: never calls.
    st, r = chat(d, tools=TOOLS, tool_choice="auto", max_tokens=40)
    msg = r["choices"][0]["message"] if st == 200 else {}
    check(st == 200 and ("tool_calls" not in msg or valid_calls(msg["tool_calls"])), "auto: %s" % r)
    st, r = chat(d, tools=TOOLS, tool_choice="none", max_tokens=20)
    check(st == 200 and "tool_calls" not in r["choices"][0]["message"], "none: %s" % r)

    # Streaming: the calls arrive as a tool_calls delta, never as raw <tool_call> text.
    conn, resp = d.request("POST", "/v1/chat/completions", {"messages": MESSAGES, "tools": TOOLS,
                           "tool_choice": "required", "parallel_tool_calls": False, "stream": True,
                           "max_tokens": 400, "seed": 2}, unix=True,
                           stream=True)
    events = [e for e in sse_events(resp) if e != "[DONE]"]
    conn.close()
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))
    deltas = [c for e in events if e.get("choices") for c in e["choices"][0]["delta"].get("tool_calls", [])]
    check(valid_calls(deltas) and "<tool_call>" not in text, "stream: %s / %r" % (deltas, text))
    check(events and events[-1]["choices"][0]["finish_reason"] == "tool_calls", "stream finish: %s" % events[-1:])

    # Follow-up turn with the assistant's calls (arguments as a string) and a non-JSON tool result.
    follow = MESSAGES + [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "set_alarm", "arguments": "{\"hour\": 7, \"minute\": 0}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "alarm set (not JSON)"}]
    st, r = d.request("POST", "/v1/chat/completions", {"messages": follow, "tools": TOOLS, "max_tokens": 8},
                      unix=True)
    check(st == 200, "tool follow-up: %s %s" % (st, r))

    # response_format: json_object and json_schema.
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 10},
              "days": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 7}, "maxItems": 3}},
              "required": ["city", "days"]}
    for seed in range(4):
        st, r = chat(d, response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": schema}},
                     seed=seed, max_tokens=600)
        content = r["choices"][0]["message"]["content"] if st == 200 else ""
        try:
            jsonschema.validate(json.loads(content), schema)
            ok = True
        except (ValueError, jsonschema.ValidationError):
            ok = False
        check(ok, "json_schema seed %d: %r" % (seed, content))
    st, r = chat(d, response_format={"type": "json_object"}, max_tokens=1500, temperature=0)
    content = r["choices"][0]["message"]["content"] if st == 200 else ""
    check(st == 200 and (r["choices"][0]["finish_reason"] == "length" or isinstance(json.loads(content), dict)),
          "json_object: %r" % content[:200])

    # llama-server's "grammar" (GBNF) and "json_schema", on chat and on text completions.
    yes_no = 'root ::= ("yes" | "no") " " [0-9]'
    for seed in range(3):
        st, r = chat(d, grammar=yes_no, seed=seed, max_tokens=50)
        content = r["choices"][0]["message"]["content"] if st == 200 else ""
        check(re.fullmatch(r"(yes|no) [0-9]", content) and r["choices"][0]["finish_reason"] == "stop",
              "chat grammar seed %d: %r" % (seed, content))
        st, r = d.request("POST", "/v1/completions", {"prompt": "hello", "grammar": yes_no, "seed": seed,
                                                      "max_tokens": 50}, unix=True)
        text = r["choices"][0]["text"] if st == 200 else ""
        check(re.fullmatch(r"(yes|no) [0-9]", text), "completion grammar seed %d: %s %r" % (seed, st, r))
        st, r = d.request("POST", "/v1/completions", {"prompt": "hello", "json_schema": schema, "seed": seed,
                                                      "max_tokens": 600}, unix=True)
        try:
            jsonschema.validate(json.loads(r["choices"][0]["text"]), schema)
            ok = True
        except (ValueError, KeyError, jsonschema.ValidationError):
            ok = False
        check(ok, "completion json_schema seed %d: %s %r" % (seed, st, r))
    st, r = chat(d, json_schema=schema, max_tokens=600)
    check(st == 200 and isinstance(json.loads(r["choices"][0]["message"]["content"]), dict), "chat json_schema: %r" % r)
    st, r = d.request("POST", "/v1/completions", {"prompt": "hello", "response_format": {"type": "json_schema",
                      "json_schema": {"name": "w", "schema": schema}}, "max_tokens": 600}, unix=True)
    check(st == 200 and isinstance(json.loads(r["choices"][0]["text"]), dict), "completion response_format: %r" % r)
    for fields, param in [({"grammar": "root ::= ("}, "grammar"), ({"grammar": 5}, "grammar"),
                          ({"grammar": yes_no, "json_schema": schema}, "grammar"),
                          ({"json_schema": {"type": "integer", "multipleOf": 3}}, "json_schema"),
                          ({"grammar": yes_no, "response_format": {"type": "json_object"}}, "response_format")]:
        st, r = d.request("POST", "/v1/completions", dict({"prompt": "hello"}, **fields), unix=True)
        err = r.get("error", {}) if isinstance(r, dict) else {}
        check(st == 400 and err.get("param") == param, "completion bad %s: %s %s" % (fields, st, r))

    # Typed errors naming the field.
    bad = [
        ({"tools": [{"type": "function", "function": {"name": "bad name!", "parameters": {}}}]}, "tools"),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
            "x": {"type": "string", "pattern": "(a)\\1"}}}}}]}, "tools"),  # backreference: unsupported
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "integer",
          "multipleOf": 3}}}}, "response_format.json_schema.schema"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": TOOLS, "copy_bias": -1}, "copy_bias"),
        ({"tools": TOOLS, "copy_bias": "strong"}, "copy_bias"),
        ({"tools": TOOLS, "grammar": 'root ::= "x"'}, "tools"),
        ({"grammar": 'root ::= "x"', "response_format": {"type": "json_object"}}, "response_format"),
        ({"grammar": "root ::= undefined-rule"}, "grammar"),
    ]
    for fields, param in bad:
        st, r = chat(d, **fields)
        err = r.get("error", {}) if isinstance(r, dict) else {}
        check(st == 400 and err.get("code") == "BAD_REQUEST" and err.get("param") == param,
              "bad %s: %s %s" % (fields, st, r))

    # copy_bias: a string argument copied from the request (random weights alone do not copy).
    check(copied_spans(d, copy_bias=100) == 3, "copy_bias 100 copies spans of the request")

    # Native session: a call, then the tool's result as the next message; the history keeps both.
    st, s = d.request("POST", "/v1/sessions", {"instructions": "You control the phone.", "name": "tools"}, unix=True)
    check(st == 200, "session: %s" % s)
    sid = s["id"]
    st, r = d.request("POST", "/v1/sessions/%s/messages" % sid, {"role": "user", "content": "turn on wifi",
                      "tools": TOOLS, "tool_choice": "required", "parallel_tool_calls": False,
                      "max_tokens": 400, "seed": 4}, unix=True)
    check(st == 200 and r.get("finish_reason") == "tool_calls" and valid_calls(r.get("tool_calls")),
          "session call: %s" % r)
    call_id = r["tool_calls"][0]["id"] if st == 200 and r.get("tool_calls") else "x"
    st, r = d.request("POST", "/v1/sessions/%s/messages" % sid, {"role": "tool", "tool_call_id": call_id,
                      "content": "{\"ok\": true}", "tools": TOOLS, "max_tokens": 5}, unix=True)
    check(st == 200, "session tool result: %s" % r)
    st, h = d.request("GET", "/v1/sessions/%s" % sid, unix=True)
    roles = [m["role"] for m in h.get("messages", [])] if st == 200 else []
    check(roles == ["user", "assistant", "tool", "assistant"], "session history roles %s" % roles)
    check(st == 200 and h["messages"][1].get("tool_calls") and h["messages"][2].get("tool_call_id") == call_id,
          "session history keeps calls: %s" % h.get("messages"))


if __name__ == "__main__":
    sys.exit(main())

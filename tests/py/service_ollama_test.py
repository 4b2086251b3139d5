"""End-to-end: Ollama's API (/api/*) of the real daemon, checked against its own OpenAI API.

Every generation is asked of both APIs with the same settings, and the answers must agree: text, counts,
log-probabilities, grammar-held JSON, thinking split off, tool calls (arguments as objects here, JSON text
there) and embeddings. The Ollama defaults (temperature 0.8, top_k 40, top_p 0.9, min_p 0, repeat_penalty
1.1) are checked by sampling with a seed and only the seed given. Also: NDJSON streams whose pieces add up
to the whole answer, /api/generate's "context" continuing a reply, model listing (/api/tags, /api/ps,
/api/show), load requests, and bad requests answered with {"error": "..."} naming what is wrong.
Exit 77 = skipped (no binary).
"""
import calendar
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_ref  # noqa: E402
import service_e2e_test as e2e  # noqa: E402
from service_e2e_test import Daemon, check  # noqa: E402

BUNDLED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "onellm-device.gguf")
THINKING_TEMPLATE = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
                     "{% if add_generation_prompt %}<|assistant|><think>\n{% endif %}")
ALARM_TOOLS = [{"type": "function", "function": {
    "name": "set_alarm", "description": "Set an alarm",
    "parameters": {"type": "object", "properties": {"hour": {"type": "integer"}, "minute": {"type": "integer"}},
                   "required": ["hour", "minute"]}}}]


def ndjson(d, path, body):
    """POST a streamed request; returns (status, content type, [objects])."""
    conn, resp = d.request("POST", path, body, stream=True)
    lines = [json.loads(line) for line in resp.read().decode().splitlines() if line.strip()]
    conn.close()
    return resp.status, resp.getheader("Content-Type", ""), lines


def stream_checks(lines, what):
    check(lines and all(x["done"] is False for x in lines[:-1]) and lines[-1]["done"] is True,
          f"{what}: every line but the last is done: false: {lines[-3:]}")
    check(all(isinstance(x.get("created_at"), str) and x["created_at"].endswith("Z") for x in lines),
          f"{what}: created_at in RFC 3339 UTC")


def listing_checks(d, model):
    st, text = d.request("GET", "/")
    check(st == 200 and "running" in text, f"GET / answers as Ollama's does: {st} {text!r}")
    st, v = d.request("GET", "/api/version")
    check(st == 200 and isinstance(v.get("version"), str) and v["version"].count(".") == 2, f"/api/version: {v}")
    st, tags = d.request("GET", "/api/tags")
    name = tags["models"][0]["name"] if st == 200 and tags.get("models") else ""
    m = tags["models"][0] if name else {}
    check(st == 200 and len(tags["models"]) == 1 and name == os.path.splitext(os.path.basename(model))[0] + ":latest"
          and m["size"] == os.path.getsize(model) and m["details"]["format"] == "gguf"
          and m["details"]["family"] == "qwen2" and m["details"]["quantization_level"] == "F32"
          and m["details"]["parameter_size"][-1] in "KMB" and len(m["digest"]) >= 16, f"/api/tags: {tags}")
    st, ps = d.request("GET", "/api/ps")
    check(st == 200 and [x["name"] for x in ps["models"]] == [name] and "expires_at" in ps["models"][0],
          f"/api/ps lists the loaded model: {ps}")
    st, show = d.request("POST", "/api/show", {"model": name})
    arch = show.get("model_info", {}).get("general.architecture") if st == 200 else None
    check(st == 200 and arch == "qwen2" and show["model_info"]["general.parameter_count"] > 0
          and "completion" in show["capabilities"] and show["details"] == m["details"],
          f"/api/show: {st} {str(show)[:300]}")
    # The test model's 6000 tokens are freed from the metadata after loading: listed, as arrays are, as null.
    check(st == 200 and "tokenizer.ggml.tokens" in show["model_info"] and show["model_info"]["tokenizer.ggml.tokens"]
          is None, "/api/show lists the freed vocabulary array as null")
    template = gguf_ref.GgufFile(model).get("tokenizer.chat_template", "")
    check(st == 200 and show["template"] == template, "/api/show's template is the file's chat template")
    st, err = d.request("POST", "/api/show", {"model": "llama3:8b"})
    check(st == 404 and "llama3" in err.get("error", ""), f"/api/show of another model is 404 naming it: {st} {err}")


def generation_checks(d):
    user = [{"role": "user", "content": "hello there"}]
    # Greedy: the same text and counts as the OpenAI API.
    st, o = d.request("POST", "/api/chat", {"model": "any", "messages": user, "stream": False,
                                            "options": {"temperature": 0, "num_predict": 8, "repeat_penalty": 1}})
    st2, a = d.request("POST", "/v1/chat/completions", {"messages": user, "temperature": 0, "max_tokens": 8})
    check(st == 200 and st2 == 200 and o["message"]["content"] == a["choices"][0]["message"]["content"]
          and o["eval_count"] == a["usage"]["completion_tokens"] == 8
          and o["prompt_eval_count"] == a["usage"]["prompt_tokens"] and o["done_reason"] == "length"
          and o["model"] == "any", f"/api/chat = /v1/chat/completions: {o} vs {a}")
    check(st == 200 and all(o[k] >= 0 for k in ("total_duration", "prompt_eval_duration", "eval_duration"))
          and o["total_duration"] >= o["eval_duration"], f"nanosecond durations: {o}")
    # Ollama's sampling defaults: only a seed given.
    st, o = d.request("POST", "/api/chat", {"model": "m", "messages": user, "stream": False,
                                            "options": {"seed": 11, "num_predict": 12}})
    st2, a = d.request("POST", "/v1/chat/completions", {
        "messages": user, "seed": 11, "max_tokens": 12, "temperature": 0.8, "top_k": 40, "top_p": 0.9, "min_p": 0,
        "repeat_penalty": 1.1})
    check(st == 200 and st2 == 200 and o["message"]["content"] == a["choices"][0]["message"]["content"],
          f"Ollama's defaults (temperature 0.8, top_k 40, top_p 0.9, repeat_penalty 1.1): {o} vs {a}")
    # Mirostat and typical sampling, as the OpenAI API's llama-server fields give them.
    st, m2 = d.request("POST", "/api/chat", {"model": "m", "messages": user, "stream": False, "options": {
        "seed": 5, "num_predict": 12, "mirostat": 2, "mirostat_tau": 3.0, "mirostat_eta": 0.2, "typical_p": 0.9}})
    st2, a2 = d.request("POST", "/v1/chat/completions", {
        "messages": user, "seed": 5, "max_tokens": 12, "temperature": 0.8, "top_k": 40, "top_p": 0.9, "min_p": 0,
        "repeat_penalty": 1.1, "mirostat": 2, "mirostat_tau": 3.0, "mirostat_eta": 0.2, "typical_p": 0.9})
    check(st == 200 and st2 == 200 and m2["message"]["content"] == a2["choices"][0]["message"]["content"],
          f"mirostat options: {m2} vs {a2}")
    st3, o2 = d.request("POST", "/api/chat", {"model": "m", "messages": user, "stream": False,
                                              "options": {"seed": 11, "num_predict": 12, "temperature": 0.3}})
    check(st3 == 200 and o2["message"]["content"] != o["message"]["content"] or o["eval_count"] < 3,
          "options.temperature is read")
    # Streamed: the pieces add up to the whole answer; the last line has the counts.
    body = {"model": "m", "messages": user, "options": {"temperature": 0, "num_predict": 8}}
    st, ctype, lines = ndjson(d, "/api/chat", body)
    st2, whole = d.request("POST", "/api/chat", dict(body, stream=False))
    stream_checks(lines, "/api/chat stream")
    check(st == 200 and ctype.startswith("application/x-ndjson") and len(lines) >= 2
          and "".join(x["message"]["content"] for x in lines) == whole["message"]["content"]
          and lines[-1]["eval_count"] == whole["eval_count"] and lines[-1]["done_reason"] == "length",
          f"a streamed chat adds up: {lines[-2:]} vs {whole}")
    # Log-probabilities: per token, as the OpenAI API gives them; streamed ones add up too.
    body = {"model": "m", "messages": user, "logprobs": True, "top_logprobs": 2, "stream": False,
            "options": {"temperature": 0, "num_predict": 6}}
    st, o = d.request("POST", "/api/chat", body)
    st2, a = d.request("POST", "/v1/chat/completions", {"messages": user, "temperature": 0, "max_tokens": 6,
                                                        "logprobs": True, "top_logprobs": 2, "repeat_penalty": 1.1})
    ol = o.get("logprobs", []) if st == 200 else []
    al = a["choices"][0]["logprobs"]["content"] if st2 == 200 else []
    check(len(ol) == 6 and [x["token"] for x in ol] == [x["token"] for x in al]
          and all(abs(x["logprob"] - y["logprob"]) < 1e-5 and len(x["top_logprobs"]) == 2 for x, y in zip(ol, al)),
          f"logprobs as the OpenAI API's: {ol} vs {al}")
    st, _, lines = ndjson(d, "/api/chat", dict(body, stream=True))
    streamed = [e for x in lines for e in x.get("logprobs", [])]
    check(st == 200 and [x["token"] for x in streamed] == [x["token"] for x in ol], f"streamed logprobs: {streamed}")


def generate_checks(d):
    # /api/generate renders the chat template around the prompt, with "system" first.
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "tell me"}]
    opts = {"temperature": 0, "num_predict": 6, "repeat_penalty": 1}
    st, g = d.request("POST", "/api/generate", {"model": "m", "prompt": "tell me", "system": "Be brief.",
                                                "stream": False, "options": opts})
    st2, a = d.request("POST", "/v1/chat/completions", {"messages": msgs, "temperature": 0, "max_tokens": 6})
    check(st == 200 and st2 == 200 and g["response"] == a["choices"][0]["message"]["content"]
          and g["prompt_eval_count"] == a["usage"]["prompt_tokens"], f"/api/generate = a chat turn: {g} vs {a}")
    ctx = g.get("context", [])
    check(len(ctx) == g.get("prompt_eval_count", 0) + g.get("eval_count", -1), f"context = prompt + reply: {g}")
    st, text = d.request("POST", "/detokenize", {"tokens": ctx[g["prompt_eval_count"]:]})
    check(st == 200 and text["content"] == g["response"], f"the context's tail is the reply: {text} vs {g}")
    # Continuing from the context: the raw prompt's tokens follow it, as a text completion of those ids.
    st, more = d.request("POST", "/api/generate", {"model": "m", "prompt": " and more", "raw": True, "context": ctx,
                                                   "stream": False, "options": opts})
    st2, ids = d.request("POST", "/tokenize", {"content": " and more"})
    st3, c = d.request("POST", "/v1/completions", {"prompt": ctx + ids["tokens"], "temperature": 0, "max_tokens": 6})
    check(st == 200 and st3 == 200 and more["prompt_eval_count"] == len(ctx) + len(ids["tokens"])
          and more["response"] == c["choices"][0]["text"], f"context continues: {more} vs {c}")
    # Streamed generate adds up.
    body = {"model": "m", "prompt": "tell me", "options": opts}
    st, _, lines = ndjson(d, "/api/generate", body)
    stream_checks(lines, "/api/generate stream")
    st2, whole = d.request("POST", "/api/generate", dict(body, stream=False))
    check(st == 200 and "".join(x["response"] for x in lines) == whole["response"]
          and lines[-1]["context"] == whole["context"], f"streamed generate adds up: {lines[-1]} vs {whole}")
    # "format": the reply held to JSON, as response_format holds the OpenAI one.
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    for fmt, rf in [("json", {"type": "json_object"}),
                    (schema, {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})]:
        st, g = d.request("POST", "/api/generate", {"model": "m", "prompt": "tell me", "format": fmt, "stream": False,
                                                    "options": {"temperature": 0, "num_predict": 24}})
        st2, a = d.request("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "tell me"}],
                                                            "temperature": 0, "max_tokens": 24,
                                                            "repeat_penalty": 1.1, "response_format": rf})
        text = g.get("response", "") if st == 200 else None
        check(st == 200 and text == a["choices"][0]["message"]["content"] and text.lstrip().startswith("{"),
              f"format {fmt} holds the reply to JSON: {g} vs {a}")
        if g.get("done_reason") == "stop":
            check(isinstance(json.loads(text), dict), f"a finished JSON reply parses: {text!r}")
    # Requests without a prompt only load the model.
    for path, body in [("/api/generate", {"model": "m"}), ("/api/chat", {"model": "m", "messages": []})]:
        st, o = d.request("POST", path, body)
        check(st == 200 and o.get("done") is True and o.get("done_reason") == "load", f"{path} load request: {o}")


def error_checks(d):
    bad = [
        ("/api/chat", None, "{not json", 400, "JSON"),
        ("/api/chat", {"model": "m", "messages": [{"role": "user", "content": "x", "images": ["aGk="]}]}, None, 400,
         "images"),
        ("/api/chat", {"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, None, 400, "wizard"),
        ("/api/chat", {"model": "m", "messages": [{"role": "user", "content": "x"}], "options": {"tfs_z": 0.5}},
         None, 400, "tfs_z"),
        ("/api/chat", {"model": "m", "messages": [{"role": "user", "content": "x"}], "options": {"mirostat": 3}},
         None, 400, "mirostat"),
        ("/api/chat", {"model": "m", "messages": [{"role": "user", "content": "x"}], "options": [1]}, None, 400,
         "options"),
        ("/api/chat", {"model": "m", "messages": [{"role": "user", "content": "x"}], "format": "yaml"}, None, 400,
         "format"),
        ("/api/chat", {"model": "m", "messages": [{"role": "user", "content": "x"}], "think": "very"}, None, 400,
         "think"),
        ("/api/generate", {"model": "m", "prompt": "x", "template": "{{ .Prompt }}"}, None, 400, "template"),
        ("/api/generate", {"model": "m", "prompt": "x", "context": [1, -5]}, None, 400, "context"),
        ("/api/generate", {"model": "m", "prompt": "word " * 5000, "stream": False}, None, 400, "context holds"),
        ("/api/pull", {"model": "llama3"}, None, 501, "/api/pull"),
        ("/api/nothing", {}, None, 404, "/api/nothing"),
    ]
    for path, body, raw, want, word in bad:
        st, e = d.request("POST", path, body, raw=raw)
        check(st == want and isinstance(e, dict) and isinstance(e.get("error"), str) and word in e["error"],
              f"{path} {str(body or raw)[:80]}: {want} naming {word!r}, got {st} {e}")


def embed_checks(d):
    st, o = d.request("POST", "/api/embed", {"model": "m", "input": ["a cat", "a dog"]})
    st2, a = d.request("POST", "/v1/embeddings", {"input": ["a cat", "a dog"]})
    ok = st == 200 and st2 == 200 and len(o["embeddings"]) == 2
    check(ok and all(max(abs(x - y) for x, y in zip(e, f["embedding"])) < 1e-6
                     for e, f in zip(o["embeddings"], a["data"])) and o["prompt_eval_count"] > 0,
          f"/api/embed = /v1/embeddings: {str(o)[:200]}")
    st, one = d.request("POST", "/api/embed", {"model": "m", "input": "a cat", "dimensions": 4})
    v = one.get("embeddings", [[]])[0] if st == 200 else []
    check(len(v) == 4 and abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-5, f"dimensions 4, unit length: {v}")
    full = o["embeddings"][0] if ok else [1.0] * 8
    cut = [x / math.sqrt(sum(y * y for y in full[:4])) for x in full[:4]]
    check(len(v) == 4 and max(abs(x - y) for x, y in zip(v, cut)) < 1e-5, f"the first 4, normalized: {v} vs {cut}")
    st, legacy = d.request("POST", "/api/embeddings", {"model": "m", "prompt": "a cat"})
    e = legacy.get("embedding", []) if st == 200 else []
    norm = math.sqrt(sum(x * x for x in e)) if e else 0
    check(len(e) == len(full) and norm > 0 and max(abs(x / norm - y) for x, y in zip(e, full)) < 1e-5,
          f"/api/embeddings: the same direction, not normalized (norm {norm})")
    long_text = "word " * 2100  # more than the 2048 tokens of the app's context
    st, cut_ok = d.request("POST", "/api/embed", {"model": "m", "input": long_text})
    st, tags = d.request("GET", "/api/tags")
    st, show = d.request("POST", "/api/show", {"model": tags["models"][0]["name"]})
    n_ctx = min(2048, show["model_info"]["qwen2.context_length"]) if st == 200 else -1
    check(cut_ok.get("prompt_eval_count") == n_ctx and len(cut_ok.get("embeddings", [])) == 1,
          f"truncate (default) cuts a long input to the context ({n_ctx}): {cut_ok.get('prompt_eval_count')}")
    st, err = d.request("POST", "/api/embed", {"model": "m", "input": long_text, "truncate": False})
    check(st == 400 and "context holds" in err.get("error", ""), f"truncate false: an error: {st} {err}")


def thinking_checks(tmp, model):
    thinking = os.path.join(tmp, "thinking.gguf")
    gguf_ref.rewrite_gguf(model, thinking, [("tokenizer.chat_template", gguf_ref.STRING, THINKING_TEMPLATE)])
    d = Daemon(tmp, thinking, extra=["--no-builtin-tools"])
    try:
        user = [{"role": "user", "content": "hello"}]
        opts = {"temperature": 0, "num_predict": 8, "repeat_penalty": 1}
        st, a = d.request("POST", "/v1/chat/completions", {"messages": user, "temperature": 0, "max_tokens": 8})
        want = a["choices"][0]["message"]
        st, o = d.request("POST", "/api/chat", {"model": "m", "messages": user, "stream": False, "options": opts})
        check(st == 200 and o["message"].get("thinking", "") == want.get("reasoning_content", "")
              and o["message"]["content"] == (want["content"] or ""), f"message.thinking: {o} vs {want}")
        st, _, lines = ndjson(d, "/api/chat", {"model": "m", "messages": user, "options": opts})
        streamed = "".join(x["message"].get("thinking", "") for x in lines)
        check(st == 200 and streamed.strip() == want.get("reasoning_content", ""), f"streamed thinking: {lines}")
        st, off = d.request("POST", "/api/chat", {"model": "m", "messages": user, "stream": False, "think": False,
                                                  "options": opts})
        check(st == 200 and "thinking" not in off["message"], f"think false: no thinking split off: {off}")
        st, g = d.request("POST", "/api/generate", {"model": "m", "prompt": "hello", "stream": False,
                                                    "options": opts})
        check(st == 200 and g.get("thinking", "") == want.get("reasoning_content", ""), f"generate's thinking: {g}")
        st, show = d.request("POST", "/api/show", {"model": "thinking"})
        check(st == 200 and "thinking" in show["capabilities"],
              f"capabilities name thinking: {show.get('capabilities')}")
    finally:
        d.stop()


def tool_checks(tmp):
    d = Daemon(tmp, BUNDLED)
    try:
        user = [{"role": "user", "content": "set an alarm for 7:30"}]
        st, o = d.request("POST", "/api/chat", {"model": "onellm-device", "messages": user, "tools": ALARM_TOOLS,
                                                "stream": False, "options": {"temperature": 0}})
        st2, a = d.request("POST", "/v1/chat/completions", {"messages": user, "tools": ALARM_TOOLS, "temperature": 0,
                                                            "repeat_penalty": 1.1})
        calls = o.get("message", {}).get("tool_calls", []) if st == 200 else []
        want = a["choices"][0]["message"].get("tool_calls", []) if st2 == 200 else []
        check(len(calls) >= 1 and len(calls) == len(want) and all(
            c["function"]["name"] == w["function"]["name"]
            and c["function"]["arguments"] == json.loads(w["function"]["arguments"]) for c, w in zip(calls, want))
            and isinstance(calls[0]["function"]["arguments"], dict), f"tool calls, arguments as objects: {o} vs {a}")
        st, _, lines = ndjson(d, "/api/chat", {"model": "m", "messages": user, "tools": ALARM_TOOLS,
                                               "options": {"temperature": 0}})
        streamed = [c for x in lines for c in x["message"].get("tool_calls", [])]
        shown = "".join(x["message"]["content"] for x in lines)
        check(st == 200 and streamed == calls and "<tool_call>" not in shown, f"streamed calls: {lines[-3:]}")
        # The next turn: the call (arguments as an object) and its result (tool_name) go back in.
        turn = user + [{"role": "assistant", "content": "", "tool_calls": calls},
                       {"role": "tool", "content": "{\"ok\": true}", "tool_name": "set_alarm"}]
        st, o = d.request("POST", "/api/chat", {"model": "m", "messages": turn, "tools": ALARM_TOOLS,
                                                "stream": False, "options": {"temperature": 0, "num_predict": 16}})
        check(st == 200 and o["done"] is True, f"a turn after a tool result: {st} {o}")
    finally:
        d.stop()


def auth_checks(tmp, model):
    """With a config, apps are identified as on the OpenAI API; refusals come in Ollama's shape."""
    cfg = os.path.join(tmp, "onellm.toml")
    with open(cfg, "w") as f:
        f.write(e2e.CONFIG)
    d = Daemon(tmp, model, cfg)
    try:
        st, e = d.request("GET", "/api/tags")
        check(st == 401 and "Bearer" in e.get("error", ""), f"no credentials over TCP: 401 in Ollama's shape: {e}")
        st, e = d.request("GET", "/api/tags", token="tok-nobody")
        check(st == 403 and isinstance(e.get("error"), str), f"an unknown token: 403: {e}")
        st, tags = d.request("GET", "/api/tags", token="tok-mail")
        check(st == 200 and len(tags["models"]) == 1, f"a bearer token: {tags}")
        st, o = d.request("POST", "/api/chat", {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                                "stream": False, "options": {"num_predict": 2}}, unix=True)
        check(st == 200 and o["done"] is True, f"the launcher app by its uid over the Unix socket: {o}")
        st, e = d.request("POST", "/api/chat", {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                                "qos": "voice"}, token="tok-mail")
        check(st == 403 and "voice" in e.get("error", ""), f"a class the app may not use: {e}")
    finally:
        d.stop()


def expires_in(d):
    """Seconds until /api/ps says the model is unloaded (None: not loaded, inf: never)."""
    st, ps = d.request("GET", "/api/ps")
    check(st == 200, f"/api/ps: {st} {ps}")
    if not ps["models"]:
        return None
    at = ps["models"][0]["expires_at"]
    if at.startswith("2318-"):
        return math.inf
    return calendar.timegm(time.strptime(at, "%Y-%m-%dT%H:%M:%SZ")) - time.time()


def wait_unloaded(d, seconds):
    end = time.time() + seconds
    while time.time() < end:
        if expires_in(d) is None:
            return True
        time.sleep(0.1)
    return False


def keep_alive_checks(d):
    """A request's keep_alive sets how long the model stays loaded after it, as in Ollama; 0 unloads it."""
    ask = {"model": "m", "prompt": "hello", "stream": False, "options": {"num_predict": 2}}
    st, _ = d.request("POST", "/api/generate", ask)
    left = expires_in(d)
    check(st == 200 and left is not None and 290 < left <= 301, f"no keep_alive: the config's 300 s: {left}")
    for keep, lo, hi in [("1h", 3590, 3601), (120, 110, 121), ("2m30s", 140, 151), (-1, math.inf, math.inf),
                         ("-5m", math.inf, math.inf)]:
        st, o = d.request("POST", "/api/generate", dict(ask, keep_alive=keep))
        left = expires_in(d)
        check(st == 200 and left is not None and lo <= left <= hi, f"keep_alive {keep!r}: expires in {left} s")
    for bad in ["soon", "5 minutes", [1], {"s": 1}, "1x", ""]:
        st, e = d.request("POST", "/api/chat", {"model": "m", "messages": [{"role": "user", "content": "x"}],
                                                "keep_alive": bad})
        check(st == 400 and "keep_alive" in e.get("error", ""), f"keep_alive {bad!r}: 400 naming it: {st} {e}")
    # `ollama stop` sends keep_alive 0 without a prompt: the answer says unload, and the model goes.
    st, o = d.request("POST", "/api/generate", {"model": "m", "keep_alive": 0})
    check(st == 200 and o.get("done_reason") == "unload", f"keep_alive 0 without a prompt: {st} {o}")
    check(wait_unloaded(d, 5), "keep_alive 0: the model is unloaded within 5 s")
    st, o = d.request("POST", "/api/chat", {"model": "m", "messages": [], "keep_alive": 0})
    check(st == 200 and o.get("done_reason") == "unload" and expires_in(d) is None,
          f"keep_alive 0 while unloaded: not loaded for it: {st} {o}")
    # The next request loads it again, with the config's keep_alive.
    st, _ = d.request("POST", "/v1/completions", {"prompt": "hello", "max_tokens": 2})
    left = expires_in(d)
    check(st == 200 and left is not None and 290 < left <= 301, f"loaded again, the config's 300 s: {left}")
    # A short keep_alive: gone soon after the request ends, not before.
    st, _ = d.request("POST", "/api/generate", dict(ask, keep_alive="1.5s"))
    check(st == 200 and expires_in(d) is not None, "keep_alive 1.5s: still loaded right after the request")
    check(wait_unloaded(d, 6), "keep_alive 1.5s: unloaded within 6 s")
    st, o = d.request("POST", "/api/generate", ask)
    check(st == 200 and o.get("done") is True, f"a request after the unload loads the model again: {st}")


def run(tmp, model):
    auth_checks(tmp, model)
    d = Daemon(tmp, model, extra=["--no-builtin-tools"])
    try:
        listing_checks(d, model)
        generation_checks(d)
        generate_checks(d)
        error_checks(d)
        embed_checks(d)
        keep_alive_checks(d)
    finally:
        d.stop()
    thinking_checks(tmp, model)
    tool_checks(tmp)


def main():
    return e2e.run_on_tiny_model(run)


if __name__ == "__main__":
    sys.exit(main())

"""Random request bodies against the daemon's HTTP endpoints: never a 5xx, a hang or a crash.

Seeded random JSON (valid fields with wrong types and ranges, nested junk, huge numbers, empty and odd strings)
goes to Ollama's /api/chat, /api/generate, /api/embed, /api/embeddings and /api/show, llama-server's /completion,
/infill, /tokenize and /detokenize, and the OpenAI /v1/chat/completions, /v1/completions and /v1/embeddings.
Every answer must be a 2xx or a 4xx/501 whose body names the problem; afterwards the daemon must still answer a
normal request. ONELLM_FUZZ_SEED picks another sequence.
Exit 77 = skipped (no binary).
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_ref  # noqa: E402
import service_e2e_test as e2e  # noqa: E402
from service_e2e_test import Daemon, check  # noqa: E402

ROUNDS = 300
FIELDS = {
    "/api/chat": ["model", "messages", "tools", "format", "options", "stream", "think", "logprobs", "top_logprobs",
                  "keep_alive"],
    "/api/generate": ["model", "prompt", "suffix", "system", "raw", "context", "format", "options", "stream", "think",
                      "images", "template"],
    "/api/embed": ["model", "input", "truncate", "dimensions", "options"],
    "/api/embeddings": ["model", "prompt"],
    "/api/show": ["model", "name", "verbose"],
    "/completion": ["prompt", "n_predict", "temperature", "top_k", "top_p", "min_p", "seed", "stop", "stream",
                    "mirostat", "typical_p", "xtc_probability", "grammar", "json_schema"],
    "/infill": ["input_prefix", "input_suffix", "input_extra", "prompt", "n_predict", "temperature", "stream"],
    "/v1/completions": ["prompt", "suffix", "max_tokens", "temperature", "stream", "mirostat", "mirostat_tau",
                        "logprobs", "n", "grammar", "response_format", "prediction", "lookup_draft"],
    "/v1/chat/completions": ["messages", "tools", "tool_choice", "response_format", "n", "logprobs", "top_logprobs",
                             "stream", "stream_options", "max_tokens", "json_schema", "chat_template_kwargs",
                             "reasoning_format", "logit_bias", "seed", "parallel_tool_calls", "prediction",
                             "lookup_draft", "dry_multiplier", "dry_sequence_breakers", "top_n_sigma"],
    "/v1/embeddings": ["input", "encoding_format", "dimensions", "pooling", "normalize"],
    "/tokenize": ["content", "add_special", "parse_special"],
    "/detokenize": ["tokens"],
}
# Values each field takes in a well-formed request: drawn more often than junk, so that bodies get past the
# first check and exercise the later ones.
PLAUSIBLE = {
    "model": ["m", "m:latest", "other"], "format": ["json", {"type": "object"}, ""], "stream": [False],
    "think": [True, False, "low"], "logprobs": [True, False], "top_logprobs": [0, 2], "prompt": ["hi", "def f():"],
    "suffix": ["\n  return 1", ""], "system": ["Be brief."], "raw": [True, False], "context": [[1, 2, 3], []],
    "input": ["a cat", ["a", "b"]], "truncate": [True, False], "dimensions": [1, 4], "temperature": [0, 0.7],
    "top_k": [0, 5], "top_p": [0.9], "min_p": [0.05], "seed": [1, -1], "stop": [["\n"], "x"], "mirostat": [0, 1, 2],
    "typical_p": [0.9], "xtc_probability": [0.5], "input_prefix": ["def f(x):\n"], "input_suffix": ["\n"],
    "input_extra": [[{"filename": "a.py", "text": "x = 1"}]], "mirostat_tau": [3.0],
    "tools": [[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]],
    "tool_choice": ["auto", "none", "required", {"type": "function", "function": {"name": "f"}}],
    "response_format": [{"type": "json_object"}, {"type": "text"}], "n": [1, 2], "max_tokens": [4],
    "encoding_format": ["float", "base64"], "pooling": ["mean", "last"], "normalize": [True, False],
    "content": ["hello"], "tokens": [[1, 2, 3]], "reasoning_format": ["none", "auto"],
    "chat_template_kwargs": [{"enable_thinking": False}], "logit_bias": [{"1": -100}],
    "prediction": [{"type": "content", "content": "hello there"}, {"type": "content", "content": [{"type": "text",
                                                                                                  "text": "hi"}]}],
    "lookup_draft": [0, 4], "dry_multiplier": [0.8], "dry_sequence_breakers": [["\n"]], "top_n_sigma": [1.0],
}
OPTIONS = ["temperature", "top_k", "top_p", "min_p", "num_predict", "seed", "stop", "repeat_penalty", "mirostat",
           "mirostat_tau", "mirostat_eta", "typical_p", "tfs_z", "num_ctx", "repeat_last_n"]


def junk(r, depth=0):
    kinds = ["int", "big", "neg", "float", "str", "empty", "bool", "null"] + (["list", "dict"] if depth < 2 else [])
    k = r.choice(kinds)
    if k == "int":
        return r.randrange(0, 40)
    if k == "big":
        return r.choice([2 ** 31, 2 ** 63 - 1, 10 ** 30, 1e308])
    if k == "neg":
        return -r.randrange(1, 5)
    if k == "float":
        return r.choice([0.0, 0.5, 1.5, -0.1, 3.0])
    if k == "str":
        return r.choice(["hi", "json", "x" * 300, "é\u0000z", "<|fim_prefix|>", "{\"a\":", "true"])
    if k == "empty":
        return r.choice(["", [], {}])
    if k == "bool":
        return r.choice([True, False])
    if k == "null":
        return None
    if k == "list":
        return [junk(r, depth + 1) for _ in range(r.randrange(4))]
    return {r.choice(["role", "content", "type", "function", "name", "text", "filename", "tool_calls"]):
            junk(r, depth + 1) for _ in range(r.randrange(4))}


def message(r):
    m = {"role": r.choice(["user", "user", "assistant", "system", "tool", "bot"]),
         "content": "hi" if r.random() < 0.7 else junk(r)}
    if r.random() < 0.2:
        m["tool_calls"] = [{"function": {"name": "f", "arguments": junk(r)}}]
    if r.random() < 0.1:
        m["images"] = junk(r)
    return m


def body_for(r, path):
    b = {}
    for f in FIELDS[path]:
        if r.random() < 0.5:
            continue
        if f == "messages" and r.random() < 0.7:
            b[f] = [message(r) for _ in range(r.randrange(1, 4))]
        elif f == "options" and r.random() < 0.7:
            b[f] = {o: r.choice(PLAUSIBLE.get(o, [0])) if r.random() < 0.6 else junk(r)
                    for o in r.sample(OPTIONS, r.randrange(1, 5))}
        elif f in PLAUSIBLE and r.random() < 0.6:
            b[f] = r.choice(PLAUSIBLE[f])
        else:
            b[f] = junk(r)
    if path in ("/api/chat", "/v1/chat/completions") and "messages" not in b:
        b["messages"] = [message(r)]
    if path in ("/api/generate", "/completion", "/v1/completions") and "prompt" not in b:
        b["prompt"] = "hi"
    for k in ("num_predict", "n_predict", "max_tokens"):  # keep the replies short
        if isinstance(b.get("options"), dict):
            b["options"]["num_predict"] = 4
        b.setdefault(k, 4) if k in FIELDS[path] else None
    return b


def run(tmp, model):
    fim = os.path.join(tmp, "fim.gguf")
    gguf_ref.rewrite_gguf(model, fim, [("tokenizer.ggml.fim_pre_token_id", gguf_ref.UINT32, 300),
                                       ("tokenizer.ggml.fim_suf_token_id", gguf_ref.UINT32, 301),
                                       ("tokenizer.ggml.fim_mid_token_id", gguf_ref.UINT32, 302)])
    d = Daemon(tmp, fim)
    r = random.Random(int(os.environ.get("ONELLM_FUZZ_SEED", "1")))
    statuses = {}
    # Bodies that once escaped the field readers as a 500 (a JSON type error).
    odd_part = [{"role": "user", "content": [{"type": False, "text": None}]}]
    regressions = [("/v1/chat/completions", {"messages": odd_part}), ("/api/chat", {"messages": odd_part}),
                   ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": 5}]})]
    try:
        for path, body in regressions:
            st, answer = d.request("POST", path, body)
            check(st == 400, f"{path} {body}: 400, got {st} {answer}")
        for i in range(ROUNDS):
            path = r.choice(sorted(FIELDS))
            body = body_for(r, path)
            st, answer = d.request("POST", path, body)
            statuses[st] = statuses.get(st, 0) + 1
            ok = 200 <= st < 300 or (400 <= st < 500 and st != 408) or st == 501
            named = True
            if 400 <= st:
                err = answer.get("error") if isinstance(answer, dict) else None
                named = isinstance(err, str) and err or isinstance(err, dict) and err.get("message")
            check(ok and named, f"#{i} {path} {json.dumps(body)[:300]} -> {st} {str(answer)[:300]}")
        check(d.proc.poll() is None, "the daemon is still running")
        st, o = d.request("POST", "/api/chat", {"model": "m", "stream": False, "options": {"num_predict": 2},
                                                "messages": [{"role": "user", "content": "hi"}]})
        check(st == 200 and o["done"] is True, f"and still answers: {st} {o}")
        print("statuses:", dict(sorted(statuses.items())))
        check(statuses.get(200, 0) > 20 and sum(v for k, v in statuses.items() if 400 <= k < 500) > 20,
              f"both accepted and refused bodies were drawn: {statuses}")
    finally:
        d.stop()


def main():
    return e2e.run_on_tiny_model(run)


if __name__ == "__main__":
    sys.exit(main())

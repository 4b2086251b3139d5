"""End-to-end: fill-in-the-middle prompts for code models, on every path that takes one, against the token ids.

A random qwen2 model is given FIM tokens through the GGUF keys (tokenizer.ggml.fim_pre/suf/mid_token_id). Its
greedy middle must then be the text completion of [PRE] prefix [SUF] suffix [MID] given as token ids, whether
asked through llama-server's /infill, the "suffix" of /v1/completions, the "suffix" of Ollama's /api/generate or
`onellm run --suffix`. Also llama-server's native /completion (whole and streamed) against /v1/completions,
other files before the FIM prefix (input_extra), and the clear refusal of a model without FIM tokens.
Exit 77 = skipped (no binary).
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_ref  # noqa: E402
import service_e2e_test as e2e  # noqa: E402
from service_e2e_test import Daemon, check, sse_events  # noqa: E402

PRE, SUF, MID = 300, 301, 302
PREFIX, SUFFIX = "def add(a, b):\n    ", "\n    return c\n"


def ids_of(d, text):
    st, t = d.request("POST", "/tokenize", {"content": text})
    return t["tokens"]


def run(tmp, model):
    fim = os.path.join(tmp, "fim.gguf")
    gguf_ref.rewrite_gguf(model, fim, [("tokenizer.ggml.fim_pre_token_id", gguf_ref.UINT32, PRE),
                                       ("tokenizer.ggml.fim_suf_token_id", gguf_ref.UINT32, SUF),
                                       ("tokenizer.ggml.fim_mid_token_id", gguf_ref.UINT32, MID)])
    d = Daemon(tmp, fim)
    try:
        want_ids = [PRE] + ids_of(d, PREFIX) + [SUF] + ids_of(d, SUFFIX) + [MID]
        st, ref = d.request("POST", "/v1/completions", {"prompt": want_ids, "max_tokens": 8, "temperature": 0,
                                                        "ignore_eos": True})
        want = ref["choices"][0]["text"] if st == 200 else None
        check(st == 200 and ref["usage"]["prompt_tokens"] == len(want_ids), f"reference completion: {ref}")
        st, got = d.request("POST", "/infill", {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": 8,
                                                "temperature": 0, "ignore_eos": True})
        check(st == 200 and got["content"] == want and got["tokens_evaluated"] == len(want_ids)
              and got["tokens_predicted"] == 8 and got["stop"] is True and got["stop_type"] == "limit",
              f"/infill = the ids' completion: {got} vs {want!r}")
        st, oai = d.request("POST", "/v1/completions", {"prompt": PREFIX, "suffix": SUFFIX, "max_tokens": 8,
                                                        "temperature": 0, "ignore_eos": True})
        check(st == 200 and oai["choices"][0]["text"] == want and oai["usage"]["prompt_tokens"] == len(want_ids),
              f"/v1/completions suffix: {oai}")
        st, oll = d.request("POST", "/api/generate", {"model": "m", "prompt": PREFIX, "suffix": SUFFIX,
                                                      "stream": False, "options": {"temperature": 0, "num_predict": 8,
                                                                                   "repeat_penalty": 1}})
        st2, ref_eos = d.request("POST", "/v1/completions", {"prompt": want_ids, "max_tokens": 8, "temperature": 0})
        check(st == 200 and oll["response"] == ref_eos["choices"][0]["text"] and oll["context"][:len(want_ids)] ==
              want_ids and oll["prompt_eval_count"] == len(want_ids) and "thinking" not in oll,
              f"/api/generate suffix (Ollama has no ignore_eos): {oll}")
        cli = subprocess.run([e2e.BIN, "run", "-m", fim, "-p", PREFIX, "--suffix", SUFFIX, "-n", "8", "--temp", "0",
                              "--ignore-eos", "--no-escape"], capture_output=True, text=True, timeout=120)
        check(cli.returncode == 0 and cli.stdout == want, f"onellm run --suffix: {cli.stdout!r} {cli.stderr[-300:]}")
        # The start of the middle, after MID.
        st, got = d.request("POST", "/infill", {"input_prefix": PREFIX, "input_suffix": SUFFIX, "prompt": "c =",
                                                "n_predict": 4, "temperature": 0, "ignore_eos": True})
        st2, ref = d.request("POST", "/v1/completions", {"prompt": want_ids + ids_of(d, "c ="), "max_tokens": 4,
                                                         "temperature": 0, "ignore_eos": True})
        check(st == 200 and got["content"] == ref["choices"][0]["text"], f"/infill prompt after MID: {got} {ref}")
        # Other files go before the FIM prefix (this vocabulary has no REP/SEP: a separator line).
        extra = [{"filename": "util.py", "text": "def sub(a, b):\n    return a - b\n"}]
        st, got = d.request("POST", "/infill", {"input_prefix": PREFIX, "input_suffix": SUFFIX, "input_extra": extra,
                                                "n_predict": 4, "temperature": 0, "ignore_eos": True})
        sep = ids_of(d, "\n\n--- util.py ---\n\n") + ids_of(d, extra[0]["text"])
        st2, ref = d.request("POST", "/v1/completions", {"prompt": sep + want_ids, "max_tokens": 4, "temperature": 0,
                                                         "ignore_eos": True})
        check(st == 200 and got["tokens_evaluated"] == len(sep) + len(want_ids)
              and got["content"] == ref["choices"][0]["text"], f"input_extra: {got} vs {ref}")
        # llama-server's /completion: the same text as /v1/completions, streamed or not.
        body = {"prompt": "hello world", "n_predict": 6, "temperature": 0, "ignore_eos": True}
        st, nat = d.request("POST", "/completion", body)
        st2, ref = d.request("POST", "/v1/completions", {"prompt": "hello world", "max_tokens": 6, "temperature": 0,
                                                         "ignore_eos": True})
        check(st == 200 and nat["content"] == ref["choices"][0]["text"] and nat["tokens_predicted"] == 6
              and nat["timings"]["predicted_n"] == 6, f"/completion: {nat} vs {ref}")
        conn, resp = d.request("POST", "/completion", dict(body, stream=True), stream=True)
        events = []
        for line in resp:
            line = line.decode().strip()
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1].get("stop"):
                    break
        conn.close()
        check(events and "".join(e["content"] for e in events) == nat["content"] and events[-1]["stop"] is True
              and all(e["stop"] is False for e in events[:-1]), f"/completion streamed: {events}")
        st, e = d.request("POST", "/infill", {"input_prefix": "x", "input_extra": "nope"})
        check(st == 400 and e["error"]["param"] == "input_extra", f"bad input_extra: {e}")
        st, e = d.request("POST", "/v1/completions", {"prompt": [1, 2], "suffix": "x"})
        check(st == 400 and e["error"]["param"] == "suffix", f"suffix with token ids: {e}")
    finally:
        d.stop()
    # A model without FIM tokens: a clear refusal on every path.
    d = Daemon(tmp, model)
    try:
        st, e = d.request("POST", "/infill", {"input_prefix": PREFIX, "input_suffix": SUFFIX})
        check(st == 400 and "fill-in-the-middle" in e["error"]["message"], f"/infill without FIM tokens: {e}")
        st, e = d.request("POST", "/v1/completions", {"prompt": PREFIX, "suffix": SUFFIX})
        check(st == 400 and e["error"]["param"] == "suffix", f"suffix without FIM tokens: {e}")
        st, e = d.request("POST", "/api/generate", {"model": "m", "prompt": PREFIX, "suffix": SUFFIX})
        check(st == 400 and "fill-in-the-middle" in e.get("error", ""), f"Ollama suffix without FIM tokens: {e}")
    finally:
        d.stop()
    cli = subprocess.run([e2e.BIN, "run", "-m", model, "-p", PREFIX, "--suffix", SUFFIX, "-n", "4"],
                         capture_output=True, text=True, timeout=120)
    check(cli.returncode == 1 and "fill-in-the-middle" in cli.stderr, f"run --suffix without FIM: {cli.stderr}")


def main():
    return e2e.run_on_tiny_model(run)


if __name__ == "__main__":
    sys.exit(main())

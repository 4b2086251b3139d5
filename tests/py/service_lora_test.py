"""End-to-end test of LoRA adapters in the real daemon (`serve --lora NAME=FILE`): a request or session
that names an adapter answers what `onellm run --lora FILE` answers, the base model and another
adapter answer differently in the same daemon, a session keeps its adapter across a restart and
restores its own KV chunks (never the base model's, never another adapter's), a daemon started
without the session's adapter refuses it by name, and bad names are clear errors.
The adapters are random-weight LoRA GGUFs written here with the independent Python GGUF writer.
Exit 77 = skipped (no binary)."""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_ref import FLOAT32, STRING, TYPE_IDS, GgufFile, write_gguf  # noqa: E402
from service_e2e_test import Daemon, check  # noqa: E402
import service_e2e_test as base  # noqa: E402

BIN = os.environ.get("ONELLM_BIN", "")
PROMPT = "the little dog ran to the park"
INSTRUCTIONS = " ".join(f"Rule {i}: answer about the little dog and the red ball in the park." for i in range(5))


def write_adapter(model_path, out, seed, kinds):
    """A rank-4 LoRA adapter with random A and B for every layer's `kinds` matrices."""
    m = GgufFile(model_path)
    rng = np.random.default_rng(seed)
    tensors = []
    for name, t in sorted(m.tensors.items()):
        if not (name.startswith("blk.") and name.endswith(".weight") and name.split(".")[2] in kinds):
            continue
        cols, rows = t.dims
        a = rng.uniform(-0.3, 0.3, size=(4, cols)).astype(np.float32)
        b = rng.uniform(-0.3, 0.3, size=(rows, 4)).astype(np.float32)
        tensors.append((name + ".lora_a", [cols, 4], TYPE_IDS["F32"], a.tobytes()))
        tensors.append((name + ".lora_b", [4, rows], TYPE_IDS["F32"], b.tobytes()))
    kvs = [("general.architecture", STRING, m.get("general.architecture")), ("general.type", STRING, "adapter"),
           ("adapter.type", STRING, "lora"), ("adapter.lora.alpha", FLOAT32, 8.0)]
    write_gguf(out, kvs, tensors)
    return out


def run_cli(model, *extra):
    r = subprocess.run([BIN, "run", "-m", model, *extra, "-p", PROMPT, "-n", "12", "--temp", "0", "--ignore-eos",
                        "--json"], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return json.loads(r.stdout)["text"]


def complete(d, model=None, adapter=None):
    body = {"prompt": PROMPT, "max_tokens": 12, "temperature": 0, "ignore_eos": True}
    if model is not None:
        body["model"] = model
    if adapter is not None:
        body["adapter"] = adapter
    return d.request("POST", "/v1/completions", body)


def say(d, sid, content):
    msg = {"role": "user", "content": content, "max_tokens": 10, "temperature": 0, "ignore_eos": True}
    return d.request("POST", f"/v1/sessions/{sid}/messages", msg)


def run(tmp, model):
    style = write_adapter(model, os.path.join(tmp, "style.gguf"), 1, {"attn_k", "attn_v", "ffn_down"})
    terse = write_adapter(model, os.path.join(tmp, "terse.gguf"), 2, {"attn_q", "ffn_up"})
    want_base, want_style, want_terse = run_cli(model), run_cli(model, "--lora", style), run_cli(model, "--lora", terse)
    check(len({want_base, want_style, want_terse}) == 3,
          f"the adapters change the reply, so the checks below can fail: {want_base!r} {want_style!r} {want_terse!r}")
    state = os.path.join(tmp, "state")
    # Loading chunks is forced: on a tiny model "auto" may rightly find recomputing cheaper.
    adapters = ["--lora", "style=" + style, "--lora", "terse=" + terse, "--kv-restore", "load"]

    d = Daemon(tmp, model, None, state, extra=adapters)
    try:
        st, models = d.request("GET", "/v1/models")
        ids = [m["id"] for m in models["data"]]
        check(st == 200 and "style" in ids and "terse" in ids and len(ids) == 3, f"adapters listed as models: {ids}")
        # Stateless requests, alternated so that scratch sequences see every switch.
        for _ in range(2):
            for model_field, want in (("style", want_style), (None, want_base), ("terse", want_terse),
                                      ("any-name", want_base)):
                st, r = complete(d, model=model_field)
                check(st == 200 and r["choices"][0]["text"] == want,
                      f"model={model_field!r} answers what run does: {r} vs {want!r}")
        st, r = complete(d, adapter="style")
        check(st == 200 and r["choices"][0]["text"] == want_style and r["model"] == "style", f"adapter field: {r}")
        st, r = complete(d, adapter="nope")
        check(st == 400 and r["error"]["param"] == "adapter" and "nope" in r["error"]["message"]
              and "style" in r["error"]["message"], f"unknown adapter named, served ones listed: {r}")

        # Sessions keep their adapter; its chunks are its own.
        st, s_style = d.request("POST", "/v1/sessions", {"instructions": INSTRUCTIONS, "adapter": "style"})
        check(st == 200 and s_style["adapter"] == "style", f"session with an adapter: {s_style}")
        st, bad = d.request("POST", "/v1/sessions", {"adapter": "missing"})
        check(st == 400 and "missing" in bad["error"]["message"], f"session with an unknown adapter refused: {bad}")
        first = say(d, s_style["id"], "hello there")[1]
        st, s_base = d.request("POST", "/v1/sessions", {"instructions": INSTRUCTIONS})
        base_first = say(d, s_base["id"], "hello there")[1]
        check(base_first["usage"]["prompt_tokens_restored"] == 0,
              f"the base model never restores an adapter's chunks: {base_first['usage']}")
        check(base_first["content"] != first["content"], "the session's adapter changes its reply")
        st, s_terse = d.request("POST", "/v1/sessions", {"instructions": INSTRUCTIONS, "adapter": "terse"})
        terse_first = say(d, s_terse["id"], "hello there")[1]
        check(terse_first["usage"]["prompt_tokens_restored"] == 0, "nor does another adapter")
        st, s_again = d.request("POST", "/v1/sessions", {"instructions": INSTRUCTIONS, "adapter": "style"})
        again_first = say(d, s_again["id"], "hello there")[1]
        check(again_first["usage"]["prompt_tokens_restored"] >= 32 and again_first["content"] == first["content"],
              f"a session with the same adapter shares its prefix chunks: {again_first}")
        # The reference for the second turn: the same conversation, stateless, with the adapter.
        messages = [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": "hello there"},
                    {"role": "assistant", "content": first["content"]}, {"role": "user", "content": "and then?"}]
        st, ref = d.request("POST", "/v1/chat/completions", {"model": "style", "messages": messages, "max_tokens": 10,
                                                             "temperature": 0, "ignore_eos": True})
        want_second = ref["choices"][0]["message"]["content"]
        # The C client library through `onellm ask --adapter`.
        st, ref = d.request("POST", "/v1/chat/completions", {"model": "terse", "max_tokens": 8, "temperature": 0,
                                                             "messages": [{"role": "user", "content": "hi"}]})
        r = subprocess.run([BIN, "ask", "--url", f"http://127.0.0.1:{d.port}", "--adapter", "terse", "-n", "8",
                            "--temp", "0", "hi"], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and r.stdout[:-1] == ref["choices"][0]["message"]["content"],
              f"ask --adapter answers as the adapter: {r.stdout!r} {r.stderr[-300:]} vs {ref}")
        r = subprocess.run([BIN, "ask", "--url", f"http://127.0.0.1:{d.port}", "--adapter", "terse", "--session",
                            "from-ask", "-n", "3", "hi"], capture_output=True, text=True, timeout=60)
        st, got = d.request("GET", "/v1/sessions/from-ask")
        check(r.returncode == 0 and got.get("adapter") == "terse", f"ask --session --adapter opens it so: {got}")
        st, again = d.request("POST", "/v1/sessions", {"name": "from-ask", "adapter": "terse"})
        check(st == 200 and again["id"] == got["id"], "opening a named session again finds it")
        st, other = d.request("POST", "/v1/sessions", {"name": "from-ask", "adapter": "style"})
        check(st == 409 and other["error"]["param"] == "adapter" and "terse" in other["error"]["message"],
              f"but not with another adapter: {st} {other}")
        st, status = d.request("GET", "/v1/status")
        check([a["name"] for a in status["adapters"]] == ["style", "terse"], f"status lists adapters: {status}")
    finally:
        code = d.stop()
    check(code == 0, "daemon stopped cleanly")

    d = Daemon(tmp, model, None, state, extra=adapters)
    try:
        st, second = say(d, s_style["id"], "and then?")
        check(st == 200 and second["usage"]["prompt_tokens_restored"] >= 64,
              f"after a restart the session's chunks are restored: {second}")
        check(second["content"] == want_second,
              f"and it answers as the stateless request with its adapter: {second['content']!r} vs {want_second!r}")
        st, got = d.request("GET", f"/v1/sessions/{s_style['id']}")
        check(got["adapter"] == "style", "the adapter is stored with the session")
    finally:
        d.stop()

    d = Daemon(tmp, model, None, state, extra=["--lora", "terse=" + terse])
    try:
        st, r = say(d, s_style["id"], "still there?")
        check(st == 409 and r["error"]["code"] == "ADAPTER_UNAVAILABLE" and "style" in r["error"]["message"],
              f"a session whose adapter is not served is refused by name: {st} {r}")
        st, r = say(d, s_base["id"], "still there?")
        check(st == 200, "base sessions still work")
    finally:
        d.stop()

    for bad_args, needle in ((["--lora", "style"], "NAME=ADAPTER"), (["--lora", "a b=" + style], "a b"),
                             (["--lora", "x=" + model], "not a LoRA adapter"),
                             (["--lora", "x=" + style, "--lora", "x=" + terse], "twice"),
                             (["--kv-restore", "sometimes"], "sometimes")):
        r = subprocess.run([BIN, "serve", "-m", model, "--no-socket", "--http", "127.0.0.1:0", "--state-dir",
                            os.path.join(tmp, "bad"), *bad_args], capture_output=True, timeout=120)
        err = r.stderr.decode()
        check(r.returncode != 0 and needle in err, f"serve {bad_args[-1]!r} refused naming {needle!r}: {err[-400:]}")


if __name__ == "__main__":
    sys.exit(base.run_on_tiny_model(run))

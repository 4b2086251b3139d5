"""End-to-end checks of the onellm command line against llama.cpp's golden outputs.

Runs the real binary ($ONELLM_BIN) on ../shared models: greedy text of `run`, the `--json`
form, `tokenize` against the tokenizer goldens, `logits` against the kv_f16 goldens with the
default-path tolerances of golden/README.md, and bad input (truncated file, unknown type name).
Exit 77 = skipped (no shared data or no binary).
"""
import json
import os
import subprocess
import sys
import tempfile

BIN = os.environ.get("ONELLM_BIN", "")
SHARED = os.environ.get("ONELLM_SHARED_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
GOLDEN = os.path.join(SHARED, "golden")
MODELS = os.path.join(SHARED, "models")

passed = 0
failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def onellm(*args, stdin=None):
    return subprocess.run([BIN, *args], input=stdin, capture_output=True, timeout=300)


def load(rel):
    with open(os.path.join(GOLDEN, rel), encoding="utf-8") as f:
        return json.load(f)


def greedy_prefix(want, margins, got, min_margin):
    """Number of leading tokens that must match: up to the first step with a small margin."""
    n = 0
    for i, t in enumerate(want):
        if margins[i] <= min_margin:
            break
        n += 1
    return n


def test_run_greedy_text():
    for p, prompt in (("p1", "Once upon a time"), ("p2", "The little dog")):
        g = load(f"logits/kv_f32/stories260K.{p}.json")
        r = onellm("run", "-m", os.path.join(MODELS, "stories260K.gguf"), "-p", prompt, "-n", "64", "--temp", "0",
                   "--ignore-eos")
        check(r.returncode == 0, f"run {p} exit code {r.returncode}: {r.stderr.decode()[-300:]}")
        check(r.stdout.decode("utf-8", "replace") == g["greedy"]["text"],
              f"run {p} greedy text\n got: {r.stdout!r}\nwant: {g['greedy']['text']!r}")
    with open(os.path.join(GOLDEN, "verification", "llama-cli.stories260K.once_upon_a_time.stdout.txt"),
              encoding="utf-8") as f:
        cli_text = f.read()
    r = onellm("run", "-m", os.path.join(MODELS, "stories260K.gguf"), "-p", "Once upon a time", "-n", "64",
               "--temp", "0")
    check(cli_text.strip() == (" Once upon a time" + r.stdout.decode()).strip(), "matches llama-cli's own output")


def test_run_json():
    g = load("logits/kv_f32/tiny-qwen2-F32.p2.json")
    r = onellm("run", "-m", os.path.join(MODELS, "tiny-qwen2-F32.gguf"), "-p", g["prompt"], "-n", "32", "--temp",
               "0", "--json", "--ignore-eos", "--no-escape")
    check(r.returncode == 0, f"run --json exit {r.returncode}: {r.stderr.decode()[-300:]}")
    out = json.loads(r.stdout)
    check(out["prompt_tokens"] == g["tokens"], "prompt tokens equal golden")
    n = greedy_prefix(g["greedy"]["tokens"], g["greedy"]["margins"], out["tokens"], 1e-2)
    check(out["tokens"][:n] == g["greedy"]["tokens"][:n], f"greedy tokens equal golden for the first {n}")
    check(set(out) == {"prompt_tokens", "tokens", "text"}, "json fields")


def test_tokenize():
    for name, model in (("ggml-vocab-gpt-2.corpus1.json", "vocab/ggml-vocab-gpt-2.gguf"),
                        ("ggml-vocab-llama-spm.corpus1.json", "vocab/ggml-vocab-llama-spm.gguf"),
                        ("tiny-qwen2-F32.pre-qwen2.corpus1.json", "tiny-qwen2-F32.gguf")):
        g = load("tokenizer/" + name)
        lines = [e for e in g["lines"] if "\n" not in e["text"]] if "lines" in g else None
        if lines is None:
            entries = g.get("entries") or g.get("results") or []
            lines = [e for e in entries if "\n" not in e["text"]]
        text = "\n".join(e["text"] for e in lines) + "\n"
        r = onellm("tokenize", "-m", os.path.join(MODELS, model), stdin=text.encode())
        check(r.returncode == 0, f"tokenize {name}: {r.stderr.decode()[-300:]}")
        got = [json.loads(l) for l in r.stdout.decode().splitlines()]
        bad = [e["line"] for e, ids in zip(lines, got) if ids != e["ids"]]
        check(len(got) == len(lines) and not bad, f"tokenize {name}: {len(bad)} lines differ, first {bad[:5]}")


def test_logits_default_path_tolerance():
    for model, p, max_abs in (("stories260K", "p1", 0.03), ("tiny-qwen2-F32", "p1", 0.03),
                              ("tiny-qwen2-F16", "p2", 0.03), ("tiny-qwen2-Q8_0", "p1", 0.5),
                              ("tiny-qwen2-Q4_0", "p2", 0.5)):
        g = load(f"logits/kv_f16/{model}.{p}.json")
        r = onellm("logits", "-m", os.path.join(MODELS, model + ".gguf"), "--tokens",
                   ",".join(map(str, g["tokens"])), "--top", "0")
        check(r.returncode == 0, f"logits {model}: {r.stderr.decode()[-300:]}")
        out = json.loads(r.stdout)
        worst, sq, n = 0.0, 0.0, 0
        for row, top in zip(out["positions"], g["top"]):
            full = {i: v for i, v in row["top"]}
            for i, v in zip(top["ids"], top["logits"]):
                d = abs(full[i] - v)
                worst, sq, n = max(worst, d), sq + d * d, n + 1
        rms = (sq / n) ** 0.5
        check(worst <= max_abs, f"logits {model}.{p} vs kv_f16: max {worst:.4f} > {max_abs}")
        if max_abs >= 0.5:
            check(rms <= 0.1, f"logits {model}.{p} vs kv_f16: rms {rms:.4f} > 0.1")


def test_bad_input():
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(MODELS, "stories260K.gguf")
        cut = os.path.join(d, "cut.gguf")
        with open(src, "rb") as f, open(cut, "wb") as o:
            o.write(f.read()[: 300000])
        r = onellm("run", "-m", cut, "-p", "hi", "-n", "4")
        check(r.returncode == 1 and b"truncated" in r.stderr, f"truncated model: {r.returncode} {r.stderr[-300:]}")
        r = onellm("run", "-m", os.path.join(d, "missing.gguf"), "-p", "hi")
        check(r.returncode == 1 and b"missing.gguf" in r.stderr, "missing model file named")
        r = onellm("make-tiny-model", "--type", "Q9_9", "-o", os.path.join(d, "x.gguf"))
        check(r.returncode == 1 and b"Q9_9" in r.stderr, "unknown type name")
        r = onellm("run", "-m", src, "-p", "hi", "--bogus")
        check(r.returncode == 1 and b"--bogus" in r.stderr, "unknown option named")
        r = onellm("run", "-m", src, "-p", "word " * 200, "-n", "1")
        check(r.returncode == 1 and b"context" in r.stderr, f"prompt longer than context: {r.stderr[-300:]}")
        r = onellm("run", "-m", src, "-p", "", "-n", "4", "--temp", "0")
        check(r.returncode == 0, "empty prompt continues from BOS")


def main():
    if not BIN or not os.path.exists(BIN):
        print("skip: ONELLM_BIN not set")
        return 77
    if not os.path.exists(os.path.join(GOLDEN, "README.md")):
        print(f"skip: no shared data at {SHARED}")
        return 77
    for t in (test_run_greedy_text, test_run_json, test_tokenize, test_logits_default_path_tolerance, test_bad_input):
        try:
            t()
        except Exception as e:  # a crash in one check is a failure, not an abort of the rest
            check(False, f"{t.__name__} raised {type(e).__name__}: {e}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The independent NumPy reference (forward_ref.py) checked two ways:
1. against llama.cpp's exact-F32 goldens (kv_f32 / dequant_f32) — this validates the reference;
2. against the C++ engine (`onellm logits --exact`) on random tiny models of every architecture and
   tensor type that `onellm make-tiny-model` writes — quantized types are dequantized by the
   reference and computed in float64, so the C++ exact path must agree to 1e-4 relative.
Exit 77 = skipped."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward_ref import Reference  # noqa: E402

BIN = os.environ.get("ONELLM_BIN", "")
SHARED = os.environ.get("ONELLM_SHARED_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def against_golden():
    gold = os.path.join(SHARED, "golden", "logits")
    cases = [("stories260K", "kv_f32", p) for p in ("p1", "p2", "p3")]
    cases += [("tiny-qwen2-F32", "kv_f32", p) for p in ("p1", "p2")]
    cases += [(f"tiny-qwen2-{t}", "dequant_f32", p) for t in ("F16", "Q8_0", "Q4_0") for p in ("p1", "p2")]
    refs = {}
    for model, kind, p in cases:
        with open(os.path.join(gold, kind, f"{model}.{p}.json")) as f:
            g = json.load(f)
        ref = refs.setdefault(model, Reference(os.path.join(SHARED, "models", model + ".gguf")))
        lg = ref.logits(g["tokens"])
        worst = max(abs(lg[r["pos"], i] - v) for r in g["top"] for i, v in zip(r["ids"], r["logits"]))
        check(worst <= 1e-3, f"reference vs {kind}/{model}.{p}: max diff {worst:.2e}")
        # greedy continuation while the golden margin is > 1e-2
        toks = list(g["tokens"])
        n_ok = 0
        for t, margin in zip(g["greedy"]["tokens"], g["greedy"]["margins"]):
            if margin <= 1e-2 or n_ok >= 8:
                break
            got = int(np.argmax(ref.logits(toks)[-1]))
            check(got == t, f"reference greedy {model}.{p} step {n_ok}: {got} != {t}")
            toks.append(t)
            n_ok += 1
        print(f"reference vs {kind}/{model}.{p}: max |diff| {worst:.2e}, {n_ok} greedy steps")


def against_cpp():
    if not BIN or not os.path.exists(BIN):
        print("skip C++ comparison: ONELLM_BIN not set")
        return
    types = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"]
    variants = [(arch, t, []) for arch in ("llama", "qwen2", "qwen3") for t in types]
    variants += [("llama", "Q8_0", ["--rope-freqs"]), ("llama", "F32", ["--tied", "--n-head-kv", "1"]),
                 ("qwen3", "F16", ["--head-dim", "128"])]
    tokens = [1, 17, 42, 5, 99, 3, 250, 7, 64]
    with tempfile.TemporaryDirectory() as d:
        for i, (arch, t, extra) in enumerate(variants):
            path = os.path.join(d, f"m{i}.gguf")
            r = subprocess.run([BIN, "make-tiny-model", "--arch", arch, "--type", t, "--seed", str(i + 1),
                                "--n-layer", "2", "-o", path, *extra], capture_output=True)
            if r.returncode != 0:
                check(False, f"make-tiny-model {arch} {t}: {r.stderr.decode()[-300:]}")
                continue
            r = subprocess.run([BIN, "logits", "-m", path, "--tokens", ",".join(map(str, tokens)), "--top", "0",
                                "--exact"], capture_output=True)
            if r.returncode != 0:
                check(False, f"logits {arch} {t}: {r.stderr.decode()[-300:]}")
                continue
            got = json.loads(r.stdout)
            ref = Reference(path).logits(tokens)
            worst = 0.0
            for row in got["positions"]:
                for tid, v in row["top"]:
                    b = ref[row["pos"], tid]
                    worst = max(worst, abs(v - b) / max(1.0, abs(b)))
            check(worst <= 1e-4, f"C++ vs reference {arch} {t} {' '.join(extra)}: max rel diff {worst:.2e}")
            print(f"C++ vs reference {arch:6s} {t:5s} {' '.join(extra):24s} max rel diff {worst:.2e}")


def main():
    if not os.path.exists(os.path.join(SHARED, "golden", "README.md")):
        print(f"skip: no shared data at {SHARED}")
        return 77
    for fn in (against_golden, against_cpp):
        try:
            fn()
        except Exception as e:
            check(False, f"{fn.__name__} raised {type(e).__name__}: {e}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Cross-checks the C++ engine (`onellm logits --exact`) against the NumPy reference.

For every architecture x weight type that `onellm make-tiny-model` writes (plus
a few shape variants: Llama 3 rope_freqs, tied head, MQA, head_dim != n_embd /
n_head), the C++ logits of every position and every vocabulary id must equal
the reference's to 1e-4 relative: |cpp - ref| <= 1e-4 * max(1, |ref|).
Quantized weights are de-quantized by the reference (gguf_ref.py) and then
computed in float64, which is what the C++ exact path computes in F32.

Exit 0 = all passed, 1 = a failure, 77 = no onellm binary / subcommands (skip).
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import forward_ref  # noqa: E402

REL_TOL = 1e-4
ARCHS = ("llama", "qwen2", "qwen3")
TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K")
# (arch, type, extra make-tiny-model options): shapes the plain models do not cover.
EXTRA_VARIANTS = [
    ("llama", "F32", ["--rope-freqs"]),
    ("llama", "Q6_K", ["--rope-freqs"]),
    ("llama", "F32", ["--tied", "--n-head-kv", "1"]),
    ("qwen2", "F16", ["--tied"]),
    ("qwen3", "F32", ["--head-dim", "128"]),
]
TOKENS = [1, 17, 42, 5, 99, 3, 250, 7, 64, 12, 200, 33]
TIMEOUT = 60


class Skip(Exception):
    pass


def run(args):
    return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)


def unsupported(r):
    return r.returncode == 2 or "unknown command" in r.stderr


def make_model(binary, path, arch, wtype, seed, extra):
    r = run([binary, "make-tiny-model", "--arch", arch, "--type", wtype, "--seed", str(seed),
             "--n-layer", "2", "-o", path, *extra])
    if r.returncode != 0:
        if unsupported(r) and not extra:
            raise Skip(f"'{binary} make-tiny-model' not available: {r.stderr.strip()[:200]}")
        raise RuntimeError(f"make-tiny-model {arch} {wtype} {' '.join(extra)} failed "
                           f"(exit {r.returncode}): {r.stderr.strip()[-300:]}")


def cpp_logits(binary, path, tokens=None, prompt=None):
    """The C++ JSON: {"tokens": [...], "positions": [{"pos", "top": [[id, logit], ...]}]}, all ids."""
    src = ["--tokens", ",".join(map(str, tokens))] if tokens is not None else ["-p", prompt]
    base = [binary, "logits", "-m", path, *src, "--top", "0"]
    r = run(base + ["--exact"])
    if r.returncode == 2 and "--exact" in r.stderr:  # an engine without the flag: its only path
        r = run(base)
    if r.returncode != 0:
        if unsupported(r):
            raise Skip(f"'{binary} logits' not available: {r.stderr.strip()[:200]}")
        raise RuntimeError(f"logits on {path} failed (exit {r.returncode}): {r.stderr.strip()[-300:]}")
    return json.loads(r.stdout)


def compare(got, ref_logits, tokens, what):
    """Max relative diff over all printed logits; raises AssertionError on a mismatch of shape/ids."""
    if got.get("tokens") != list(tokens):
        raise AssertionError(f"{what}: C++ echoed tokens {got.get('tokens')} for {list(tokens)}")
    positions = got["positions"]
    if [p["pos"] for p in positions] != list(range(len(tokens))):
        raise AssertionError(f"{what}: positions {[p['pos'] for p in positions]}")
    worst, where = 0.0, None
    for p in positions:
        row = ref_logits[p["pos"]]
        top = p["top"]
        if len(top) != row.size or len({t[0] for t in top}) != row.size:
            raise AssertionError(f"{what}: pos {p['pos']}: {len(top)} logits printed, n_vocab {row.size}")
        ids = np.array([t[0] for t in top])
        vals = np.array([t[1] for t in top], dtype=np.float64)
        rel = np.abs(vals - row[ids]) / np.maximum(1.0, np.abs(row[ids]))
        i = int(rel.argmax())
        if rel[i] > worst:
            worst, where = float(rel[i]), (p["pos"], int(ids[i]), float(vals[i]), float(row[ids[i]]))
        # The printed order must be descending (ties to the lower id).
        if np.any(np.diff(vals) > 0):
            raise AssertionError(f"{what}: pos {p['pos']}: logits not printed in descending order")
    return worst, where


def reference_cli_matches(path, ref_logits, tokens):
    """forward_ref.py's own CLI prints the same numbers as the library call."""
    r = run([sys.executable, os.path.join(HERE, "forward_ref.py"), path, "--tokens",
             ",".join(map(str, tokens)), "--top", "5"])
    if r.returncode != 0:
        raise AssertionError(f"forward_ref.py CLI failed: {r.stderr.strip()[-300:]}")
    out = json.loads(r.stdout)
    for p in out["positions"]:
        want = forward_ref.top_k(ref_logits[p["pos"]], 5)
        if p["top"] != want:
            raise AssertionError(f"forward_ref.py CLI pos {p['pos']}: {p['top']} != {want}")


def main():
    binary = os.environ.get("ONELLM_BIN", "")
    if not binary or not os.access(binary, os.X_OK):
        print(f"SKIP: ONELLM_BIN not set or not executable ({binary!r})")
        return 77
    variants = [(a, t, []) for a in ARCHS for t in TYPES] + EXTRA_VARIANTS
    passed = failed = 0
    overall = 0.0
    with tempfile.TemporaryDirectory(prefix="onellm_ref_") as tmp:
        for seed, (arch, wtype, extra) in enumerate(variants, start=1):
            what = f"{arch} {wtype} {' '.join(extra)}".strip()
            path = os.path.join(tmp, f"{arch}-{wtype}-{seed}.gguf")
            try:
                make_model(binary, path, arch, wtype, seed, extra)
                model = forward_ref.Model(path).load()
                tokens = [t % model.n_vocab for t in TOKENS]
                ref = forward_ref.forward(model, tokens)
                worst, where = compare(cpp_logits(binary, path, tokens=tokens), ref, tokens, what)
                if seed == 1:
                    reference_cli_matches(path, ref, tokens)
                    # The prompt path: whatever the C++ tokenizer produced, same logits.
                    got = cpp_logits(binary, path, prompt="Hello world, hello")
                    w2, where2 = compare(got, forward_ref.forward(model, got["tokens"]), got["tokens"], what + " -p")
                    if w2 > worst:
                        worst, where = w2, where2
            except Skip as e:
                print(f"SKIP: {e}")
                return 77
            except Exception as e:  # one broken variant must not hide the others
                failed += 1
                print(f"FAIL {what}: {type(e).__name__}: {e}")
                continue
            overall = max(overall, worst)
            ok = worst <= REL_TOL
            detail = "" if where is None else \
                f" (pos {where[0]} id {where[1]}: C++ {where[2]:.8g}, reference {where[3]:.8g})"
            print(f"{'ok  ' if ok else 'FAIL'} {what:28s} max rel diff {worst:.2e}{detail if not ok else ''}")
            if ok:
                passed += 1
            else:
                failed += 1
    print(f"max rel diff over all variants: {overall:.2e} (tolerance {REL_TOL:g})")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

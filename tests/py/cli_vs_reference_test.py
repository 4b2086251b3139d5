#!/usr/bin/python3
"""Cross-checks the C++ engine (`onellm logits --exact`) against the NumPy reference.

For every architecture x weight type that `onellm make-tiny-model` writes (plus
a few shape variants: Llama 3 rope_freqs, tied head, MQA, head_dim != n_embd /
n_head), the C++ logits of every position and every vocabulary id must equal
the reference's to 1e-4 relative: |cpp - ref| <= 1e-4 * max(1, |ref|), both
from one pass over all tokens and one token per pass after a short prompt.
Quantized weights are de-quantized by the reference (gguf_ref.py) and then
computed in float64, which is what the C++ exact path computes in F32.

Exit 0 = all passed, 1 = a failure, 77 = no onellm binary / subcommands (skip).
"""

import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import forward_ref  # noqa: E402
import gguf_ref  # noqa: E402

REL_TOL = 1e-4
ARCHS = ("llama", "qwen2", "qwen3")
TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS")
# (arch, type, extra make-tiny-model options): shapes the plain models do not cover.
EXTRA_VARIANTS = [
    ("llama", "F32", ["--rope-freqs"]),
    ("llama", "Q6_K", ["--rope-freqs"]),
    ("llama", "F32", ["--tied", "--n-head-kv", "1"]),
    ("qwen2", "F16", ["--tied"]),
    ("qwen3", "F32", ["--head-dim", "128"]),
]
# Rope scaling metadata, added to a made model by rewriting its GGUF:
# (arch, type, label, [(key after "<arch>.", GGUF type, value)], changes the logits?).
# llama.cpp semantics: type defaults to linear, factor from rope.scaling.factor or
# the older rope.scale_linear, type "none" disables scaling.
SCALING_VARIANTS = [
    ("llama", "F32", "linear x4", [("rope.scaling.type", gguf_ref.STRING, "linear"),
                                   ("rope.scaling.factor", gguf_ref.FLOAT32, 4.0)], True),
    ("qwen2", "Q8_0", "linear x2", [("rope.scaling.type", gguf_ref.STRING, "linear"),
                                    ("rope.scaling.factor", gguf_ref.FLOAT32, 2.0)], True),
    ("llama", "F32", "factor x4, no type", [("rope.scaling.factor", gguf_ref.FLOAT32, 4.0)], True),
    ("qwen3", "F32", "scale_linear x8", [("rope.scale_linear", gguf_ref.FLOAT32, 8.0)], True),
    ("llama", "F32", "type none, factor x4", [("rope.scaling.type", gguf_ref.STRING, "none"),
                                              ("rope.scaling.factor", gguf_ref.FLOAT32, 4.0)], False),
    # YaRN from a short original context: all but the first pair interpolated.
    ("qwen2", "Q8_0", "yarn x4 from 8", [("rope.scaling.type", gguf_ref.STRING, "yarn"),
                                         ("rope.scaling.factor", gguf_ref.FLOAT32, 4.0),
                                         ("rope.scaling.original_context_length", gguf_ref.UINT32, 8)], True),
    # The ramp's middle pairs blended, the magnitude cancelled by attn_factor:
    # only the frequencies can move the logits.
    ("llama", "F32", "yarn x4 from 4096, magnitude 1",
     [("rope.scaling.type", gguf_ref.STRING, "yarn"), ("rope.scaling.factor", gguf_ref.FLOAT32, 4.0),
      ("rope.scaling.original_context_length", gguf_ref.UINT32, 4096),
      ("rope.scaling.attn_factor", gguf_ref.FLOAT32, 1.0 / (1.0 + 0.1 * math.log(4.0)))], True),
    ("qwen3", "F32", "yarn x8, betas 16/2, attn_factor 0.9",
     [("rope.scaling.type", gguf_ref.STRING, "yarn"), ("rope.scaling.factor", gguf_ref.FLOAT32, 8.0),
      ("rope.scaling.original_context_length", gguf_ref.UINT32, 64),
      ("rope.scaling.yarn_beta_fast", gguf_ref.FLOAT32, 16.0), ("rope.scaling.yarn_beta_slow", gguf_ref.FLOAT32, 2.0),
      ("rope.scaling.attn_factor", gguf_ref.FLOAT32, 0.9)], True),
    ("llama", "Q4_K", "linear x2, attn_factor 1.3", [("rope.scaling.type", gguf_ref.STRING, "linear"),
                                                     ("rope.scaling.factor", gguf_ref.FLOAT32, 2.0),
                                                     ("rope.scaling.attn_factor", gguf_ref.FLOAT32, 1.3)], True),
]
# Metadata onellm must refuse (rope scaling it does not model, experts), and a word its error must name.
REFUSED_METADATA = [
    ("longrope", [("rope.scaling.type", gguf_ref.STRING, "longrope")], "longrope"),
    ("yarn factor 0.5", [("rope.scaling.type", gguf_ref.STRING, "yarn"),
                         ("rope.scaling.factor", gguf_ref.FLOAT32, 0.5)], "rope.scaling.factor"),
    ("yarn from 0 tokens", [("rope.scaling.type", gguf_ref.STRING, "yarn"),
                            ("rope.scaling.original_context_length", gguf_ref.UINT32, 0)], "original_context_length"),
    ("8 experts", [("expert_count", gguf_ref.UINT32, 8)], "mixture-of-experts"),
]
TOKENS = [1, 17, 42, 5, 99, 3, 250, 7, 64, 12, 200, 33]
TIMEOUT = 60
# Relative rms error of a type's de-quantized matrices against the F32 model of
# the same seed: about twice what round-to-nearest block quantization gives on
# these random weights. Catches a C++ quantizer whose output the C++ and
# reference de-quantizers agree on but that no longer represents the weights.
QUANT_RMS_BOUND = {
    "F16": 0.001, "BF16": 0.005, "Q8_0": 0.012, "Q6_K": 0.04, "Q5_0": 0.09, "Q5_1": 0.08,
    "Q5_K": 0.08, "Q4_0": 0.17, "Q4_1": 0.16, "Q4_K": 0.15, "IQ4_NL": 0.15, "IQ4_XS": 0.15,
    "Q3_K": 0.35, "Q2_K": 0.7,
}


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


def cpp_logits(binary, path, tokens=None, prompt=None, decode_from=None):
    """The C++ JSON: {"tokens": [...], "positions": [{"pos", "top": [[id, logit], ...]}]}, all ids.
    decode_from=N: one pass over the first N tokens, then one token per pass (generation's path)."""
    src = ["--tokens", ",".join(map(str, tokens))] if tokens is not None else ["-p", prompt]
    base = [binary, "logits", "-m", path, *src, "--top", "0"]
    if decode_from is not None:
        base += ["--decode-from", str(decode_from)]
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


def quantization_error(path, f32_path):
    """Max over 2-D tensors of rms(dequantized - F32) / rms(F32)."""
    q, ref = gguf_ref.GgufFile(path), gguf_ref.GgufFile(f32_path)
    worst = 0.0
    for name, info in q.tensors.items():
        if len(info.dims) != 2:
            continue
        a, b = q.tensor_array(name).astype(np.float64), ref.tensor_array(name).astype(np.float64)
        if a.shape != b.shape:
            raise AssertionError(f"{name}: shape {a.shape} vs F32 model {b.shape}")
        worst = max(worst, float(np.sqrt(np.mean((a - b) ** 2) / np.mean(b ** 2))))
    return worst


def run_variant(binary, tmp, index, arch, wtype, extra=(), scaling=None):
    """Makes one model, compares C++ and reference logits; returns (worst, where, note)."""
    what = f"{arch} {wtype} {' '.join(extra)}".strip()
    # One seed per arch for the plain variants, so that they share weights.
    seed = 100 + ARCHS.index(arch) if not extra and scaling is None else 200 + index
    path = os.path.join(tmp, f"{arch}-{wtype}-{index}.gguf")
    make_model(binary, path, arch, wtype, seed, list(extra))
    note = ""
    if not extra and scaling is None and wtype != "F32":
        f32_path = os.path.join(tmp, f"{arch}-F32-{ARCHS.index(arch) * len(TYPES)}.gguf")
        qerr = quantization_error(path, f32_path)
        note = f", weights vs F32 rel rms {qerr:.3g}"
        if qerr > QUANT_RMS_BOUND[wtype]:
            raise AssertionError(f"weights differ from the F32 model of the same seed by rel rms {qerr:.3g} > "
                                 f"{QUANT_RMS_BOUND[wtype]} (broken quantizer, or make-tiny-model no longer "
                                 f"draws the same weights for every type)")
    model = forward_ref.Model(path).load()
    tokens = [t % model.n_vocab for t in TOKENS]
    ref = forward_ref.forward(model, tokens)
    if scaling is not None:
        kvs, changes = scaling
        scaled = path.replace(".gguf", "-scaled.gguf")
        gguf_ref.rewrite_gguf(path, scaled, [(arch + "." + k, t, v) for k, t, v in kvs])
        path, unscaled = scaled, ref
        model = forward_ref.Model(path).load()
        ref = forward_ref.forward(model, tokens)
        moved = float(np.abs(ref - unscaled).max())
        if (moved > 1e-3) != changes:  # the variant must test what it says
            raise AssertionError(f"reference logits moved by {moved:.3g} with the scaling metadata")
        note = f", scaling moves logits by {moved:.3g}"
    worst, where = compare(cpp_logits(binary, path, tokens=tokens), ref, tokens, what)
    # The same tokens through the KV cache one at a time after a 3-token prompt.
    w_dec, where_dec = compare(cpp_logits(binary, path, tokens=tokens, decode_from=3), ref, tokens,
                               what + " --decode-from 3")
    if w_dec > worst:
        worst, where = w_dec, where_dec
    if index == 0:
        reference_cli_matches(path, ref, tokens)
        # The prompt path: whatever the C++ tokenizer produced, same logits.
        got = cpp_logits(binary, path, prompt="Hello world, hello")
        w2, where2 = compare(got, forward_ref.forward(model, got["tokens"]), got["tokens"], what + " -p")
        if w2 > worst:
            worst, where = w2, where2
    return worst, where, note


def cpp_embed(binary, path, tokens, *extra):
    r = run([binary, "embed", "-m", path, "--tokens", ",".join(map(str, tokens)), *extra])
    if r.returncode != 0:
        raise AssertionError(f"embed {' '.join(extra)} failed (exit {r.returncode}): {r.stderr.strip()[-300:]}")
    out = json.loads(r.stdout)
    return out["pooling"], np.array(out["data"][0]["embedding"], dtype=np.float64)


def embeddings_match(binary, tmp):
    """`onellm embed` against the reference's final hidden states, pooled (mean / cls / last) and L2-normalized:
    exact math within 1e-5, the fast path at cosine > 0.999; the model's pooling_type is the default."""
    failures = 0
    for arch in ARCHS:
        path = os.path.join(tmp, f"{arch}-F32-{ARCHS.index(arch) * len(TYPES)}.gguf")
        model = forward_ref.Model(path).load()
        tokens = [t % model.n_vocab for t in TOKENS]
        h = forward_ref.hidden(model, tokens)
        pooled = {"mean": h.mean(axis=0), "cls": h[0], "last": h[-1]}
        checks = []
        for name, v in pooled.items():
            want = v / np.linalg.norm(v)
            _, got = cpp_embed(binary, path, tokens, "--exact", "--pooling", name)
            checks.append((f"{name} exact", float(np.abs(got - want).max()) < 1e-5))
            _, got = cpp_embed(binary, path, tokens, "--exact", "--pooling", name, "-b", "5")  # 3 passes pooled
            checks.append((f"{name} exact, 5 tokens a pass", float(np.abs(got - want).max()) < 1e-5))
            _, fast = cpp_embed(binary, path, tokens, "--pooling", name)
            checks.append((f"{name} fast", float(fast @ want / np.linalg.norm(fast)) > 0.999))
        _, raw = cpp_embed(binary, path, tokens, "--exact", "--pooling", "mean", "--no-normalize")
        checks.append(("mean --no-normalize", float(np.abs(raw - pooled["mean"]).max()) < 1e-5))
        tagged = os.path.join(tmp, f"{arch}-pooling-last.gguf")
        gguf_ref.rewrite_gguf(path, tagged, [(arch + ".pooling_type", gguf_ref.UINT32, 3)])
        name, got = cpp_embed(binary, tagged, tokens, "--exact")
        checks.append(("pooling_type 3 is last", name == "last" and
                       float(np.abs(got - pooled["last"] / np.linalg.norm(pooled["last"])).max()) < 1e-5))
        ranker = os.path.join(tmp, f"{arch}-pooling-rank.gguf")
        gguf_ref.rewrite_gguf(path, ranker, [(arch + ".pooling_type", gguf_ref.UINT32, 4)])
        r = run([binary, "embed", "-m", ranker, "--tokens", "1,2,3"])
        checks.append(("pooling_type 4 refused", r.returncode == 1 and "rank" in r.stderr))
        _, named = cpp_embed(binary, ranker, tokens, "--exact", "--pooling", "mean")
        checks.append(("a reranker with --pooling mean", float(np.abs(named - pooled["mean"] /
                                                                       np.linalg.norm(pooled["mean"])).max()) < 1e-5))
        bad = [label for label, ok in checks if not ok]
        print(f"{'ok  ' if not bad else 'FAIL'} embeddings {arch}: {len(checks)} checks"
              + (f", failed: {', '.join(bad)}" if bad else ""))
        failures += bool(bad)
    return failures


def refused_metadata(binary, tmp):
    """Unsupported or invalid metadata: a clear error naming it, not wrong logits. Returns failures."""
    base = os.path.join(tmp, "refused-base.gguf")
    make_model(binary, base, "qwen2", "F32", 300, [])
    failures = 0
    for label, kvs, word in REFUSED_METADATA:
        path = os.path.join(tmp, "refused.gguf")
        gguf_ref.rewrite_gguf(base, path, [("qwen2." + k, t, v) for k, t, v in kvs])
        r = run([binary, "logits", "-m", path, "--tokens", "1,2,3"])
        ok = r.returncode == 1 and word in r.stderr and "Traceback" not in r.stderr
        print(f"{'ok  ' if ok else 'FAIL'} refused: {label:28s} exit {r.returncode}: {r.stderr.strip()[-160:]}")
        failures += not ok
    return failures


def main():
    binary = os.environ.get("ONELLM_BIN", "")
    if not binary or not os.access(binary, os.X_OK):
        print(f"SKIP: ONELLM_BIN not set or not executable ({binary!r})")
        return 77
    variants = [(f"{a} {t}", a, t, [], None) for a in ARCHS for t in TYPES]
    variants += [(f"{a} {t} {' '.join(x)}", a, t, x, None) for a, t, x in EXTRA_VARIANTS]
    variants += [(f"{a} {t} {label}", a, t, [], (kvs, ch)) for a, t, label, kvs, ch in SCALING_VARIANTS]
    passed = failed = 0
    overall = 0.0
    with tempfile.TemporaryDirectory(prefix="onellm_ref_") as tmp:
        for index, (what, arch, wtype, extra, scaling) in enumerate(variants):
            try:
                worst, where, note = run_variant(binary, tmp, index, arch, wtype, extra, scaling)
            except Skip as e:
                print(f"SKIP: {e}")
                return 77
            except Exception as e:  # one broken variant must not hide the others
                failed += 1
                print(f"FAIL {what}: {type(e).__name__}: {e}")
                continue
            overall = max(overall, worst)
            ok = worst <= REL_TOL
            detail = "" if ok or where is None else \
                f" (pos {where[0]} id {where[1]}: C++ {where[2]:.8g}, reference {where[3]:.8g})"
            print(f"{'ok  ' if ok else 'FAIL'} {what:32s} max rel diff {worst:.2e}{note}{detail}")
            passed, failed = passed + ok, failed + (not ok)
        failed += refused_metadata(binary, tmp)
        failed += embeddings_match(binary, tmp)
    print(f"max rel diff over all variants: {overall:.2e} (tolerance {REL_TOL:g})")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

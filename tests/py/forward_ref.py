#!/usr/bin/python3
"""Reference transformer forward pass (llama, qwen2, qwen3) in float64 NumPy.

Independent of onellm's C++ code: reads the GGUF with gguf_ref.py, de-quantizes
every weight to float32 exactly as ggml does, then computes in float64 without
a KV cache (the whole sequence at once, causal mask), so every row i is the
next-token distribution after tokens[0..i] — what llama.cpp computes in exact math.

CLI:  /usr/bin/python3 tests/py/forward_ref.py MODEL.gguf --tokens 1,2,3 [--top 20]
prints {"tokens": [...], "positions": [{"pos": 0, "top": [[id, logit], ...]}, ...]}
(with "logits": [...] full rows instead of "top" when --top is not given).
"""

import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_ref import GgufError, GgufFile  # noqa: E402

SUPPORTED_ARCHS = ("llama", "qwen2", "qwen3")


class Config:
    def __init__(self, f):
        arch = f.get("general.architecture")
        if arch not in SUPPORTED_ARCHS:
            raise GgufError(f"{f.path}: architecture {arch!r} not supported by the reference")
        self.arch = arch
        p = arch + "."

        def need(key):
            if p + key not in f.metadata:
                raise GgufError(f"{f.path}: missing key {p + key}")
            return f.metadata[p + key]

        self.n_embd = int(need("embedding_length"))
        self.n_layer = int(need("block_count"))
        self.n_ff = int(need("feed_forward_length"))
        self.n_head = int(need("attention.head_count"))
        self.n_head_kv = int(f.get(p + "attention.head_count_kv", self.n_head))
        self.head_dim = int(f.get(p + "attention.key_length", self.n_embd // self.n_head))
        self.head_dim_v = int(f.get(p + "attention.value_length", self.head_dim))
        self.n_rot = int(f.get(p + "rope.dimension_count", self.head_dim))
        self.eps = float(f.get(p + "attention.layer_norm_rms_epsilon", 1e-5))
        self.rope_base = float(f.get(p + "rope.freq_base", 10000.0))
        # llama.cpp: normal (GPT-J interleaved) rope for llama, NEOX for qwen2/qwen3.
        self.neox = arch in ("qwen2", "qwen3")
        if self.n_head % self.n_head_kv:
            raise GgufError(f"{f.path}: head_count {self.n_head} not a multiple of head_count_kv {self.n_head_kv}")

        # As llama.cpp reads it: the type defaults to "linear"; the factor comes
        # from rope.scaling.factor, else the older rope.scale_linear; type "none"
        # disables it. Llama 3 scaling is not metadata: the converter stores
        # per-frequency divisors as the rope_freqs tensor. YaRN follows the
        # paper's reference code (as transformers' _compute_yarn_parameters):
        # per-frequency blend of interpolated and original frequencies by a
        # linear ramp over the correction range, and cos/sin times the
        # attention factor 0.1 ln(factor) + 1, times rope.scaling.attn_factor
        # as llama.cpp multiplies it in. longrope is refused.
        scaling = f.get(p + "rope.scaling.type", "linear")
        factor = float(f.get(p + "rope.scaling.factor", f.get(p + "rope.scale_linear", 0.0)))
        if scaling not in ("none", "linear", "yarn"):
            raise GgufError(f"{f.path}: rope scaling {scaling!r} not supported by the reference")
        self.freq_scale = 1.0 / factor if scaling in ("linear", "yarn") and factor != 0.0 else 1.0
        self.mscale = float(f.get(p + "rope.scaling.attn_factor", 1.0))
        self.yarn_keep = None  # per pair: 1 keeps the original frequency, 0 takes the interpolated one
        if scaling == "yarn":
            orig = float(f.get(p + "rope.scaling.original_context_length", f.get(p + "context_length", 2048)))
            beta_fast = float(f.get(p + "rope.scaling.yarn_beta_fast", 32.0))
            beta_slow = float(f.get(p + "rope.scaling.yarn_beta_slow", 1.0))

            def correction_dim(rotations):
                return self.n_rot * math.log(orig / (rotations * 2 * math.pi)) / (2 * math.log(self.rope_base))
            low = max(math.floor(correction_dim(beta_fast)), 0)
            high = min(math.ceil(correction_dim(beta_slow)), self.n_rot - 1)
            ramp = (np.arange(self.n_rot // 2, dtype=np.float64) - low) / max(high - low, 0.001)
            self.yarn_keep = 1.0 - np.clip(ramp, 0.0, 1.0)
            self.mscale *= 0.1 * math.log(factor) + 1.0
        self.freq_factors = None
        if "rope_freqs.weight" in f.tensors:
            self.freq_factors = f.tensor_array("rope_freqs.weight").astype(np.float64)
            if self.freq_factors.shape != (self.n_rot // 2,):
                raise GgufError(f"{f.path}: rope_freqs.weight has shape {self.freq_factors.shape}, "
                                f"expected ({self.n_rot // 2},)")


class Model:
    """All weights de-quantized (float32 as ggml would) and held as float64."""

    def __init__(self, path):
        self.file = f = GgufFile(path)
        self.cfg = Config(f)
        self.path = path

    def weight(self, name, optional=False):
        if name not in self.file.tensors:
            if optional:
                return None
            raise GgufError(f"{self.path}: missing tensor {name}")
        return self.file.tensor_array(name).astype(np.float64)

    def load(self):
        c = self.cfg
        self.tok_embd = self.weight("token_embd.weight")
        self.n_vocab = self.tok_embd.shape[0]
        self.output_norm = self.weight("output_norm.weight")
        out = self.weight("output.weight", optional=True)
        self.output = self.tok_embd if out is None else out  # tied head
        self.layers = []
        for i in range(c.n_layer):
            b = f"blk.{i}."
            names = ["attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight",
                     "attn_output.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
                     "ffn_down.weight"]
            layer = {n.split(".")[0]: self.weight(b + n) for n in names}
            for n in ("attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_output.bias"):
                layer[n.replace(".", "_")] = self.weight(b + n, optional=True)
            for n in ("attn_q_norm.weight", "attn_k_norm.weight"):
                layer[n.split(".")[0]] = self.weight(b + n, optional=(c.arch != "qwen3"))
            self.layers.append(layer)
        return self


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, positions, cfg):
    """Rotates the first n_rot dims of each head. x: (n_tok, n_heads, head_dim)."""
    half = cfg.n_rot // 2
    freqs = cfg.rope_base ** (-2.0 * np.arange(half, dtype=np.float64) / cfg.n_rot)
    if cfg.freq_factors is not None:
        freqs = freqs / cfg.freq_factors
    scaled = cfg.freq_scale * freqs
    if cfg.yarn_keep is not None:
        scaled = scaled * (1.0 - cfg.yarn_keep) + freqs * cfg.yarn_keep
    angle = positions[:, None].astype(np.float64) * scaled[None, :]  # (n_tok, half)
    cos = cfg.mscale * np.cos(angle)[:, None, :]
    sin = cfg.mscale * np.sin(angle)[:, None, :]
    out = x.copy()
    if cfg.neox:
        a, b = x[..., :half], x[..., half:cfg.n_rot]
        out[..., :half] = a * cos - b * sin
        out[..., half:cfg.n_rot] = a * sin + b * cos
    else:
        a, b = x[..., 0:cfg.n_rot:2], x[..., 1:cfg.n_rot:2]
        out[..., 0:cfg.n_rot:2] = a * cos - b * sin
        out[..., 1:cfg.n_rot:2] = a * sin + b * cos
    return out


def linear(x, w, bias=None):
    y = x @ w.T
    return y if bias is None else y + bias


def attention(m, layer, h, positions):
    c = m.cfg
    n = h.shape[0]
    q = linear(h, layer["attn_q"], layer["attn_q_bias"]).reshape(n, c.n_head, c.head_dim)
    k = linear(h, layer["attn_k"], layer["attn_k_bias"]).reshape(n, c.n_head_kv, c.head_dim)
    v = linear(h, layer["attn_v"], layer["attn_v_bias"]).reshape(n, c.n_head_kv, c.head_dim_v)
    if layer["attn_q_norm"] is not None:  # qwen3: per-head RMSNorm before rope
        q = rms_norm(q, layer["attn_q_norm"], c.eps)
    if layer["attn_k_norm"] is not None:
        k = rms_norm(k, layer["attn_k_norm"], c.eps)
    q = rope(q, positions, c)
    k = rope(k, positions, c)
    group = c.n_head // c.n_head_kv
    k = np.repeat(k, group, axis=1)  # query head h uses kv head h // group
    v = np.repeat(v, group, axis=1)
    scores = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(c.head_dim)
    causal = np.triu(np.ones((n, n), dtype=bool), k=1)
    scores[:, causal] = -np.inf
    scores -= scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    out = np.einsum("hqk,khd->qhd", p, v).reshape(n, c.n_head * c.head_dim_v)
    return linear(out, layer["attn_output"], layer["attn_output_bias"])


def forward(m, tokens):
    """Logits (len(tokens) x n_vocab, float64) for every position."""
    return linear(hidden(m, tokens), m.output)


def hidden(m, tokens):
    """The final hidden states after the output norm (len(tokens) x n_embd): what embeddings pool."""
    c = m.cfg
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.size == 0:
        raise ValueError("no tokens")
    bad = tokens[(tokens < 0) | (tokens >= m.n_vocab)]
    if bad.size:
        raise ValueError(f"token {int(bad[0])} out of range (n_vocab {m.n_vocab})")
    positions = np.arange(tokens.size)
    x = m.tok_embd[tokens]
    for layer in m.layers:
        x = x + attention(m, layer, rms_norm(x, layer["attn_norm"], c.eps), positions)
        h = rms_norm(x, layer["ffn_norm"], c.eps)
        gate = linear(h, layer["ffn_gate"])
        silu = gate / (1.0 + np.exp(-gate))
        x = x + linear(silu * linear(h, layer["ffn_up"]), layer["ffn_down"])
    return rms_norm(x, m.output_norm, c.eps)


def top_k(row, k):
    """[(id, logit)] of the k largest, descending, ties to the lower id."""
    order = np.lexsort((np.arange(row.size), -row))[:k]
    return [[int(i), float(row[i])] for i in order]


def main(argv=None):
    ap = argparse.ArgumentParser(description="NumPy reference logits for a GGUF model")
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True, help="comma-separated token ids")
    ap.add_argument("--top", type=int, default=0, help="print the top K per position (default: full rows)")
    args = ap.parse_args(argv)
    try:
        tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
        m = Model(args.model).load()
        logits = forward(m, tokens)
    except (GgufError, ValueError, OSError) as e:
        print(f"forward_ref: {e}", file=sys.stderr)
        return 1
    positions = []
    for pos, row in enumerate(logits):
        entry = {"pos": pos}
        if args.top > 0:
            entry["top"] = top_k(row, args.top)
        else:
            entry["logits"] = [float(v) for v in row]
        positions.append(entry)
    json.dump({"tokens": tokens, "positions": positions}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

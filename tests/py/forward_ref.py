"""Reference transformer forward pass in NumPy (float64) for the GGUF architectures onellm runs:
llama (normal RoPE, optional rope_freqs and linear rope scaling), qwen2 (q/k/v biases, NEOX RoPE)
and qwen3 (per-head q/k RMSNorm, NEOX RoPE). Written from the model definitions, independently of
the C++ code.

CLI: forward_ref.py MODEL.gguf --tokens 1,2,3 [--top K]  -> JSON per-position top-K [id, logit]
"""
import argparse
import json
import sys

import numpy as np

from gguf_ref import GGUF


class Reference:
    def __init__(self, path):
        g = GGUF(path)
        self.g = g
        m = g.meta
        arch = m["general.architecture"]
        if arch not in ("llama", "qwen2", "qwen3"):
            raise ValueError(f"unsupported architecture {arch}")
        self.arch = arch
        a = arch + "."
        self.n_embd = m[a + "embedding_length"]
        self.n_layer = m[a + "block_count"]
        self.n_head = m[a + "attention.head_count"]
        self.n_head_kv = m.get(a + "attention.head_count_kv", self.n_head)
        self.head_dim = m.get(a + "attention.key_length", self.n_embd // self.n_head)
        self.n_rot = m.get(a + "rope.dimension_count", self.head_dim)
        self.eps = m.get(a + "attention.layer_norm_rms_epsilon", 1e-5)
        self.base = m.get(a + "rope.freq_base", 10000.0)
        self.freq_scale = 1.0
        if m.get(a + "rope.scaling.type") == "linear" and m.get(a + "rope.scaling.factor", 0) > 0:
            self.freq_scale = 1.0 / m[a + "rope.scaling.factor"]
        self.neox = arch != "llama"
        t = g.tensor
        self.embd = t("token_embd.weight")
        self.out = t("output.weight") if "output.weight" in g.tensors else self.embd
        self.out_norm = t("output_norm.weight")
        self.freq_factors = t("rope_freqs.weight") if "rope_freqs.weight" in g.tensors else None
        self.layers = []
        for i in range(self.n_layer):
            p = f"blk.{i}."
            L = {k: t(p + k + ".weight") for k in ("attn_norm", "ffn_norm", "attn_q", "attn_k", "attn_v",
                                                     "attn_output", "ffn_gate", "ffn_up", "ffn_down")}
            for k in ("attn_q", "attn_k", "attn_v"):
                if p + k + ".bias" in g.tensors:
                    L[k + "_b"] = t(p + k + ".bias")
            for k in ("attn_q_norm", "attn_k_norm"):
                if p + k + ".weight" in g.tensors:
                    L[k] = t(p + k + ".weight")
            self.layers.append(L)

    def rms(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x, positions):  # x: (T, heads, head_dim)
        half = self.n_rot // 2
        inv = self.base ** (-2.0 * np.arange(half) / self.n_rot)
        if self.freq_factors is not None:
            inv = inv / self.freq_factors
        ang = np.outer(positions, inv) * self.freq_scale  # (T, half)
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        y = x.copy()
        if self.neox:
            a, b = x[..., :half], x[..., half:self.n_rot]
            y[..., :half] = a * cos - b * sin
            y[..., half:self.n_rot] = a * sin + b * cos
        else:
            a, b = x[..., 0:self.n_rot:2], x[..., 1:self.n_rot:2]
            y[..., 0:self.n_rot:2] = a * cos - b * sin
            y[..., 1:self.n_rot:2] = a * sin + b * cos
        return y

    def logits(self, tokens):
        T = len(tokens)
        hd, H, KV = self.head_dim, self.n_head, self.n_head_kv
        x = self.embd[np.array(tokens)]
        pos = np.arange(T)
        mask = np.triu(np.full((T, T), -np.inf), 1)
        for L in self.layers:
            h = self.rms(x, L["attn_norm"])
            q = h @ L["attn_q"].T + L.get("attn_q_b", 0)
            k = h @ L["attn_k"].T + L.get("attn_k_b", 0)
            v = h @ L["attn_v"].T + L.get("attn_v_b", 0)
            q, k, v = q.reshape(T, H, hd), k.reshape(T, KV, hd), v.reshape(T, KV, hd)
            if "attn_q_norm" in L:
                q, k = self.rms(q, L["attn_q_norm"]), self.rms(k, L["attn_k_norm"])
            q, k = self.rope(q, pos), self.rope(k, pos)
            rep = H // KV
            k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
            s = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd) + mask
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            att = np.einsum("hts,shd->thd", s, v).reshape(T, H * hd)
            x = x + att @ L["attn_output"].T
            h = self.rms(x, L["ffn_norm"])
            g, u = h @ L["ffn_gate"].T, h @ L["ffn_up"].T
            x = x + (g / (1.0 + np.exp(-g)) * u) @ L["ffn_down"].T
        return self.rms(x, self.out_norm) @ self.out.T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--top", type=int, default=20)
    a = ap.parse_args()
    tokens = [int(t) for t in a.tokens.split(",")]
    lg = Reference(a.model).logits(tokens)
    out = []
    for p, row in enumerate(lg):
        ids = np.argsort(-row, kind="stable")[: a.top]
        out.append({"pos": p, "top": [[int(i), float(row[i])] for i in ids]})
    json.dump({"tokens": tokens, "positions": out}, sys.stdout)


if __name__ == "__main__":
    main()

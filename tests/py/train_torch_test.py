#!/usr/bin/env python3
"""Cross-checks onellm's training against PyTorch.

The C++ side (TrainTorchDump in tests/train_torch_dump_test.cpp) writes tiny
llama, qwen2 (q/k/v biases) and qwen3 (per-head q/k norms) models' initial
weights, the windows of each batch, its losses, gradients and the weights
after a few AdamW steps. Here the same model is
written from scratch in PyTorch (float64), trained with torch.optim.AdamW and
torch.nn.utils.clip_grad_norm_, and everything is compared.

Exit 77 (skip) when torch (Debian's python3-torch) is not installed.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    print("SKIP: torch is not installed (apt-get install python3-torch)")
    sys.exit(77)

torch.set_default_dtype(torch.float64)


def tests_binary():
    if os.environ.get("ONELLM_TESTS_BIN"):
        return os.environ["ONELLM_TESTS_BIN"]
    cli = os.environ.get("ONELLM_BIN")
    if not cli:
        print("SKIP: ONELLM_BIN is not set (run through ctest)")
        sys.exit(77)
    return os.path.join(os.path.dirname(cli), "tests", "onellm_tests")


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, base, neox):
    """Llama ("normal") layout: dims (2i, 2i+1) of each head rotate together;
    NeoX (qwen2, qwen3): dims (i, i + head_dim/2). x: (n, heads, head_dim)."""
    n, _, hd = x.shape
    i = torch.arange(hd // 2, dtype=torch.float64)
    freq = base ** (-2.0 * i / hd)
    angle = torch.arange(n, dtype=torch.float64)[:, None] * freq[None, :]
    cos, sin = torch.cos(angle)[:, None, :], torch.sin(angle)[:, None, :]
    first, second = (slice(0, hd // 2), slice(hd // 2, hd)) if neox else (slice(0, None, 2), slice(1, None, 2))
    x0, x1 = x[..., first], x[..., second]
    out = torch.empty_like(x)
    out[..., first] = x0 * cos - x1 * sin
    out[..., second] = x0 * sin + x1 * cos
    return out


def forward_loss(p, cfg, tokens):
    """Mean next-token cross-entropy of one window (n + 1 tokens)."""
    D, H, KV, HD = cfg["n_embd"], cfg["n_head"], cfg["n_head_kv"], cfg["head_dim"]
    eps = cfg["rms_eps"]
    inp, tgt = tokens[:-1], tokens[1:]
    n = len(inp)
    x = p["token_embd.weight"][inp]
    mask = torch.full((n, n), float("-inf")).triu(1)
    neox = cfg["arch"] != "llama"
    for l in range(cfg["n_layer"]):
        b = f"blk.{l}."
        xn = rms_norm(x, p[b + "attn_norm.weight"], eps)
        q, k, v = (xn @ p[b + f"attn_{w}.weight"].T for w in "qkv")
        if cfg["qkv_bias"]:
            q, k, v = q + p[b + "attn_q.bias"], k + p[b + "attn_k.bias"], v + p[b + "attn_v.bias"]
        q, k, v = q.view(n, H, HD), k.view(n, KV, HD), v.view(n, KV, HD)
        if cfg["qk_norm"]:
            q, k = rms_norm(q, p[b + "attn_q_norm.weight"], eps), rms_norm(k, p[b + "attn_k_norm.weight"], eps)
        q, k = rope(q, cfg["rope_base"], neox), rope(k, cfg["rope_base"], neox)
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        scores = torch.einsum("thd,jhd->htj", q, k) / math.sqrt(HD) + mask
        att = torch.einsum("htj,jhd->thd", torch.softmax(scores, -1), v).reshape(n, H * HD)
        x = x + att @ p[b + "attn_output.weight"].T
        xn = rms_norm(x, p[b + "ffn_norm.weight"], eps)
        h = torch.nn.functional.silu(xn @ p[b + "ffn_gate.weight"].T) * (xn @ p[b + "ffn_up.weight"].T)
        x = x + h @ p[b + "ffn_down.weight"].T
    out = p["token_embd.weight"] if cfg["tied_output"] else p["output.weight"]
    logits = rms_norm(x, p["output_norm.weight"], eps) @ out.T
    return torch.nn.functional.cross_entropy(logits, torch.tensor(tgt), reduction="sum")


def as_params(tensors):
    # ggml dims are (cols, rows): a row-major (rows, cols) matrix.
    return {name: torch.tensor(t["values"]).reshape(list(reversed(t["dims"]))).requires_grad_(True)
            for name, t in tensors.items()}


def batch_loss(p, case, windows):
    T = case["options"]["seq_len"]
    corpus = case["corpus"]
    total = sum(forward_loss(p, case["config"], corpus[s:s + T + 1]) for s in windows)
    return total / (T * len(windows))


def rel_err(a, b):
    return float((a - b).norm() / max(float(b.norm()), 1e-12))


def check_case(case):
    failures = []
    cfg, opt = case["config"], case["options"]
    label = cfg["arch"] + (" tied" if cfg["tied_output"] else " untied")

    # Loss and gradients of the first batch.
    p = as_params(case["initial"])
    loss = batch_loss(p, case, case["steps"][0]["windows"])
    loss.backward()
    if abs(float(loss) - case["first_loss"]) > 1e-5 * abs(float(loss)):
        failures.append(f"{label}: first loss {case['first_loss']} vs torch {float(loss)}")
    for name, t in case["first_grads"].items():
        ours = torch.tensor(t["values"]).reshape(p[name].shape)
        err = rel_err(ours, p[name].grad)
        if not err < 1e-4:
            failures.append(f"{label}: gradient of {name}: relative error {err:.2e}")

    # A few AdamW steps with clipping and the schedule's learning rates.
    p = as_params(case["initial"])
    decay = [t for n, t in p.items() if t.dim() == 2]
    no_decay = [t for n, t in p.items() if t.dim() != 2]
    adam = torch.optim.AdamW([{"params": decay, "weight_decay": opt["weight_decay"]},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=opt["lr"], betas=(opt["beta1"], opt["beta2"]), eps=opt["eps"])
    for step in case["steps"]:
        adam.zero_grad()
        loss = batch_loss(p, case, step["windows"])
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(list(p.values()), opt["grad_clip"])
        if abs(float(loss) - step["loss"]) > 1e-5 * abs(float(loss)):
            failures.append(f"{label}: loss {step['loss']} vs torch {float(loss)}")
        if abs(float(norm) - step["grad_norm"]) > 1e-4 * float(norm):
            failures.append(f"{label}: grad norm {step['grad_norm']} vs torch {float(norm)}")
        for group in adam.param_groups:
            group["lr"] = step["lr"]
        adam.step()
    for name, t in case["final"].items():
        ours = torch.tensor(t["values"]).reshape(p[name].shape)
        diff = float((ours - p[name].detach()).abs().max())
        moved = float((torch.tensor(case["initial"][name]["values"]).reshape(p[name].shape) - ours).abs().max())
        if not diff < 1e-4 or not moved > 1e-3:
            failures.append(f"{label}: {name} after training: max diff {diff:.2e} (moved {moved:.2e})")
    return failures


def main():
    binary = tests_binary()
    if not os.path.exists(binary):
        print(f"SKIP: test binary not found at {binary} (set ONELLM_TESTS_BIN)")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "dump.json")
        env = dict(os.environ, ONELLM_TRAIN_DUMP=dump)
        subprocess.run([binary, "--gtest_filter=TrainTorchDump.*"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        with open(dump) as f:
            cases = json.load(f)
    failures = []
    for case in cases:
        failures += check_case(case)
    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    print(f"OK: {len(cases)} models, losses, gradients and AdamW updates agree with PyTorch")
    return 0


if __name__ == "__main__":
    sys.exit(main())

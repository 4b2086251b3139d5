#!/usr/bin/python3
"""`onellm perplexity` against the NumPy reference, computed here the way llama-perplexity computes it.

The text is cut into chunks of -c tokens, each evaluated from an empty cache with its first token replaced by BOS
when the model adds one; each chunk's second half is scored. The reference does the same over forward_ref's
float64 logits, and the C++ exact path must give the same mean negative log-likelihood (1e-6 relative), the same
top-1 share and the same chunk count: on the real stories260K (a Llama vocabulary that adds BOS) and a random
qwen2 model (no BOS). KL divergence: a base file written by the F32 model and compared from its Q4_0
quantization must give the reference's mean KL(base || Q4_0), same-top share and RMS change of p(right token)
(within what the base's fp16 log-probabilities allow; the model against its own base: below 1e-6).
Bad input: a short text, a base of other tokens or another vocabulary, a truncated or foreign base file, an
unwritable path. Exit 77 = skipped (no binary).
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cli_check  # noqa: E402
import forward_ref  # noqa: E402
import gguf_ref  # noqa: E402
from cli_check import check, must, onellm  # noqa: E402

SHARED = os.environ.get("ONELLM_SHARED_DIR", os.path.join(HERE, "..", "..", "..", "shared"))
STORIES = os.path.join(SHARED, "models", "stories260K.gguf")
TEXT = ("Once upon a time there was a little girl named Lily. She loved to play in the park with her dog Max. "
        "One day the sun was hot and Lily was thirsty, so her mom gave her a cold glass of water. Lily said thank "
        "you and shared a sip with Max. Then they ran to the swings and laughed until it was time to go home. ") * 3
N_CTX = 32


def adds_bos(model_path):
    f = gguf_ref.GgufFile(model_path)
    return f.get("tokenizer.ggml.add_bos_token", f.get("tokenizer.ggml.model") == "llama"), \
        f.get("tokenizer.ggml.bos_token_id")


def echoed_tokens(model, text_file):
    """The ids onellm reads the text (one line) as, BOS first when the model adds one."""
    out, _ = must("tokenize", "-m", model, "--file", text_file)
    add_bos, bos = adds_bos(model)
    return ([bos] if add_bos else []) + json.loads(out.splitlines()[0])


def reference(model_path, tokens, n_ctx, base_logprobs=None):
    """(mean nll, top-1 share, chunks, per-row log-probs, kl stats or None) as llama-perplexity scores."""
    m = forward_ref.Model(model_path).load()
    add_bos, bos = adds_bos(model_path)
    nll, hits, rows = [], 0, []
    n_chunks = len(tokens) // n_ctx
    for c in range(n_chunks):
        chunk = list(tokens[c * n_ctx:(c + 1) * n_ctx])
        if add_bos:
            chunk[0] = bos
        logits = forward_ref.forward(m, chunk)
        for j in range(n_ctx // 2, n_ctx - 1):
            row = logits[j]
            lp = row - (np.log(np.sum(np.exp(row - row.max()))) + row.max())
            nxt = tokens[c * n_ctx + j + 1]
            nll.append(-lp[nxt])
            hits += int(np.argmax(row) == nxt)
            rows.append((lp, nxt))
    kl = None
    if base_logprobs is not None:
        klds, same, dp = [], 0, []
        for (lp, nxt), lb in zip(rows, base_logprobs):
            klds.append(float(np.sum(np.exp(lb) * (lb - lp))))
            same += int(np.argmax(lb) == np.argmax(lp))
            dp.append(np.exp(lp[nxt]) - np.exp(lb[nxt]))
        kl = {"mean": float(np.mean(klds)), "same_top": same / len(rows),
              "rms_dp": float(np.sqrt(np.mean(np.square(dp))))}
    return float(np.mean(nll)), hits / len(nll), n_chunks, [lp for lp, _ in rows], kl


def ppl_json(*args):
    out, _ = must("perplexity", *args, "--json")
    return json.loads(out)


def run(tmp):
    text_file = os.path.join(tmp, "text.txt")
    with open(text_file, "w") as f:
        f.write(TEXT)
    qwen = os.path.join(tmp, "qwen2.gguf")
    must("make-tiny-model", "--arch", "qwen2", "--n-layer", "2", "--seed", "5", "-o", qwen)
    models = [("qwen2 (no BOS)", qwen)]
    if os.path.exists(STORIES):
        models.insert(0, ("stories260K (BOS)", STORIES))
    else:
        print("note: ../shared/models/stories260K.gguf absent; the random qwen2 model only")
    for name, model in models:
        tokens = echoed_tokens(model, text_file)
        got = ppl_json("-m", model, "-f", text_file, "-c", str(N_CTX), "--exact")
        nll, top1, chunks, _, _ = reference(model, tokens, N_CTX)
        check(got["chunks"] == chunks and got["scored_tokens"] == chunks * (N_CTX - N_CTX // 2 - 1),
              f"{name}: {chunks} chunks scored: {got}")
        check(abs(got["nll"] - nll) <= 1e-6 * max(1.0, nll), f"{name}: nll {got['nll']} vs reference {nll}")
        check(abs(got["top1"] - top1) < 1e-9, f"{name}: top-1 share {got['top1']} vs {top1}")
        check(abs(got["ppl"] - np.exp(nll)) <= 1e-5 * np.exp(nll), f"{name}: ppl {got['ppl']}")
        fast = ppl_json("-m", model, "-f", text_file, "-c", str(N_CTX), "-b", "7")
        check(abs(fast["nll"] - nll) <= 2e-3 * max(1.0, nll), f"{name}: the fast path in batches of 7: {fast['nll']}")
        two = ppl_json("-m", model, "-f", text_file, "-c", str(N_CTX), "--exact", "--chunks", "2")
        check(two["chunks"] == 2, f"{name}: --chunks 2: {two}")

    # KL divergence of a Q4_0 quantization from the F32 model.
    q4 = os.path.join(tmp, "qwen2-q4.gguf")
    must("quantize", qwen, q4, "Q4_0", "--pure")
    base = os.path.join(tmp, "base.kl")
    saved = ppl_json("-m", qwen, "-f", text_file, "-c", str(N_CTX), "--exact", "--kl-divergence-base", base)
    got = ppl_json("-m", q4, "-f", text_file, "--exact", "--kl-divergence-base", base, "--kl-divergence")
    tokens = echoed_tokens(qwen, text_file)
    _, _, _, base_rows, _ = reference(qwen, tokens, N_CTX)
    nll_q, _, _, _, kl = reference(q4, tokens, N_CTX, base_rows)
    k = got.get("kl_divergence", {})
    # The base is stored as fp16 log-probabilities: the KLD carries their (second-order) rounding.
    check(k and abs(k["mean"] - kl["mean"]) <= 1e-3 * kl["mean"] + 1e-6, f"mean KLD {k} vs reference {kl}")
    check(k and abs(k["same_top"] - kl["same_top"]) < 1e-9, f"same top {k.get('same_top')} vs {kl['same_top']}")
    check(k and abs(k["rms_dp"] - kl["rms_dp"]) <= 1e-3 * kl["rms_dp"] + 1e-7, f"RMS dp {k} vs {kl}")
    check(k and abs(k["base_ppl"] - saved["ppl"]) <= 1e-3 * saved["ppl"], f"base ppl {k} vs {saved['ppl']}")
    check(abs(got["nll"] - nll_q) <= 1e-6 * nll_q and kl["mean"] > 1e-4, f"the Q4_0 model's own nll {got['nll']}")
    same = ppl_json("-m", qwen, "-f", text_file, "--exact", "--kl-divergence-base", base, "--kl-divergence")
    check(same["kl_divergence"]["mean"] < 1e-6 and same["kl_divergence"]["same_top"] > 0.97,
          f"the model against its own base: ~0: {same['kl_divergence']}")

    # Bad input: each a clear error, exit 1.
    short = os.path.join(tmp, "short.txt")
    with open(short, "w") as f:
        f.write("Once upon a time.")
    other = os.path.join(tmp, "other.txt")
    with open(other, "w") as f:
        f.write(TEXT.replace("Lily", "Anna"))
    cut = os.path.join(tmp, "cut.kl")
    with open(base, "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read()[:-100])
    junk = os.path.join(tmp, "junk.kl")
    with open(junk, "wb") as f:
        f.write(b"GGUF" + bytes(100))
    # A header whose rows x vocabulary pass 2^64 and wrap to this (sparse) file's size.
    wrap = os.path.join(tmp, "wrap.kl")
    with open(wrap, "wb") as f:
        f.write(b"ONELLMKL" + struct.pack("<4I", 1, 25165823, 1 << 24, 1 << 24))
        f.truncate(24 + (1 << 25))
    bad = [
        (["-m", q4, "-f", text_file, "--kl-divergence-base", wrap, "--kl-divergence"], "overflow"),
        (["-m", qwen, "-f", short, "-c", str(N_CTX)], "need at least"),
        (["-m", qwen, "-f", other, "--kl-divergence-base", base, "--kl-divergence"], "other tokens"),
        (["-m", q4, "-f", text_file, "--kl-divergence-base", cut, "--kl-divergence"], "truncated"),
        (["-m", q4, "-f", text_file, "--kl-divergence-base", junk, "--kl-divergence"], "not a base file"),
        (["-m", q4, "-f", text_file, "--kl-divergence"], "--kl-divergence-base"),
        (["-m", qwen, "-f", text_file, "-c", str(N_CTX), "--kl-divergence-base", os.path.join(tmp, "no", "dir.kl")],
         "cannot create"),
        (["-m", qwen, "-f", os.path.join(tmp, "missing.txt")], "missing.txt"),
    ]
    if os.path.exists(STORIES):
        bad.append((["-m", STORIES, "-f", text_file, "--kl-divergence-base", base, "--kl-divergence"], "vocabulary"))
    for args, word in bad:
        rc, _, err = onellm("perplexity", *args)
        check(rc == 1 and word in err and "Segmentation" not in err, f"perplexity {' '.join(args)}: {rc} {err!r}")


def main():
    return cli_check.main_in_tmp(run)


if __name__ == "__main__":
    sys.exit(main())

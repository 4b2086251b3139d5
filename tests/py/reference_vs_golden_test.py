#!/usr/bin/python3
"""Validates the NumPy reference (forward_ref.py) against llama.cpp's golden logits.

Only the exact-math goldens are used: logits/kv_f32 for F32 models and
logits/dequant_f32 for the quantized ones (llama.cpp's F32 math on the
de-quantized weights). Per golden file: the top-20 logits at every prompt
position, the row statistics (logsumexp, mean, std), the full rows where
present, and the greedy continuation (fed as teacher-forced tokens, which is
the same math as feeding them one by one into a KV cache).

Exit 0 = all passed, 1 = a failure, 77 = shared data absent (skip).
"""

import glob
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import forward_ref  # noqa: E402

LOGIT_TOL = 1e-3      # golden/README.md: F32 / dequantized weights, engine in F32
GREEDY_MARGIN = 1e-2  # tokens must match while the golden margin is above this
ORDER_GAP = 2 * LOGIT_TOL  # golden neighbours closer than this may swap


def shared_dir():
    env = os.environ.get("ONELLM_SHARED_DIR")
    if env:
        return env
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(os.path.dirname(repo), "shared")


def golden_files(shared):
    base = os.path.join(shared, "golden", "logits")
    files = []
    for path in sorted(glob.glob(os.path.join(base, "kv_f32", "*.json"))):
        model = os.path.basename(path).rsplit(".", 2)[0]
        # kv_f32 is exact math only for F32 weights; quantized ones use dequant_f32.
        if model == "stories260K" or model.endswith("-F32"):
            files.append((path, model))
    for path in sorted(glob.glob(os.path.join(base, "dequant_f32", "*.json"))):
        files.append((path, os.path.basename(path).rsplit(".", 2)[0]))
    return files


def check_file(golden, logits):
    """Returns (list of failure messages, dict of measured maxima)."""
    fails = []
    n_prompt = len(golden["tokens"])
    stats = {"top": 0.0, "row_stats": 0.0, "full": None, "margin": 0.0, "greedy_checked": 0}

    for entry in golden["top"]:
        pos = entry["pos"]
        row = logits[pos]
        ids = np.array(entry["ids"])
        gold = np.array(entry["logits"], dtype=np.float64)
        diff = np.abs(row[ids] - gold)
        stats["top"] = max(stats["top"], float(diff.max()))
        if diff.max() > LOGIT_TOL:
            i = int(diff.argmax())
            fails.append(f"pos {pos}: logit of id {ids[i]} = {row[ids[i]]:.6f}, golden {gold[i]:.6f}")
        # Order of the golden top-k, where golden neighbours are clearly apart.
        for i in range(len(ids) - 1):
            if gold[i] - gold[i + 1] > ORDER_GAP and not row[ids[i]] > row[ids[i + 1]]:
                fails.append(f"pos {pos}: id {ids[i]} should rank above id {ids[i + 1]}")
        # Nothing outside the golden top-k may clearly beat its last member.
        outside = np.delete(row, ids)
        if outside.size and outside.max() > gold[-1] + ORDER_GAP:
            fails.append(f"pos {pos}: a token outside the golden top-{len(ids)} has logit {outside.max():.6f} "
                         f"> golden k-th {gold[-1]:.6f}")
        lse = float(np.log(np.sum(np.exp(row - row.max()))) + row.max())
        for name, ours in (("logsumexp", lse), ("mean", float(row.mean())), ("std", float(row.std()))):
            d = abs(ours - entry[name])
            stats["row_stats"] = max(stats["row_stats"], d)
            if d > LOGIT_TOL:
                fails.append(f"pos {pos}: {name} {ours:.6f}, golden {entry[name]:.6f}")

    if "logits" in golden:
        full = np.array(golden["logits"], dtype=np.float64)
        d = np.abs(logits[:n_prompt] - full)
        stats["full"] = float(d.max())
        if d.max() > LOGIT_TOL:
            pos, tok = np.unravel_index(int(d.argmax()), d.shape)
            fails.append(f"full rows: pos {pos} id {tok}: {logits[pos, tok]:.6f}, golden {full[pos, tok]:.6f}")

    greedy = golden["greedy"]
    for i, (tok, margin) in enumerate(zip(greedy["tokens"], greedy["margins"])):
        if margin <= GREEDY_MARGIN:
            break
        row = logits[n_prompt - 1 + i]
        top2 = np.sort(row)[-2:]
        stats["margin"] = max(stats["margin"], abs(float(top2[1] - top2[0]) - margin))
        stats["greedy_checked"] = i + 1
        if int(row.argmax()) != tok:
            fails.append(f"greedy step {i}: reference picks {int(row.argmax())}, golden {tok} (margin {margin:.4g})")
            break
    return fails, stats


def main():
    shared = shared_dir()
    if not os.path.isdir(os.path.join(shared, "golden", "logits")):
        print(f"SKIP: shared golden data not found at {shared} (set ONELLM_SHARED_DIR)")
        return 77
    files = golden_files(shared)
    if not files:
        print(f"FAIL: no golden logit files under {shared}/golden/logits")
        return 1
    models = {}
    passed = failed = 0
    for path, model_name in files:
        rel = os.path.relpath(path, os.path.join(shared, "golden", "logits"))
        golden = json.load(open(path))
        model_path = os.path.join(shared, "models", model_name + ".gguf")
        try:
            if model_name not in models:
                models[model_name] = forward_ref.Model(model_path).load()
            m = models[model_name]
            logits = forward_ref.forward(m, golden["tokens"] + golden["greedy"]["tokens"])
            fails, st = check_file(golden, logits)
        except Exception as e:  # a reader/forward error is a failure of this file, not a crash
            fails, st = [f"{type(e).__name__}: {e}"], None
        if st is not None:
            full = "n/a" if st["full"] is None else f"{st['full']:.3g}"
            print(f"{rel}: max |diff| top-20 {st['top']:.3g}, full rows {full}, row stats {st['row_stats']:.3g}, "
                  f"greedy {st['greedy_checked']}/{len(golden['greedy']['tokens'])} checked "
                  f"(margin diff {st['margin']:.3g})")
        if fails:
            failed += 1
            print(f"FAIL {rel} (model {model_path}):")
            for msg in fails[:10]:
                print("    " + msg)
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

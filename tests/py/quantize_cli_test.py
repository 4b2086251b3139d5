"""End-to-end check of `onellm quantize` through the real binary ($ONELLM_BIN).

Every file it writes is read back with the independent NumPy reader (gguf_ref.py): the type of
each tensor must follow the Q4_K_M mix (stated here from llama.cpp's documented rule, not from
onellm's code), every de-quantized matrix must be close to the F32 source (relative error bounded
per type), everything else copied exactly, all metadata kept. The result must run, must not
depend on the thread count, and bad input must fail with exit code 1 and a message naming it,
leaving no file behind. Exit 77 = skipped (no binary).
"""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_check  # noqa: E402
from cli_check import BIN, check, must, onellm  # noqa: E402
from gguf_ref import GgufFile  # noqa: E402

# Relative RMS error ||dequantized - source|| / ||source|| of the random models' weights; worst
# tensor measured: 0.073 (Q4_K), 0.018 (Q6_K), 0.0054 (Q8_0), 0.044 (Q5_0). Bounds 1.5x that.
MAX_RELATIVE_ERROR = {"Q4_K": 0.11, "Q6_K": 0.027, "Q8_0": 0.008, "Q5_0": 0.065, "F16": 0.001, "F32": 0.0}


def expected_q4_k_m(name, n_dims, n_layer, tied):
    """The Q4_K_M type of a tensor of a model whose rows are whole 256-blocks."""
    if n_dims < 2 or "_norm" in name:
        return "F32"
    if name == "output.weight" or (tied and name == "token_embd.weight"):
        return "Q6_K"
    m = re.match(r"blk\.(\d+)\.(attn_v|ffn_down)\.weight", name)
    if m:
        layer = int(m.group(1))
        eighth = n_layer // 8
        more_bits = layer < eighth or layer >= 7 * n_layer // 8 or (layer - eighth) % 3 == 2
        return "Q6_K" if more_bits else "Q4_K"
    return "Q4_K"


def compare_to_source(src, out, expected_type, what):
    for name, t in src.tensors.items():
        q = out.tensors.get(name)
        if q is None:
            check(False, f"{what}: {name} is missing")
            continue
        check(q.dims == t.dims, f"{what}: {name} dims {q.dims} != {t.dims}")
        want = expected_type(name, len(t.dims))
        check(q.type_name == want, f"{what}: {name} is {q.type_name}, expected {want}")
        a, b = src.tensor_array(name), out.tensor_array(name)
        err = float(np.linalg.norm(b - a) / max(np.linalg.norm(a), 1e-30))
        bound = MAX_RELATIVE_ERROR.get(q.type_name, 0.0)
        check(err <= bound, f"{what}: {name} ({q.type_name}) relative error {err:.4f} > {bound}")
    for key, value in src.metadata.items():
        if key == "general.file_type":
            continue
        same = out.metadata.get(key)
        if isinstance(value, np.ndarray):
            check(isinstance(same, np.ndarray) and np.array_equal(same, value), f"{what}: metadata {key} changed")
        else:
            check(same == value, f"{what}: metadata {key} changed: {same!r} != {value!r}")


def main():
    if not BIN or not os.path.exists(BIN):
        print("skipped: ONELLM_BIN not set")
        return 77
    with tempfile.TemporaryDirectory() as d:
        src_path = os.path.join(d, "src.gguf")
        must("make-tiny-model", "--arch", "llama", "--type", "F32", "--n-embd", "256", "--n-layer", "8",
             "--n-head", "4", "--n-head-kv", "1", "--n-ff", "512", "--seed", "3", "-o", src_path)
        src = GgufFile(src_path)

        # Q4_K_M: the mix, values close to the source, the metadata, the file type.
        q_path = os.path.join(d, "q4km.gguf")
        _, err = must("quantize", src_path, q_path, "Q4_K_M", "-t", "2")
        check("Q4_K x" in err and "Q6_K x" in err, "quantize's summary names the types: " + err)
        check("\r" not in err and "quantizing:" not in err, "no progress redraws when stderr is not a terminal: " + err)
        q = GgufFile(q_path)
        compare_to_source(src, q, lambda n, nd: expected_q4_k_m(n, nd, 8, False), "Q4_K_M")
        check(q.metadata.get("general.file_type") == 15, "general.file_type is llama.cpp's Q4_K_M (15)")
        out, _ = must("info", q_path)
        check("Q4_K - Medium" in out, "info names the recipe: " + out)
        # One thread writes the same bytes.
        q1_path = os.path.join(d, "q4km-t1.gguf")
        must("quantize", src_path, q1_path, "q4_k", "-t", "1")
        check(open(q_path, "rb").read() == open(q1_path, "rb").read(), "-t 1 and -t 2 write the same bytes")
        out, _ = must("run", "-m", q_path, "-p", "hello", "-n", "4", "--temp", "0")
        check(len(out) > 0, "the quantized model generates")

        # F16: matrices rounded to half precision exactly, the rest copied.
        f16_path = os.path.join(d, "f16.gguf")
        must("quantize", src_path, f16_path, "F16")
        f16 = GgufFile(f16_path)
        compare_to_source(src, f16, lambda n, nd: "F16" if nd >= 2 else "F32", "F16")
        name = "blk.3.ffn_up.weight"
        check(np.array_equal(f16.tensor_array(name), src.tensor_array(name).astype(np.float16).astype(np.float32)),
              "F16 is round-to-nearest half precision")

        # A tied qwen2 whose 96-wide rows no 256-block divides: the legacy fallbacks.
        tied_path = os.path.join(d, "tied.gguf")
        must("make-tiny-model", "--arch", "qwen2", "--type", "F32", "--n-embd", "96", "--n-layer", "2",
             "--n-head", "2", "--n-head-kv", "1", "--n-ff", "256", "--tied", "-o", tied_path)
        tq_path = os.path.join(d, "tied-q4km.gguf")
        must("quantize", tied_path, tq_path, "Q4_K_M")

        def tied_type(n, nd):
            t = expected_q4_k_m(n, nd, 2, True)
            if t == "F32" or "ffn_down" in n:  # ffn_down's rows are the 256 of n_ff
                return t
            return {"Q6_K": "Q8_0", "Q4_K": "Q5_0"}[t]
        compare_to_source(GgufFile(tied_path), GgufFile(tq_path), tied_type, "tied Q4_K_M")

        # --dry-run writes nothing and prints the plan.
        dry_path = os.path.join(d, "dry.gguf")
        out, _ = must("quantize", src_path, dry_path, "Q4_K_M", "--dry-run")
        check(not os.path.exists(dry_path), "--dry-run wrote a file")
        check(re.search(r"blk\.0\.attn_v\.weight\s+F32\s+->\s+Q6_K", out) is not None, "--dry-run plan: " + out)

        # Bad input: exit 1, a message naming it, no file left behind.
        before = set(os.listdir(d))
        truncated = os.path.join(d, "truncated.gguf")
        with open(src_path, "rb") as f, open(truncated, "wb") as g:
            g.write(f.read()[:5000])
        cases = [
            (["quantize", src_path, os.path.join(d, "x.gguf"), "Q7_K"], "Q4_K_M"),
            (["quantize", q_path, os.path.join(d, "x.gguf"), "Q4_0"], "--allow-requantize"),
            (["quantize", src_path, src_path, "Q4_0"], "overwrite"),
            (["quantize", src_path, os.path.join(d, ".", "src.gguf"), "Q4_0"], "overwrite"),
            (["quantize", truncated, os.path.join(d, "x.gguf"), "Q4_0"], "truncated.gguf"),
            (["quantize", src_path, os.path.join(d, "no", "such", "x.gguf"), "Q4_0"], "cannot create"),
            (["quantize", src_path, os.path.join(d, "x.gguf"), "Q4_0", "--output-type", "IQ2_XXS"], "IQ2_XXS"),
        ]
        for args, needle in cases:
            rc, _, err = onellm(*args)
            check(rc == 1 and needle in err, f"onellm {' '.join(args[3:])}: rc {rc}, expected 1 and '{needle}': {err}")
        check(set(os.listdir(d)) == before | {"truncated.gguf"}, "a failed quantize left a file behind")
        rc, _, err = onellm("quantize", src_path)
        check(rc == 2 and "usage" in err, "missing arguments print the usage")
        # A full disk, as a file size limit (SIGXFSZ ignored, so write() fails with EFBIG).
        full = os.path.join(d, "full.gguf")
        r = subprocess.run(["bash", "-c", 'trap "" XFSZ; ulimit -f 64; exec "$0" quantize "$1" "$2" Q8_0',
                            BIN, src_path, full], capture_output=True, timeout=600)
        err = r.stderr.decode("utf-8", "replace")
        check(r.returncode == 1 and "write failed" in err, f"a full disk: rc {r.returncode}, {err}")
        check(set(os.listdir(d)) == before | {"truncated.gguf"}, "a failed write left a file behind")
        # An already quantized input converts when asked to.
        must("quantize", q_path, os.path.join(d, "q4_0.gguf"), "Q4_0", "--allow-requantize")

    print("quantize CLI:", "ok" if cli_check.failed == 0 else f"{cli_check.failed} failed")
    return 1 if cli_check.failed else 0


if __name__ == "__main__":
    sys.exit(main())

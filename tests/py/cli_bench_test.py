"""End-to-end checks of `onellm bench`, the llama-bench style benchmark.

Runs the real binary ($ONELLM_BIN) on ../shared/models/stories260K.gguf and checks what tooling
written for llama-bench reads: one JSON row per test with llama-bench's field names, the depth
option (-d: the context already holds that many tokens), and the decode bound, recomputed here
from the model's shape as read by the independent GGUF reader (gguf_ref.py). Bad options must
fail with a message naming the option. Exit 77 = skipped (no shared data or no binary).
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from gguf_ref import GgufFile  # noqa: E402

BIN = os.environ.get("ONELLM_BIN", "")
SHARED = os.environ.get("ONELLM_SHARED_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
MODEL = os.path.join(SHARED, "models", "stories260K.gguf")

passed = 0
failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def onellm(*args):
    return subprocess.run([BIN, *args], capture_output=True, timeout=300)


def kv_bytes_per_position(path):
    """K and V of one position in every layer, F16 (the default cache type)."""
    md = GgufFile(path).metadata
    arch = md["general.architecture"]
    n_layer = md[f"{arch}.block_count"]
    n_embd = md[f"{arch}.embedding_length"]
    n_head = md[f"{arch}.attention.head_count"]
    n_head_kv = md.get(f"{arch}.attention.head_count_kv", n_head)
    return 2 * n_layer * n_head_kv * (n_embd // n_head) * 2


def test_json_rows_with_depth():
    r = onellm("bench", "-m", MODEL, "-p", "16", "-n", "4", "-d", "0,40", "-r", "2", "-t", "2", "--json")
    check(r.returncode == 0, f"bench --json exit code {r.returncode}: {r.stderr.decode()[-300:]}")
    if r.returncode != 0:
        return
    rows = json.loads(r.stdout)
    got = [(row["n_prompt"], row["n_gen"], row["n_depth"]) for row in rows]
    check(got == [(16, 0, 0), (0, 4, 0), (16, 0, 40), (0, 4, 40)], f"tests and their order: {got}")
    for row in rows:
        for field in ("model_filename", "model_type", "model_size", "model_n_params", "n_batch", "n_threads",
                      "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "samples_ns", "samples_ts", "peak_rss_bytes"):
            check(field in row, f"field {field} in {sorted(row)}")
        check(row["n_threads"] == 2, f"n_threads {row['n_threads']}")
        check(row.get("cpu_level") in ("scalar", "avx2", "avx2-vnni", "avx512", "amx", "neon"),
              f"the kernels' CPU level: {row.get('cpu_level')}")
        check(len(row["samples_ts"]) == 2 and len(row["samples_ns"]) == 2, f"two samples per row: {row}")
        check(row["avg_ts"] > 0 and all(t > 0 for t in row["samples_ts"]), f"positive speeds: {row}")
        tokens = row["n_prompt"] + row["n_gen"]
        for ns, ts in zip(row["samples_ns"], row["samples_ts"]):
            check(abs(tokens / (ns * 1e-9) - ts) <= 1e-6 * ts, f"t/s is tokens over time: {ns} ns, {ts} t/s")
    # The bound of a decode row: bandwidth over (weights + KV of the positions it attends to).
    # Two rows at different depths give the KV bytes per position, which must be the model's.
    tg0, tg40 = rows[1], rows[3]
    bw = tg0["mem_bandwidth_bytes_per_s"]
    check(bw > 0, f"bandwidth {bw}")
    # The probe streams at least 512 MiB (the tiny model's step is smaller), so caches cannot serve it.
    check(tg0["mem_probe_bytes"] >= 512 << 20, f"probe of {tg0['mem_probe_bytes']} bytes")
    if bw > 0:
        per_step0, per_step40 = bw / tg0["decode_bound_ts"], bw / tg40["decode_bound_ts"]
        kv = kv_bytes_per_position(MODEL)
        check(abs((per_step40 - per_step0) / 40 - kv) < 1e-3 * kv,
              f"KV bytes per position from the bounds {(per_step40 - per_step0) / 40}, model's {kv}")


def test_markdown_names_the_depth():
    r = onellm("bench", "-m", MODEL, "-p", "8", "-n", "2", "-d", "24", "-r", "1", "-t", "1")
    out = r.stdout.decode()
    check(r.returncode == 0, f"bench exit code {r.returncode}: {r.stderr.decode()[-300:]}")
    check("| pp8 @ d24 |" in out and "| tg2 @ d24 |" in out, f"depth in the test names:\n{out}")
    check("| tg2 |" not in out, f"no depth-0 rows unless asked:\n{out}")


def test_bad_options():
    for args, name in ((["-d", "x"], "-d"), (["-d", "-5"], "-d"), (["-p", "1,,2"], "-p"), (["-n", "abc"], "-n")):
        r = onellm("bench", "-m", MODEL, "-r", "1", *args)
        err = r.stderr.decode()
        check(r.returncode != 0, f"bench {args} must fail, exit code {r.returncode}")
        check(name in err and "Traceback" not in err and "terminate" not in err, f"bench {args} error: {err!r}")
    r = onellm("bench", "-m", os.path.join(SHARED, "models", "no-such-model.gguf"), "-r", "1")
    check(r.returncode != 0 and "no-such-model.gguf" in r.stderr.decode(), f"missing model: {r.stderr!r}")


def main():
    if not BIN or not os.path.exists(BIN):
        print("skipped: ONELLM_BIN not set")
        return 77
    if not os.path.exists(MODEL):
        print(f"skipped: {MODEL} not found (../shared absent)")
        return 77
    test_json_rows_with_depth()
    test_markdown_names_the_depth()
    test_bad_options()
    print(f"{passed} checks passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

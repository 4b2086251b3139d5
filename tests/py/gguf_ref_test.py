#!/usr/bin/python3
"""Self-tests of the reference reader (gguf_ref.py), independent of the C++ engine.

1. De-quantization: the vectorized NumPy code against a per-element transcription
   of ggml's block layouts (one formula per element, written from the spec), on
   random blocks, plus hand-made blocks with known values.
2. The GGUF reader on files written here byte by byte: every metadata type,
   nested arrays, v2 and v3, a non-default alignment, and malformed inputs.
"""

import os
import struct
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_ref  # noqa: E402

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


# ---------------------------------------------------------------- de-quantization

def f16(b, off):
    return float(np.frombuffer(bytes(b[off:off + 2]), "<f2")[0])


def k_scale_min(s, j):
    """The j-th (scale, min) pair of a Q4_K/Q5_K block's 12 packed bytes."""
    if j < 4:
        return s[j] & 63, s[j + 4] & 63
    return (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4)


def legacy_nibble(qs, e):
    """Q4_x/Q5_x: element e < 16 is the low nibble of qs[e], e >= 16 the high nibble of qs[e-16]."""
    return qs[e] & 15 if e < 16 else qs[e - 16] >> 4


def scalar_block(name, b):
    """The block's values, one element at a time, in float64."""
    b = [int(x) for x in b]
    out = []
    if name == "Q4_0":
        out = [(legacy_nibble(b[2:], e) - 8) * f16(b, 0) for e in range(32)]
    elif name == "Q4_1":
        out = [legacy_nibble(b[4:], e) * f16(b, 0) + f16(b, 2) for e in range(32)]
    elif name in ("Q5_0", "Q5_1"):
        legacy1 = name == "Q5_1"
        qh = struct.unpack("<I", bytes(b[4:8] if legacy1 else b[2:6]))[0]
        qs = b[8:] if legacy1 else b[6:]
        for e in range(32):
            q = legacy_nibble(qs, e) | (((qh >> e) & 1) << 4)
            out.append(q * f16(b, 0) + f16(b, 2) if legacy1 else (q - 16) * f16(b, 0))
    elif name == "Q8_0":
        out = [(x - 256 if x > 127 else x) * f16(b, 0) for x in b[2:34]]
    elif name in ("Q4_K", "Q5_K"):
        d, dmin, sc = f16(b, 0), f16(b, 2), b[4:16]
        qh, qs = (b[16:48], b[48:176]) if name == "Q5_K" else (None, b[16:144])
        for e in range(256):
            sub, l = e // 32, e % 32
            byte = qs[(sub // 2) * 32 + l]
            q = byte & 15 if sub % 2 == 0 else byte >> 4
            if qh is not None:
                q |= ((qh[l] >> sub) & 1) << 4
            s, m = k_scale_min(sc, sub)
            out.append(d * s * q - dmin * m)
    elif name == "Q6_K":
        ql, qh, d = b[0:128], b[128:192], f16(b, 208)
        sc = [x - 256 if x > 127 else x for x in b[192:208]]
        for e in range(256):
            half, r = e // 128, e % 128
            g, l = r // 32, r % 32
            byte = ql[half * 64 + (g % 2) * 32 + l]
            lo = byte & 15 if g < 2 else byte >> 4
            hi = (qh[half * 32 + l] >> (2 * g)) & 3
            out.append(d * sc[half * 8 + r // 16] * ((lo | (hi << 4)) - 32))
    elif name in ("Q2_K", "Q3_K"):
        # Element e = 16 j + l2 of sub-block j; its 2 low bits at bit 2 ((j % 8) // 2) of
        # qs[32 (j // 8) + 16 (j % 2) + l2]; Q3_K's third bit at bit j // 2 of hmask[16 (j % 2) + l2].
        q2 = name == "Q2_K"
        qs = b[16:80] if q2 else b[32:96]
        for e in range(256):
            j, l2 = e // 16, e % 16
            q = (qs[32 * (j // 8) + 16 * (j % 2) + l2] >> (2 * ((j % 8) // 2))) & 3
            if q2:
                out.append(f16(b, 80) * (b[j] & 15) * q - f16(b, 82) * (b[j] >> 4))
            else:
                s = b[96:108]
                sc = ((s[j] & 15) if j < 8 else (s[j - 8] >> 4)) | (((s[8 + j % 4] >> (2 * (j // 4))) & 3) << 4)
                if not (b[16 * (j % 2) + l2] >> (j // 2)) & 1:
                    q -= 4
                out.append(f16(b, 108) * (sc - 32) * q)
    elif name == "IQ4_NL":
        out = [IQ4[legacy_nibble(b[2:], e)] * f16(b, 0) for e in range(32)]
    elif name == "IQ4_XS":
        d, scales_h = f16(b, 0), b[2] | (b[3] << 8)
        for e in range(256):
            sub, l = e // 32, e % 32
            ls = ((b[4 + sub // 2] >> (4 * (sub % 2))) & 15) | (((scales_h >> (2 * sub)) & 3) << 4)
            out.append(d * (ls - 32) * IQ4[legacy_nibble(b[8 + 16 * sub:], l)])
    return out


# ggml's kvalues_iq4nl, written out again so the test does not trust gguf_ref's copy.
IQ4 = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]


def random_blocks(name, n, rng):
    _, _, block_bytes = gguf_ref.TENSOR_TYPES[gguf_ref.TYPE_IDS[name]]
    raw = rng.integers(0, 256, size=(n, block_bytes), dtype=np.uint8)
    # fp16 fields: small finite values (random bytes could be inf/NaN).
    fields = {"Q6_K": [208], "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q4_1": [0, 2], "Q5_1": [0, 2]}.get(name, [0])
    for off in fields:
        raw[:, off:off + 2] = rng.uniform(-0.05, 0.05, n).astype("<f2").view(np.uint8).reshape(n, 2)
    return raw


def test_dequantize():
    rng = np.random.default_rng(7)
    for name in ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"):
        tid = gguf_ref.TYPE_IDS[name]
        _, block, _ = gguf_ref.TENSOR_TYPES[tid]
        raw = random_blocks(name, 6, rng)
        got = gguf_ref.dequantize(tid, raw.reshape(-1), 6 * block)
        want = np.array([v for blk in raw for v in scalar_block(name, blk)])
        err = np.abs(got - want).max() / max(1e-30, np.abs(want).max())
        check(err < 1e-6, f"{name}: vectorized vs per-element max rel err {err:.2e}")

    # Hand-made blocks with known values.
    q4 = np.zeros(18, np.uint8)
    q4[0:2] = np.array([0.5], "<f2").view(np.uint8)
    q4[2] = 0x9F  # element 0: 15-8 = 7, element 16: 9-8 = 1
    q4[3] = 0x08  # element 1: 8-8 = 0, element 17: 0-8 = -8
    v = gguf_ref.dequantize(gguf_ref.TYPE_IDS["Q4_0"], q4, 32)
    check((v[0], v[16], v[1], v[17], v[2]) == (3.5, 0.5, 0.0, -4.0, -4.0), f"Q4_0 known block: {v[:3]}, {v[16:18]}")
    q5 = np.zeros(22, np.uint8)
    q5[0:2] = np.array([1.0], "<f2").view(np.uint8)
    q5[2:6] = np.array([1 << 20], "<u4").view(np.uint8)  # high bit of element 20 only
    v = gguf_ref.dequantize(gguf_ref.TYPE_IDS["Q5_0"], q5, 32)
    check(v[20] == 0.0 and v[0] == -16.0 and v[4] == -16.0, f"Q5_0 known block: {v[0]}, {v[4]}, {v[20]}")
    iq = np.zeros(136, np.uint8)
    iq[0:2] = np.array([0.5], "<f2").view(np.uint8)
    iq[2:4] = np.array([0b11 << 14], "<u2").view(np.uint8)  # sub-block 7: ls high bits 3
    iq[4] = 0x2F     # sub-block 0: ls 15 -> -17; sub-block 1: ls 2 -> -30
    iq[7] = 0x10     # sub-block 7: ls 0x31 = 49 -> 17
    iq[8] = 0xF0     # element 0: value -127, element 16: 113
    iq[8 + 16 * 7 + 15] = 0x08  # sub-block 7, element 15: value 1, element 31: -127
    v = gguf_ref.dequantize(gguf_ref.TYPE_IDS["IQ4_XS"], iq, 256)
    check((v[0], v[16], v[32], v[224 + 15], v[224 + 31]) == (-17 * 0.5 * -127, -17 * 0.5 * 113, -30 * 0.5 * -127,
                                                             17 * 0.5, 17 * 0.5 * -127),
          f"IQ4_XS known block: {v[0]}, {v[16]}, {v[32]}, {v[239]}, {v[255]}")
    bf = np.array([0x3F80, 0xC040, 0x0000], "<u2").view(np.uint8)
    check(list(gguf_ref.dequantize(30, bf, 3)) == [1.0, -3.0, 0.0], "BF16 1, -3, 0")
    f16s = np.array([1.5, -2.25, 65504.0], "<f2").view(np.uint8)
    check(list(gguf_ref.dequantize(1, f16s, 3)) == [1.5, -2.25, 65504.0], "F16 values")


# ---------------------------------------------------------------- GGUF reader

def test_reader(tmp):
    g = gguf_ref
    kvs = [
        ("general.alignment", g.UINT32, 64),
        ("u8", g.UINT8, 200), ("i8", g.INT8, -5), ("u16", g.UINT16, 60000), ("i16", g.INT16, -30000),
        ("u32", g.UINT32, 4000000000), ("i32", g.INT32, -2000000000), ("f32", g.FLOAT32, 0.25),
        ("b", g.BOOL, True), ("s", g.STRING, "héllo"), ("u64", g.UINT64, 2 ** 63 + 5),
        ("i64", g.INT64, -(2 ** 62)), ("f64", g.FLOAT64, 1e-300),
        ("arr.i32", g.ARRAY, (g.INT32, [1, -2, 3])), ("arr.str", g.ARRAY, (g.STRING, ["a", "", "ccc"])),
        ("arr.bool", g.ARRAY, (g.BOOL, [True, False])),
        ("arr.nested", g.ARRAY, (g.ARRAY, [(g.UINT8, [1, 2]), (g.STRING, ["x"]), (g.UINT8, [])])),
        ("arr.empty", g.ARRAY, (g.FLOAT32, [])),
    ]
    m = np.arange(12, dtype="<f4")
    h = np.array([1.0, 2.0, -0.5], "<f2")
    tensors = [("m", [4, 3], 0, m.tobytes()), ("h", [3], 1, h.tobytes())]
    for version in (2, 3):
        path = os.path.join(tmp, f"v{version}.gguf")
        gguf_ref.write_gguf(path, kvs, tensors, version=version, alignment=64)
        f = g.GgufFile(path)
        want = {k: v for k, _, v in kvs}
        want["arr.i32"], want["arr.str"], want["arr.bool"] = [1, -2, 3], ["a", "", "ccc"], [True, False]
        want["arr.nested"], want["arr.empty"] = [[1, 2], ["x"], []], []
        for key, value in want.items():
            check(f.metadata.get(key) == value, f"v{version} {key}: {f.metadata.get(key)!r} != {value!r}")
        check(f.version == version and f.alignment == 64 and f.data_offset % 64 == 0, f"v{version} header")
        a = f.tensor_array("m")
        check(a.shape == (3, 4) and a[2, 1] == 9.0, f"v{version} tensor m shape {a.shape}")
        check(list(f.tensor_array("h")) == [1.0, 2.0, -0.5], f"v{version} tensor h")

    def rejects(data, what):
        path = os.path.join(tmp, "bad.gguf")
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            g.GgufFile(path)
        except g.GgufError:
            check(True, what)
        else:
            check(False, f"accepted {what}")

    good = open(os.path.join(tmp, "v3.gguf"), "rb").read()
    rejects(b"GGML" + good[4:], "bad magic")
    rejects(good[:4] + struct.pack("<I", 1) + good[8:], "version 1")
    rejects(good[:100], "truncated metadata")
    rejects(good[:-8], "truncated tensor data")


def shared_dir():
    env = os.environ.get("ONELLM_SHARED_DIR")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return env or os.path.join(os.path.dirname(repo), "shared")


def test_shared_roundtrip(tmp):
    """Re-writing llama.cpp-made files from what the reader parsed gives the same bytes,
    so no metadata, tensor info, offset or padding was misread."""
    models = os.path.join(shared_dir(), "models")
    if not os.path.isdir(models):
        print(f"note: {models} absent, round-trip of real files skipped")
        return
    for name in ("stories260K.gguf", "tiny-qwen2-Q4_0.gguf", "vocab/ggml-vocab-llama-spm.gguf"):
        src = os.path.join(models, name)
        if not os.path.exists(src):
            continue
        dst = os.path.join(tmp, "copy.gguf")
        try:
            gguf_ref.rewrite_gguf(src, dst)
            same = open(src, "rb").read() == open(dst, "rb").read()
        except gguf_ref.GgufError as e:
            same = False
            print(f"    {e}")
        check(same, f"{name}: reader + writer round trip is byte-identical")


def main():
    test_dequantize()
    with tempfile.TemporaryDirectory() as tmp:
        test_reader(tmp)
        test_shared_roundtrip(tmp)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

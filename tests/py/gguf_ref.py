"""An independent GGUF reader and dequantizer in NumPy, written from the GGUF/ggml format
description (not from onellm's C++), used as the reference the C++ engine is checked against."""
import struct

import numpy as np

GGUF_MAGIC = b"GGUF"
# value type -> struct format (scalars)
_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
# ggml type id -> (name, elements per block, bytes per block)
TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210), 30: ("BF16", 1, 2),
}


class GGUF:
    def __init__(self, path):
        self.path = path
        self.buf = np.memmap(path, dtype=np.uint8, mode="r")
        self.pos = 0
        if bytes(self.buf[:4]) != GGUF_MAGIC:
            raise ValueError(f"{path}: not GGUF")
        self.pos = 4
        self.version = self._read("<I")
        n_tensors = self._read("<Q")
        n_kv = self._read("<Q")
        self.meta = {}
        for _ in range(n_kv):
            key = self._string()
            vtype = self._read("<I")
            self.meta[key] = self._value(vtype)
        align = int(self.meta.get("general.alignment", 32))
        infos = []
        for _ in range(n_tensors):
            name = self._string()
            n_dims = self._read("<I")
            dims = [self._read("<Q") for _ in range(n_dims)]
            ttype = self._read("<I")
            offset = self._read("<Q")
            infos.append((name, dims, ttype, offset))
        data_start = (self.pos + align - 1) // align * align
        self.tensors = {}
        for name, dims, ttype, offset in infos:
            self.tensors[name] = (dims, ttype, data_start + offset)

    def _read(self, fmt):
        size = struct.calcsize(fmt)
        (v,) = struct.unpack(fmt, bytes(self.buf[self.pos:self.pos + size]))
        self.pos += size
        return v

    def _string(self):
        n = self._read("<Q")
        s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8", errors="surrogateescape")
        self.pos += n
        return s

    def _value(self, vtype):
        if vtype in _SCALAR:
            return self._read(_SCALAR[vtype])
        if vtype == 8:
            return self._string()
        if vtype == 9:
            etype = self._read("<I")
            n = self._read("<Q")
            return [self._value(etype) for _ in range(n)]
        raise ValueError(f"unknown GGUF value type {vtype}")

    def tensor(self, name):
        """The tensor dequantized to float64, shaped with the last ggml dim first (rows, cols)."""
        dims, ttype, start = self.tensors[name]
        n = int(np.prod(dims))
        tname, block, nbytes = TYPES[ttype]
        raw = np.asarray(self.buf[start:start + n // block * nbytes])
        flat = dequantize(tname, raw, n)
        return flat.reshape(list(reversed(dims)))


def _f16(raw2):
    return raw2.copy().view(np.float16).astype(np.float64)


def dequantize(tname, raw, n):
    if tname == "F32":
        return raw.view(np.float32).astype(np.float64)
    if tname == "F16":
        return raw.view(np.float16).astype(np.float64)
    if tname == "BF16":
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    fn = {"Q4_0": _q4_0, "Q4_1": _q4_1, "Q5_0": _q5_0, "Q5_1": _q5_1, "Q8_0": _q8_0, "Q4_K": _q4_k,
          "Q5_K": _q5_k, "Q6_K": _q6_k}[tname]
    _, block, nbytes = next(v for v in TYPES.values() if v[0] == tname)
    return fn(raw.reshape(n // block, nbytes)).reshape(-1)


def _nibbles(qs):  # (nb, 16) -> (nb, 32): low nibbles are elements 0..15, high ones 16..31
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float64)


def _q4_0(b):
    d = _f16(b[:, 0:2])
    return (_nibbles(b[:, 2:18]) - 8.0) * d


def _q4_1(b):
    d, m = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    return _nibbles(b[:, 4:20]) * d + m


def _high_bits32(qh4):  # (nb, 4) bytes -> (nb, 32) bit j of the little-endian u32
    qh = qh4.copy().view("<u4").astype(np.uint64)
    return ((qh >> np.arange(32, dtype=np.uint64)) & 1).astype(np.float64)


def _q5_0(b):
    d = _f16(b[:, 0:2])
    return (_nibbles(b[:, 6:22]) + 16.0 * _high_bits32(b[:, 2:6]) - 16.0) * d


def _q5_1(b):
    d, m = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    return (_nibbles(b[:, 8:24]) + 16.0 * _high_bits32(b[:, 4:8])) * d + m


def _q8_0(b):
    d = _f16(b[:, 0:2])
    return b[:, 2:34].copy().view(np.int8).astype(np.float64) * d


def _k_scales(sc):  # (nb, 12) -> scales (nb, 8), mins (nb, 8): 6-bit packed
    sc = sc.astype(np.int64)
    s = np.zeros((sc.shape[0], 8), np.int64)
    m = np.zeros((sc.shape[0], 8), np.int64)
    for j in range(8):
        if j < 4:
            s[:, j] = sc[:, j] & 63
            m[:, j] = sc[:, j + 4] & 63
        else:
            s[:, j] = (sc[:, j + 4] & 0x0F) | ((sc[:, j - 4] >> 6) << 4)
            m[:, j] = (sc[:, j + 4] >> 4) | ((sc[:, j] >> 6) << 4)
    return s.astype(np.float64), m.astype(np.float64)


def _q4_k(b):
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    s, m = _k_scales(b[:, 4:16])
    qs = b[:, 16:144]
    out = np.zeros((b.shape[0], 256))
    for c in range(4):  # 64 values per chunk: 32 low nibbles, then 32 high nibbles
        q = qs[:, 32 * c:32 * c + 32].astype(np.float64)
        lo, hi = np.floor(np.mod(q, 16)), np.floor(q / 16)
        out[:, 64 * c:64 * c + 32] = d * s[:, 2 * c:2 * c + 1] * lo - dmin * m[:, 2 * c:2 * c + 1]
        out[:, 64 * c + 32:64 * c + 64] = d * s[:, 2 * c + 1:2 * c + 2] * hi - dmin * m[:, 2 * c + 1:2 * c + 2]
    return out


def _q5_k(b):
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    s, m = _k_scales(b[:, 4:16])
    qh = b[:, 16:48].astype(np.int64)
    qs = b[:, 48:176].astype(np.int64)
    out = np.zeros((b.shape[0], 256))
    for c in range(4):
        q = qs[:, 32 * c:32 * c + 32]
        lo = (q & 0x0F) + 16 * ((qh >> (2 * c)) & 1)
        hi = (q >> 4) + 16 * ((qh >> (2 * c + 1)) & 1)
        out[:, 64 * c:64 * c + 32] = d * s[:, 2 * c:2 * c + 1] * lo - dmin * m[:, 2 * c:2 * c + 1]
        out[:, 64 * c + 32:64 * c + 64] = d * s[:, 2 * c + 1:2 * c + 2] * hi - dmin * m[:, 2 * c + 1:2 * c + 2]
    return out


def _q6_k(b):
    ql = b[:, 0:128].astype(np.int64)
    qh = b[:, 128:192].astype(np.int64)
    sc = b[:, 192:208].copy().view(np.int8).astype(np.float64)
    d = _f16(b[:, 208:210])
    out = np.zeros((b.shape[0], 256))
    for half in range(2):  # 128 values each
        L, H, S = ql[:, 64 * half:64 * half + 64], qh[:, 32 * half:32 * half + 32], sc[:, 8 * half:8 * half + 8]
        parts = [
            (L[:, 0:32] & 0x0F) | (((H >> 0) & 3) << 4),
            (L[:, 32:64] & 0x0F) | (((H >> 2) & 3) << 4),
            (L[:, 0:32] >> 4) | (((H >> 4) & 3) << 4),
            (L[:, 32:64] >> 4) | (((H >> 6) & 3) << 4),
        ]
        for k, q in enumerate(parts):
            scale = np.repeat(S[:, 2 * k:2 * k + 2], 16, axis=1)  # 16 values per scale
            out[:, 128 * half + 32 * k:128 * half + 32 * k + 32] = d * scale * (q - 32)
    return out

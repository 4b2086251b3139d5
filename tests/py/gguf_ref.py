"""Independent GGUF reader and NumPy de-quantizer (reference for onellm's tests).

Written from the GGUF spec and ggml's block layouts only; it shares no code with
the C++ engine, so agreement between the two means something. NumPy only.

    f = GgufFile("model.gguf")
    f.metadata["general.architecture"]      # -> "llama"
    f.tensors["blk.0.attn_q.weight"].dims   # ggml ne: dims[0] is the contiguous one
    w = f.tensor_array("blk.0.attn_q.weight")  # float32, shape reversed(dims)
"""

import struct

import numpy as np

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# GGUF metadata value types.
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR_DTYPES = {
    UINT8: np.dtype("<u1"), INT8: np.dtype("<i1"), UINT16: np.dtype("<u2"), INT16: np.dtype("<i2"),
    UINT32: np.dtype("<u4"), INT32: np.dtype("<i4"), FLOAT32: np.dtype("<f4"), BOOL: np.dtype("<u1"),
    UINT64: np.dtype("<u8"), INT64: np.dtype("<i8"), FLOAT64: np.dtype("<f8"),
}

# ggml tensor types this reference understands: id -> (name, elements per block, bytes per block).
TENSOR_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210),
    20: ("IQ4_NL", 32, 18), 23: ("IQ4_XS", 256, 136), 30: ("BF16", 1, 2),
}
TYPE_IDS = {name: tid for tid, (name, _, _) in TENSOR_TYPES.items()}


class GgufError(Exception):
    pass


class _Cursor:
    """Bounds-checked little-endian reads over the file bytes."""

    def __init__(self, buf, path):
        self.buf = buf
        self.pos = 0
        self.path = path

    def take(self, n, what):
        if n < 0 or self.pos + n > len(self.buf):
            raise GgufError(f"{self.path}: truncated while reading {what} at offset {self.pos}")
        start = self.pos
        self.pos += n
        return self.buf[start:self.pos]

    def scalar(self, fmt, what):
        size = struct.calcsize(fmt)
        return struct.unpack("<" + fmt, self.take(size, what))[0]

    def string(self, what):
        n = self.scalar("Q", what + " length")
        return bytes(self.take(n, what)).decode("utf-8", errors="surrogateescape")


def _read_value(cur, vtype, what):
    if vtype == STRING:
        return cur.string(what)
    if vtype == ARRAY:
        elem_type = cur.scalar("I", what + " element type")
        count = cur.scalar("Q", what + " count")
        if elem_type in _SCALAR_DTYPES:
            dt = _SCALAR_DTYPES[elem_type]
            # Large numeric arrays (token scores/types) are read in one go.
            arr = np.frombuffer(cur.take(count * dt.itemsize, what), dtype=dt)
            return [bool(v) for v in arr] if elem_type == BOOL else arr.tolist()
        if elem_type in (STRING, ARRAY):
            return [_read_value(cur, elem_type, f"{what}[{i}]") for i in range(count)]
        raise GgufError(f"{cur.path}: {what}: unknown array element type {elem_type}")
    if vtype in _SCALAR_DTYPES:
        dt = _SCALAR_DTYPES[vtype]
        v = np.frombuffer(cur.take(dt.itemsize, what), dtype=dt)[0]
        if vtype == BOOL:
            return bool(v)
        return float(v) if vtype in (FLOAT32, FLOAT64) else int(v)
    raise GgufError(f"{cur.path}: {what}: unknown value type {vtype}")


class TensorInfo:
    def __init__(self, name, dims, type_id, offset):
        self.name = name
        self.dims = dims  # ggml ne order
        self.type_id = type_id
        self.offset = offset  # relative to the data section

    @property
    def type_name(self):
        return TENSOR_TYPES[self.type_id][0] if self.type_id in TENSOR_TYPES else f"type#{self.type_id}"

    @property
    def n_elements(self):
        n = 1
        for d in self.dims:
            n *= d
        return n

    @property
    def n_bytes(self):
        _, block, block_bytes = TENSOR_TYPES[self.type_id]
        return self.n_elements // block * block_bytes


class GgufFile:
    def __init__(self, path):
        self.path = path
        self.buf = np.memmap(path, dtype=np.uint8, mode="r")
        cur = _Cursor(memoryview(self.buf), path)
        if bytes(cur.take(4, "magic")) != GGUF_MAGIC:
            raise GgufError(f"{path}: not a GGUF file (bad magic)")
        self.version = cur.scalar("I", "version")
        if self.version not in (2, 3):
            raise GgufError(f"{path}: unsupported GGUF version {self.version}")
        n_tensors = cur.scalar("Q", "tensor count")
        n_kv = cur.scalar("Q", "metadata count")

        self.metadata = {}
        self.metadata_types = {}  # key -> value type; for arrays (ARRAY, element type)
        for i in range(n_kv):
            key = cur.string(f"metadata key #{i}")
            vtype = cur.scalar("I", f"type of {key}")
            if vtype == ARRAY:
                elem = np.frombuffer(cur.buf[cur.pos:cur.pos + 4], "<u4")
                self.metadata_types[key] = (ARRAY, int(elem[0]) if elem.size else None)
            else:
                self.metadata_types[key] = vtype
            self.metadata[key] = _read_value(cur, vtype, key)

        self.tensors = {}
        for i in range(n_tensors):
            name = cur.string(f"tensor name #{i}")
            n_dims = cur.scalar("I", f"{name} n_dims")
            if n_dims > 4:
                raise GgufError(f"{path}: tensor {name}: {n_dims} dimensions")
            dims = [cur.scalar("Q", f"{name} dim") for _ in range(n_dims)]
            type_id = cur.scalar("I", f"{name} type")
            offset = cur.scalar("Q", f"{name} offset")
            if name in self.tensors:
                raise GgufError(f"{path}: duplicate tensor {name}")
            self.tensors[name] = TensorInfo(name, dims, type_id, offset)

        self.alignment = int(self.metadata.get("general.alignment", DEFAULT_ALIGNMENT))
        if self.alignment <= 0 or self.alignment & (self.alignment - 1):
            raise GgufError(f"{path}: general.alignment {self.alignment} is not a power of two")
        self.data_offset = -(-cur.pos // self.alignment) * self.alignment

        for t in self.tensors.values():
            if t.type_id not in TENSOR_TYPES:
                continue  # only an error if someone asks for its data
            if t.offset % self.alignment:
                raise GgufError(f"{path}: tensor {t.name}: offset {t.offset} not aligned")
            if self.data_offset + t.offset + t.n_bytes > len(self.buf):
                raise GgufError(f"{path}: tensor {t.name}: data runs past the end of the file")

    def get(self, key, default=None):
        return self.metadata.get(key, default)

    def raw(self, name):
        """The tensor's bytes (a read-only view into the mapping)."""
        t = self._info(name)
        start = self.data_offset + t.offset
        return np.asarray(self.buf[start:start + t.n_bytes])

    def tensor_array(self, name):
        """De-quantized float32 array, shape = reversed ggml dims (rows, cols)."""
        t = self._info(name)
        flat = dequantize(t.type_id, self.raw(name), t.n_elements)
        return flat.reshape(tuple(reversed(t.dims)) if t.dims else ())

    def _info(self, name):
        if name not in self.tensors:
            raise GgufError(f"{self.path}: no tensor named {name}")
        t = self.tensors[name]
        if t.type_id not in TENSOR_TYPES:
            raise GgufError(f"{self.path}: tensor {name}: unsupported type {t.type_name}")
        return t


def _pack_value(vtype, v):
    if vtype == STRING:
        b = v.encode("utf-8", errors="surrogateescape")
        return struct.pack("<Q", len(b)) + b
    if vtype == ARRAY:
        elem_type, items = v  # nested arrays: items are (element type, items) again
        if elem_type in _SCALAR_DTYPES:
            body = np.asarray(items, dtype=_SCALAR_DTYPES[elem_type]).tobytes()
        else:
            body = b"".join(_pack_value(elem_type, x) for x in items)
        return struct.pack("<IQ", elem_type, len(items)) + body
    return np.asarray(v, dtype=_SCALAR_DTYPES[vtype]).tobytes()


def write_gguf(path, kvs, tensors, version=3, alignment=DEFAULT_ALIGNMENT):
    """Writes a GGUF file (tests only). kvs: [(key, type, value)], an array value
    given as (element type, items). tensors: [(name, ggml dims, type id, raw bytes)]."""
    head = GGUF_MAGIC + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, vtype, v in kvs:
        head += _pack_value(STRING, key) + struct.pack("<I", vtype) + _pack_value(vtype, v)
    data, offsets = b"", []
    for _, _, _, raw in tensors:
        data += b"\0" * (-len(data) % alignment)
        offsets.append(len(data))
        data += bytes(raw)
    for (name, dims, type_id, _), off in zip(tensors, offsets):
        head += _pack_value(STRING, name) + struct.pack("<I", len(dims))
        head += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", type_id, off)
    if tensors:  # a file without tensors (vocab only) ends right after the metadata
        head += b"\0" * (-len(head) % alignment)
    with open(path, "wb") as f:
        f.write(head + data)


def rewrite_gguf(src, dst, set_kvs=()):
    """Copies GGUF `src` to `dst` with metadata entries added or replaced (tests only)."""
    f = GgufFile(src)
    kvs = []
    for key, value in f.metadata.items():
        vtype = f.metadata_types[key]
        if vtype == (ARRAY, ARRAY):
            raise GgufError(f"{src}: {key}: rewriting nested arrays is not supported")
        kvs.append((key, ARRAY, (vtype[1], value)) if isinstance(vtype, tuple) else (key, vtype, value))
    new = {k: (k, t, v) for k, t, v in set_kvs}
    kvs = [new.pop(k, (k, t, v)) for k, t, v in kvs] + list(new.values())
    tensors = [(t.name, t.dims, t.type_id, f.raw(t.name)) for t in f.tensors.values()]
    write_gguf(dst, kvs, tensors, version=f.version, alignment=f.alignment)


# ---------------------------------------------------------------------------
# De-quantization. Each function takes the raw bytes of whole blocks and
# returns float32 values; arithmetic is done in float32 like ggml's reference
# (scalar) code, so the results are ggml's dequantized weights.

def _f16(blocks, start):
    """A little-endian fp16 field at byte `start` of every block, as float32 column."""
    return blocks[:, start:start + 2].copy().view("<f2").astype(np.float32)


def _dq_q4_0(b):
    d = _f16(b, 0)
    qs = b[:, 2:18]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - np.int8(8)
    return q.astype(np.float32) * d


def _dq_q4_1(b):
    d, m = _f16(b, 0), _f16(b, 2)
    qs = b[:, 4:20]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32)
    return q * d + m


def _q5_values(qh_bytes, qs):
    """The 32 five-bit values of a Q5_0/Q5_1 block: low nibbles + bit j of qh."""
    qh = qh_bytes.copy().view("<u4")  # (n, 1)
    bits = (qh >> np.arange(32, dtype=np.uint32)) & 1  # bit j -> element j
    lo = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.uint32)
    return lo | (bits << 4)


def _dq_q5_0(b):
    d = _f16(b, 0)
    q = _q5_values(b[:, 2:6], b[:, 6:22]).astype(np.int32) - 16
    return q.astype(np.float32) * d


def _dq_q5_1(b):
    d, m = _f16(b, 0), _f16(b, 2)
    q = _q5_values(b[:, 4:8], b[:, 8:24]).astype(np.float32)
    return q * d + m


def _dq_q8_0(b):
    d = _f16(b, 0)
    return b[:, 2:34].view(np.int8).astype(np.float32) * d


def _k_scales_mins(s):
    """Q4_K/Q5_K: 8 six-bit scales and 8 six-bit mins packed in 12 bytes."""
    s = s.astype(np.uint8)
    sc = np.empty((s.shape[0], 8), np.uint8)
    mn = np.empty((s.shape[0], 8), np.uint8)
    sc[:, :4] = s[:, 0:4] & 63
    mn[:, :4] = s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 0x0F) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc.astype(np.float32), mn.astype(np.float32)


def _k_nibbles(qs):
    """Q4_K/Q5_K low bits: each 32-byte chunk holds sub-block 2c (low nibbles) and 2c+1 (high)."""
    n = qs.shape[0]
    chunks = qs.reshape(n, 4, 32)
    return np.stack([chunks & 0x0F, chunks >> 4], axis=2).reshape(n, 8, 32)


def _low_bits(qs):
    """Q2_K/Q3_K: (n, 16, 16) two-bit values, sub-block j = 2 g + l // 16 at bits 2 (g % 4) of
    qs[32 (g // 4) + l], g < 8, l < 32."""
    n = qs.shape[0]
    halves = qs.reshape(n, 2, 1, 32)
    shifts = (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1)
    return ((halves >> shifts) & 3).reshape(n, 16, 16)


def _dq_q2_k(b):
    sc = b[:, 0:16]
    d, dmin = _f16(b, 80), _f16(b, 82)
    q = _low_bits(b[:, 16:80]).astype(np.float32)
    dl = (d * (sc & 0x0F).astype(np.float32))[:, :, None]
    ml = (dmin * (sc >> 4).astype(np.float32))[:, :, None]
    return (dl * q - ml).reshape(-1, 256)


def _dq_q3_k(b):
    n = b.shape[0]
    hmask, qs, s, d = b[:, 0:32], b[:, 32:96], b[:, 96:108], _f16(b, 108)
    j = np.arange(16)
    low = np.where(j < 8, s[:, j % 8] & 0x0F, s[:, j % 8] >> 4)
    high = (s[:, 8 + j % 4] >> (2 * (j // 4))) & 3
    scale = (low.astype(np.int32) | (high.astype(np.int32) << 4)) - 32          # (n, 16)
    g = np.arange(8, dtype=np.uint8).reshape(1, 8, 1)
    hbit = ((hmask[:, None, :] >> g) & 1).reshape(n, 16, 16)                      # element 32 g + l: bit g of hmask[l]
    q = _low_bits(qs).astype(np.int32) - 4 * (1 - hbit.astype(np.int32))
    return ((d * scale.astype(np.float32))[:, :, None] * q.astype(np.float32)).reshape(n, 256)


def _dq_q4_k(b):
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, mn = _k_scales_mins(b[:, 4:16])
    q = _k_nibbles(b[:, 16:144]).astype(np.float32)
    scale = (d * sc)[:, :, None]
    mins = (dmin * mn)[:, :, None]
    return (scale * q - mins).reshape(-1, 256)


def _dq_q5_k(b):
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, mn = _k_scales_mins(b[:, 4:16])
    qh = b[:, 16:48]  # bit j of qh[l] is the high bit of element l of sub-block j
    lo = _k_nibbles(b[:, 48:176])
    hi = (qh[:, None, :] >> np.arange(8, dtype=np.uint8)[None, :, None]) & 1
    q = (lo | (hi << 4)).astype(np.float32)
    scale = (d * sc)[:, :, None]
    mins = (dmin * mn)[:, :, None]
    return (scale * q - mins).reshape(-1, 256)


def _dq_q6_k(b):
    n = b.shape[0]
    ql = b[:, 0:128].reshape(n, 2, 64)    # per 128-element half
    qh = b[:, 128:192].reshape(n, 2, 32)
    sc = b[:, 192:208].view(np.int8).astype(np.float32).reshape(n, 2, 8)
    d = _f16(b, 208)
    # Within a half: elements [0,32) low nibble of ql[0:32], [32,64) low of ql[32:64],
    # [64,96) high of ql[0:32], [96,128) high of ql[32:64]; qh bits 0-1, 2-3, 4-5, 6-7.
    lo = np.stack([ql[:, :, :32] & 0x0F, ql[:, :, 32:] & 0x0F, ql[:, :, :32] >> 4, ql[:, :, 32:] >> 4], axis=2)
    hi = np.stack([(qh >> s) & 3 for s in (0, 2, 4, 6)], axis=2)
    q = ((lo | (hi << 4)).astype(np.int16) - 32).astype(np.float32)  # (n, 2, 4, 32)
    # 16 scales per block, one per 16 elements, in element order.
    scale = (d[:, :, None] * sc).reshape(n, 2, 4, 2, 1)
    return (scale * q.reshape(n, 2, 4, 2, 16)).reshape(n, 256)


# IQ4_NL / IQ4_XS: a 4-bit index into these 16 values (ggml's kvalues_iq4nl).
IQ4_VALUES = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], np.float32)


def _dq_iq4_nl(b):
    d = _f16(b, 0)
    qs = b[:, 2:18]
    return IQ4_VALUES[np.concatenate([qs & 0x0F, qs >> 4], axis=1)] * d


def _dq_iq4_xs(b):
    n = b.shape[0]
    d = _f16(b, 0)
    scales_h = b[:, 2:4].copy().view("<u2").astype(np.int32)  # (n, 1)
    j = np.arange(8)
    low = (b[:, 4 + j // 2] >> (4 * (j % 2))) & 0x0F            # (n, 8)
    high = (scales_h >> (2 * j)) & 3
    dl = d * ((low.astype(np.int32) | (high << 4)) - 32).astype(np.float32)  # d * (ls - 32) first, as ggml
    qs = b[:, 8:136].reshape(n, 8, 16)
    levels = np.concatenate([qs & 0x0F, qs >> 4], axis=2)     # (n, 8, 32): element l, then l + 16
    return (IQ4_VALUES[levels] * dl[:, :, None]).reshape(n, 256)


_DEQUANT = {
    "Q4_0": _dq_q4_0, "Q4_1": _dq_q4_1, "Q5_0": _dq_q5_0, "Q5_1": _dq_q5_1, "Q8_0": _dq_q8_0,
    "Q2_K": _dq_q2_k, "Q3_K": _dq_q3_k, "Q4_K": _dq_q4_k, "Q5_K": _dq_q5_k, "Q6_K": _dq_q6_k, "IQ4_NL": _dq_iq4_nl, "IQ4_XS": _dq_iq4_xs,
}


def dequantize(type_id, raw, n_elements):
    """float32 values of n_elements stored as ggml type `type_id` in the uint8 array raw."""
    if type_id not in TENSOR_TYPES:
        raise GgufError(f"unsupported tensor type {type_id}")
    name, block, block_bytes = TENSOR_TYPES[type_id]
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    if n_elements % block or raw.size != n_elements // block * block_bytes:
        raise GgufError(f"{name}: {raw.size} bytes do not hold {n_elements} elements")
    if name == "F32":
        return raw.view("<f4").astype(np.float32)
    if name == "F16":
        return raw.view("<f2").astype(np.float32)
    if name == "BF16":
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    blocks = raw.reshape(-1, block_bytes)
    return _DEQUANT[name](blocks).astype(np.float32).reshape(-1)

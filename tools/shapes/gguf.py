"""gguf.py: a small GGUF v3 reader and writer for the shapes tools.

Reads every key (scalars, strings, arrays) and tensor descriptor of a file,
and writes F32 / Q8_0 tensors with any keys. Q8_0 blocks are 32 weights:
an f16 scale d = max|w| / 127 and int8 q = round(w / d).
"""
import struct

import numpy as np

# GGUF value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
_SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i",
           F32: "<f", BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8


class Reader:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.buf = f.read()
        self.pos = 0
        assert self.buf[:4] == b"GGUF", path
        self.pos = 4
        version, n_t, n_kv = self._u("<IQQ")
        assert version == 3
        self.kv, self.kv_types = {}, {}
        for _ in range(n_kv):
            k = self._str()
            (t,) = self._u("<I")
            self.kv_types[k] = t if t != ARR else (ARR, struct.unpack_from("<I", self.buf, self.pos)[0])
            self.kv[k] = self._val(t)
        self.tensors = {}
        for _ in range(n_t):
            name = self._str()
            (nd,) = self._u("<I")
            ne = self._u(f"<{nd}Q")
            ty, off = self._u("<IQ")
            self.tensors[name] = (tuple(ne), ty, off)
        align = self.kv.get("general.alignment", 32)
        self.data = self.pos + (-self.pos % align)

    def _u(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def _str(self):
        (n,) = self._u("<Q")
        s = self.buf[self.pos:self.pos + n].decode("utf-8", "replace")
        self.pos += n
        return s

    def _val(self, t):
        if t == STR:
            return self._str()
        if t == ARR:
            et, n = self._u("<IQ")
            return [self._val(et) for _ in range(n)]
        return self._u(_SCALAR[t])[0]

    def tensor(self, name):
        """The tensor as a float32 numpy array shaped like torch (ne reversed)."""
        ne, ty, off = self.tensors[name]
        n = int(np.prod(ne))
        at = self.data + off
        if ty == GGML_F32:
            a = np.frombuffer(self.buf, "<f4", n, at)
        elif ty == GGML_F16:
            a = np.frombuffer(self.buf, "<f2", n, at).astype(np.float32)
        elif ty == GGML_Q8_0:
            blk = np.frombuffer(self.buf, np.dtype([("d", "<f2"), ("q", "i1", 32)]), n // 32, at)
            a = (blk["d"].astype(np.float32)[:, None] * blk["q"].astype(np.float32)).reshape(-1)
        else:
            raise ValueError(f"{name}: type {ty} not read here")
        return a.reshape(ne[::-1]).copy()


def _q8_0(a):
    a = a.reshape(-1, 32).astype(np.float32)
    d = np.abs(a).max(axis=1) / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0.0)
    q = np.round(a * inv[:, None]).clip(-127, 127).astype(np.int8)
    blk = np.zeros(len(a), np.dtype([("d", "<f2"), ("q", "i1", 32)]))
    blk["d"] = d.astype(np.float16)
    blk["q"] = q
    return blk.tobytes()


def _pack(t, v):
    if t == STR:
        b = v.encode()
        return struct.pack("<Q", len(b)) + b
    return struct.pack(_SCALAR[t], v)


def write(path, kv, tensors, q8_names=()):
    """kv: {key: (type, value)} with type from this module (arrays: ((ARR, elem), list)).
    tensors: {name: numpy array}, written F32 unless named in q8_names."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for k, (t, v) in kv.items():
        head += _pack(STR, k)
        if isinstance(t, tuple):
            head += struct.pack("<IIQ", ARR, t[1], len(v))
            head += b"".join(_pack(t[1], x) for x in v)
        else:
            head += struct.pack("<I", t) + _pack(t, v)
    data = b""
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        data += b"\0" * (-len(data) % 32)
        ne = a.shape[::-1]
        q8 = name in q8_names and ne[0] % 32 == 0
        head += _pack(STR, name) + struct.pack(f"<I{len(ne)}QIQ", len(ne), *ne,
                                               GGML_Q8_0 if q8 else GGML_F32, len(data))
        data += _q8_0(a) if q8 else a.astype("<f4").tobytes()
    head += b"\0" * (-len(head) % 32)
    with open(path, "wb") as f:
        f.write(head + data)

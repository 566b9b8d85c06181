#!/usr/bin/env python3
"""Regenerates the interchange fixtures (Tests/Fixtures/interchange) and the format's test
vectors (formats/vectors). Deterministic: running it again gives the same bytes, so the
committed files can be checked against it. numpy only.

    python3 tools/make_fixtures.py
"""
import json
import os
import struct
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import wpk  # noqa: E402

rng = np.random.default_rng(1234)
FIX = os.path.join(ROOT, "Tests", "Fixtures", "interchange")
VEC = os.path.join(ROOT, "formats", "vectors")
os.makedirs(FIX, exist_ok=True)
os.makedirs(VEC, exist_ok=True)
expected = {}


def values(a):
    a = np.asarray(a)
    if a.dtype.kind == "f":
        return [float(x) for x in a.astype(np.float64).ravel(order="C")]
    return [int(x) for x in a.ravel(order="C")]


def record(file, name, array, stored_dtype):
    expected.setdefault(file, {})[name] = {"dtype": stored_dtype, "shape": list(np.shape(array)), "values": values(array)}


def npy(name, array, stored):
    path = os.path.join(FIX, name + ".npy")
    np.save(path, array)
    record(name + ".npy", name, array, stored)


npy("c_f32", rng.standard_normal((3, 4)).astype(np.float32), "float32")
npy("fortran_f32", np.asfortranarray(rng.standard_normal((3, 4, 2)).astype(np.float32)), "float32")
npy("big_f64", rng.standard_normal(5).astype(">f8"), "float64")
npy("big_f32", rng.standard_normal((2, 3)).astype(">f4"), "float32")
npy("half_f16", rng.standard_normal((4, 3)).astype(np.float16), "float32")
npy("scalar_f32", np.array(2.5, dtype=np.float32), "float32")
npy("empty_f32", np.zeros((0, 3), dtype=np.float32), "float32")
npy("ids_i64", np.arange(-3, 7, dtype=np.int64).reshape(2, 5), "int64")
npy("mask_bool", np.array([True, False, True]), "bool")

members = {"w": rng.standard_normal((8, 5)).astype(np.float32), "b": rng.standard_normal(8).astype(np.float32),
           "f": np.asfortranarray(rng.standard_normal((4, 6)).astype(np.float32)), "n": np.arange(4, dtype=np.int32)}
np.savez(os.path.join(FIX, "stored.npz"), **members)
np.savez_compressed(os.path.join(FIX, "deflated.npz"), **members)
for file in ("stored.npz", "deflated.npz"):
    for k, v in members.items():
        record(file, k, v, "float32" if v.dtype == np.float32 else "int32")

# safetensors written by hand (its format is 8 bytes + JSON + data), one tensor per dtype.
st = {
    "f32": rng.standard_normal((2, 3)).astype(np.float32),
    "f16": rng.standard_normal((3, 2)).astype(np.float16),
    "f64": rng.standard_normal(4).astype(np.float64),
    "i64": np.arange(6, dtype=np.int64),
    "u8": np.arange(5, dtype=np.uint8),
    "flag": np.array([True, False]),
}
bf16_source = rng.standard_normal((2, 2)).astype(np.float32)
bf16_bits = (bf16_source.view(np.uint32) >> 16).astype(np.uint16)  # truncation is exact to re-widen
codes = {"f32": "F32", "f16": "F16", "f64": "F64", "i64": "I64", "u8": "U8", "flag": "BOOL"}
header, blobs, offset = {"__metadata__": {"format": "pt", "note": "fixture"}}, [], 0
for k, v in st.items():
    header[k] = {"dtype": codes[k], "shape": list(v.shape), "data_offsets": [offset, offset + v.nbytes]}
    blobs.append(v.tobytes()); offset += v.nbytes
header["bf16"] = {"dtype": "BF16", "shape": [2, 2], "data_offsets": [offset, offset + 8]}
blobs.append(bf16_bits.tobytes())
text = json.dumps(header, sort_keys=True).encode()
text += b" " * ((8 - len(text) % 8) % 8)
with open(os.path.join(FIX, "mixed.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
stored_types = {"f32": "float32", "f16": "float32", "f64": "float64", "i64": "int64", "u8": "uint8", "flag": "bool"}
for k, v in st.items():
    record("mixed.safetensors", k, v, stored_types[k])
record("mixed.safetensors", "bf16", (bf16_bits.astype(np.uint32) << 16).view(np.float32), "float32")

with open(os.path.join(FIX, "expected.json"), "w") as f:
    json.dump(expected, f, indent=0, sort_keys=True)

# ---- format test vectors: valid files written by the independent Python writer
vectors = []
wpk.write(os.path.join(VEC, "empty.wpk"), {}, {})
vectors.append({"file": "empty.wpk", "valid": True, "tensors": []})
basic = {"weight": np.arange(12, dtype=np.float32).reshape(3, 4) / 8, "bias": np.array([1.5, -2.0], np.float32),
         "scalar": np.array(7.0, np.float32), "empty": np.zeros((2, 0, 3), np.float32),
         "ids": np.arange(4, dtype=np.int64)}
meta = {"name": "basic", "layers": 2, "ratio": 0.25, "trained": True}
wpk.write(os.path.join(VEC, "basic.wpk"), basic, meta)
vectors.append({"file": "basic.wpk", "valid": True, "alignment": 64, "metadata": {k: str(v) if not isinstance(v, bool) else str(v).lower() for k, v in meta.items()},
                "tensors": [{"name": k, "dtype": wpk.DTYPE_NAMES[wpk.CODE_FOR[v.dtype]], "shape": list(v.shape),
                             "values": values(v), "checksum": f"{wpk.xxh3_64(np.asarray(v).tobytes()):016x}"}
                            for k, v in basic.items()]})
wpk.write(os.path.join(VEC, "page-aligned.wpk"), {"x": np.ones((5, 5), np.float32)}, {}, alignment=4096)
vectors.append({"file": "page-aligned.wpk", "valid": True, "alignment": 4096,
                "tensors": [{"name": "x", "dtype": "float32", "shape": [5, 5], "values": [1.0] * 25,
                             "checksum": f"{wpk.xxh3_64(np.ones((5, 5), np.float32).tobytes()):016x}"}]})

# Format 1.1: the weight codings, as GGUF's quantizers wrote them (Tests/Fixtures/quant, made
# with the gguf package by tools/fixtures/make_quant_vectors.py), with the values they decode to.
quant = json.load(open(os.path.join(ROOT, "Tests", "Fixtures", "quant", "vectors.json")))
coded = {name: wpk.Coded(name, quant["shape"], bytes.fromhex(c["hex"])) for name, c in quant["codings"].items()}
wpk.write(os.path.join(VEC, "coded.wpk"), coded, {})
vectors.append({"file": "coded.wpk", "valid": True, "alignment": 64,
                "tensors": [{"name": k, "dtype": k, "shape": quant["shape"], "values": quant["codings"][k]["decoded"],
                             "checksum": f"{wpk.xxh3_64(v.raw):016x}"} for k, v in coded.items()]})

# ---- invalid vectors, each breaking one rule of formats/wpk.md
raw = bytearray(open(os.path.join(VEC, "basic.wpk"), "rb").read())
hlen = struct.unpack_from("<Q", raw, 24)[0]


def rehash(b):
    header = bytes(b[64:64 + hlen])
    h = wpk.xxh3_64(header)
    struct.pack_into("<Q", b, 32, h)
    struct.pack_into("<Q", b, 56, wpk.xxh3_64(bytes(b[:56])))
    struct.pack_into("<Q", b, len(b) - 32, h)
    return b


def bad(name, data, rule):
    with open(os.path.join(VEC, name), "wb") as f:
        f.write(data)
    vectors.append({"file": name, "valid": False, "error": rule})


bad("bad-truncated.wpk", bytes(raw[:-1]), "fileSizeMismatch")
b = bytearray(raw); b[0] = 0x88
bad("bad-magic.wpk", bytes(b), "notAWpkFile")
b = bytearray(raw); struct.pack_into("<H", b, 8, 2); bad("bad-major.wpk", bytes(rehash(b)), "unsupportedMajorVersion")
b = bytearray(raw); struct.pack_into("<I", b, 16, 1); bad("bad-critical-flag.wpk", bytes(rehash(b)), "unknownCriticalFlags")
b = bytearray(raw); b[64 + 40] ^= 0xFF; bad("bad-header-hash.wpk", bytes(b), "headerChecksumMismatch")
data_offset = struct.unpack_from("<Q", raw, 64 + 16)[0]
b = bytearray(raw); b[data_offset] ^= 1; bad("bad-tensor-checksum.wpk", bytes(b), "checksumMismatch")

with open(os.path.join(VEC, "vectors.json"), "w") as f:
    json.dump(vectors, f, indent=1)
print(f"wrote {len(expected)} interchange fixtures and {len(vectors)} format vectors")

# ---- einsum: equations with operands and NumPy's answers (optimize=True), for the Swift tests
cases = [
    ("ij,jk->ik", [(3, 4), (4, 5)]), ("ij,jk", [(3, 4), (4, 5)]), ("ij,kj->ik", [(3, 4), (5, 4)]),
    ("ji,jk->ik", [(4, 3), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhtd,bhkd->bhtk", [(2, 3, 4, 5), (2, 3, 6, 5)]), ("nchw,oihw->no", [(2, 3, 4, 4), (5, 3, 4, 4)]),
    ("nchw,ochw->no", [(2, 3, 4, 4), (5, 3, 4, 4)]), ("ij->ji", [(3, 4)]), ("ij->", [(3, 4)]),
    ("ii->i", [(4, 4)]), ("ii", [(4, 4)]), ("ij->j", [(3, 4)]), ("i,i->", [(6,), (6,)]),
    ("i,j->ij", [(3,), (4,)]), ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
    ("...i,...i->...", [(2, 3, 4), (3, 4)]), ("bi,bi->b", [(3, 5), (3, 5)]), ("ijk,ikl->jl", [(2, 3, 4), (2, 4, 5)]),
    ("ij,jk,kl->il", [(3, 4), (4, 5), (5, 2)]), ("abc,cd,de->abe", [(2, 3, 4), (4, 5), (5, 3)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]), ("ijk->kji", [(2, 3, 4)]), ("iij->ij", [(3, 3, 4)]),
    ("ab,bc,cd,de->ae", [(2, 3), (3, 4), (4, 5), (5, 2)]), ("i,j,k->ijk", [(2,), (3,), (4,)]),
    ("bn,anm,bm->ba", [(3, 4), (2, 4, 5), (3, 5)]), ("ijkl,jl->ik", [(2, 3, 4, 5), (3, 5)]),
    ("b...d,bd->b...", [(2, 3, 4, 5), (2, 5)]), ("ab,ab,ab->a", [(3, 4), (3, 4), (3, 4)]), ("ij,j->i", [(3, 4), (4,)]),
    ("i,ij->j", [(3,), (3, 4)]), ("xyz,zy->x", [(2, 3, 4), (4, 3)]), ("...,...->...", [(2, 3), (3,)]),
    ("ijk,k->ij", [(2, 3, 4), (4,)]), ("ab,cd,ef,bc,de->af", [(2, 3), (4, 2), (3, 2), (3, 4), (2, 3)]),
]
ein = []
erng = np.random.default_rng(77)
for eq, shapes in cases:
    ops = [erng.standard_normal(s).astype(np.float32) for s in shapes]
    out = np.einsum(eq, *[o.astype(np.float64) for o in ops], optimize=True)
    ein.append({"equation": eq, "operands": [{"shape": list(o.shape), "values": [float(v) for v in o.ravel()]} for o in ops],
                "expected": {"shape": list(np.shape(out)), "values": [float(v) for v in np.ravel(out)]}})
with open(os.path.join(ROOT, "Tests", "Fixtures", "einsum.json"), "w") as f:
    json.dump(ein, f)
print(f"wrote {len(ein)} einsum cases")

# ---- conv2d and pooling, computed by NumPy in float64 (an implementation independent of Swift)
def np_conv(x, w, b, stride, pad, dil, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    ho = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, ho, wo))
    og = o // groups
    for g in range(groups):
        for ki in range(kh):
            for kj in range(kw):
                patch = xp[:, g * cg:(g + 1) * cg, ki * dil[0]: ki * dil[0] + stride[0] * (ho - 1) + 1: stride[0],
                           kj * dil[1]: kj * dil[1] + stride[1] * (wo - 1) + 1: stride[1]]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, w[g * og:(g + 1) * og, :, ki, kj])
    if b is not None:
        out += b[None, :, None, None]
    return out

def np_pool(x, kind, k, s, p):
    n, c, h, w = x.shape
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=fill)
    ho, wo = (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1
    win = np.lib.stride_tricks.sliding_window_view(xp, k, axis=(2, 3))[:, :, ::s[0], ::s[1]][:, :, :ho, :wo]
    return win.max(axis=(4, 5)) if kind == "max" else win.sum(axis=(4, 5)) / (k[0] * k[1])

crng = np.random.default_rng(99)
conv_cases = []
for x_shape, w_shape, stride, pad, dil, groups, bias in [
        ((2, 1, 8, 8), (16, 1, 3, 3), (1, 1), (1, 1), (1, 1), 1, True),
        ((1, 3, 11, 7), (5, 3, 3, 2), (2, 2), (0, 0), (1, 1), 1, True),
        ((2, 2, 9, 10), (4, 2, 3, 3), (2, 1), (0, 2), (1, 1), 1, False),
        ((1, 2, 10, 10), (3, 2, 3, 3), (1, 1), (2, 2), (2, 2), 1, True),
        ((2, 4, 6, 6), (6, 2, 3, 3), (1, 1), (1, 1), (1, 1), 2, True),
        ((1, 3, 5, 5), (3, 1, 3, 3), (1, 1), (0, 0), (1, 1), 3, False),
        ((2, 8, 5, 5), (4, 8, 1, 1), (1, 1), (0, 0), (1, 1), 1, True),
        ((1, 4, 13, 9), (6, 2, 5, 3), (3, 2), (2, 1), (1, 2), 2, True)]:
    x = crng.standard_normal(x_shape).astype(np.float32)
    w = crng.standard_normal(w_shape).astype(np.float32)
    b = crng.standard_normal(w_shape[0]).astype(np.float32) if bias else None
    y = np_conv(x.astype(np.float64), w.astype(np.float64), None if b is None else b.astype(np.float64), stride, pad, dil, groups)
    conv_cases.append({"x": {"shape": list(x.shape), "values": [float(v) for v in x.ravel()]},
                       "w": {"shape": list(w.shape), "values": [float(v) for v in w.ravel()]},
                       "bias": None if b is None else [float(v) for v in b], "stride": list(stride), "padding": list(pad),
                       "dilation": list(dil), "groups": groups,
                       "expected": {"shape": list(y.shape), "values": [float(v) for v in y.ravel()]}})
pool_cases = []
px = crng.standard_normal((2, 3, 7, 9)).astype(np.float32)
for kind, k, s, p in [("max", (2, 2), (2, 2), (0, 0)), ("max", (3, 3), (2, 2), (1, 1)), ("avg", (2, 2), (2, 2), (0, 0)),
                      ("avg", (3, 3), (1, 1), (1, 1)), ("max", (2, 3), (1, 2), (1, 0))]:
    y = np_pool(px.astype(np.float64), kind, k, s, p)
    pool_cases.append({"kind": kind, "kernel": list(k), "stride": list(s), "padding": list(p),
                       "expected": {"shape": list(y.shape), "values": [float(v) for v in y.ravel()]}})
with open(os.path.join(ROOT, "Tests", "Fixtures", "conv.json"), "w") as f:
    json.dump({"conv": conv_cases, "pool_input": {"shape": list(px.shape), "values": [float(v) for v in px.ravel()]},
               "pool": pool_cases}, f)
print(f"wrote {len(conv_cases)} conv2d and {len(pool_cases)} pooling cases")

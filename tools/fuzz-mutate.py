#!/usr/bin/env python3
"""Structure-aware mutation fuzzing of every reader of wpack, through the command line.

Each case takes a valid input (a .npy, .npz, .safetensors, .wpk, a model folder's config.json,
a layer list), changes one or a few of its fields to a value chosen to hurt (0, -1, huge, a
float, a wrong type, a duplicate, an overlap, a flipped byte), and runs the command a user would.
Every case must end with exit 0, or exit 1 and exactly one escaped line on stderr: never a
signal, never a hang, never a multi-line error, never a file left behind. Where NumPy (npy,
npz, with the standard zipfile) or the safetensors library have an opinion, wpack must not
accept what they refuse, and what both accept must give the same values; where wpack is
stricter than them on purpose (trailing bytes, bool values other than 0/1, bools as
dimensions, duplicate keys), the case is counted as "stricter", not failed.

  python3 tools/fuzz-mutate.py --wpack .build/debug/wpack --cases 3000 [--seed N]
"""
import argparse
import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import wpk  # noqa: E402  (the project's independent .wpk reader/writer)

try:
    import safetensors as safetensors_lib  # the reference reader, when installed
except Exception:  # noqa: BLE001
    safetensors_lib = None

INTERESTING = [0, 1, 2, 3, 7, 8, 63, 64, 255, 256, 4095, 4096, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1,
               2**32, 2**53, 2**62, 2**63 - 1, 2**63, 2**64 - 1]


class Failure(Exception):
    pass


class Runner:
    def __init__(self, binary, work):
        self.binary = binary
        self.work = work
        self.counts = {"cases": 0, "accepted": 0, "refused": 0, "stricter": 0, "commands": 0}

    def run(self, args, timeout=60):
        """Runs wpack; checks exit status and stderr; returns (status, stdout, stderr)."""
        self.counts["commands"] += 1
        try:
            p = subprocess.run([self.binary] + args, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Failure(f"hang (>{timeout}s): wpack {' '.join(args)}")
        err = p.stderr.decode("utf-8", "replace")
        if p.returncode < 0:
            raise Failure(f"signal {-p.returncode}: wpack {' '.join(args)}\n{err[-2000:]}")
        if p.returncode not in (0, 1):
            raise Failure(f"exit {p.returncode}: wpack {' '.join(args)}: {err!r}")
        if p.returncode == 1:
            if not err.startswith("wpack: error: ") or err.count("\n") != 1 or not err.endswith("\n"):
                raise Failure(f"not one error line: wpack {' '.join(args)}: {err!r}")
            if any(ord(c) < 0x20 and c != "\n" for c in err):
                raise Failure(f"raw control character in error: {err!r}")
        return p.returncode, p.stdout, err

    def pack(self, kind, inputs, output, *options):
        """Runs `wpack pack` (inputs by name in the work folder, or absolute paths); the folder
        must then hold what it held before, plus the output only if pack succeeded: a refused
        pack leaves nothing behind."""
        before = os.listdir(self.work)
        status, _, err = self.run(["pack", *[self.path(i) for i in inputs], "-o", self.path(output), *options])
        left = sorted(os.listdir(self.work))
        expected = sorted(before + ([output] if status == 0 else []))
        if left != expected:
            raise Failure(f"{kind}: files left after pack: {left} (expected {expected})")
        return status, err

    def path(self, name):
        return os.path.join(self.work, name)

    def clean(self):
        for name in os.listdir(self.work):
            full = self.path(name)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.remove(full)


# ---------------------------------------------------------------- npy

def npy_bytes(header_text, data, version=1):
    h = header_text.encode("latin1")
    pad = (64 - (10 + len(h) + 1) % 64) % 64
    h = h + b" " * pad + b"\n"
    if version == 1 and len(h) < 65536:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(h)) + h + data


def random_npy(rng):
    """A header (possibly hostile) and data bytes."""
    descr = rng.choice(["<f4", "<f8", "<f2", ">f4", "|b1", "<i8", "<i4", "|u1", "=f4", "f4", "<c8", "|O", "<U4", "<f16", "x"])
    shape = tuple(rng.choice([0, 1, 2, 3, 4, 5]) for _ in range(rng.choice([0, 1, 1, 2, 3])))
    fortran = rng.choice(["False", "False", "True"])
    itemsize = {"<f4": 4, "<f8": 8, "<f2": 2, ">f4": 4, "|b1": 1, "<i8": 8, "<i4": 4, "|u1": 1, "=f4": 4, "f4": 4}.get(descr, 4)
    count = int(np.prod(shape)) if shape else 1
    data = bytes(rng.getrandbits(8) for _ in range(count * itemsize))
    if descr == "|b1" and rng.random() < 0.7:
        data = bytes(b & 1 for b in data)
    shape_text = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    fields = [("descr", repr(descr)), ("fortran_order", fortran), ("shape", shape_text)]
    mutation = rng.randrange(16)
    if mutation == 0:
        fields.append(("descr", repr(rng.choice(["<f4", ">f4", "<f8"]))))
    elif mutation == 1:
        fields.pop(rng.randrange(len(fields)))
    elif mutation == 2:
        fields.append(("extra", "1"))
    elif mutation == 3:
        fields[2] = ("shape", rng.choice(["(True, 4)", "(-1,)", "(4)", "(2**70,)", "(0, 4611686018427387904, 4611686018427387904)",
                                          "(1.5,)", "[4]", "(4L,)", "()", "(,)", "(4, 'a')", "(99999999999999999999,)"]))
    elif mutation == 4:
        fields[1] = ("fortran_order", rng.choice(["0", "1", "'False'", "None", "true"]))
    elif mutation == 5:
        data = data + bytes(rng.randrange(1, 9))
    elif mutation == 6 and data:
        data = data[: rng.randrange(len(data))]
    header = "{" + ", ".join(f"'{k}': {v}" for k, v in fields) + (", }" if rng.random() < 0.5 else "}")
    if mutation == 7:
        header = header.replace("'", '"')
    elif mutation == 8:
        i = rng.randrange(len(header))
        header = header[:i] + rng.choice(["\n", "\x1b[2J", "{", "}", ",", ":", "'", "\\", "\x00", "é"]) + header[i + 1:]
    raw = npy_bytes(header, data, version=rng.choice([1, 1, 2]))
    if mutation == 9:
        raw = bytearray(raw)
        raw[rng.randrange(6, 10)] = rng.getrandbits(8)
        raw = bytes(raw)
    return raw


def numpy_view(raw):
    """What NumPy makes of the bytes: an array, or None when it refuses."""
    try:
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception:  # noqa: BLE001
        return None


def unpacked_arrays(r, wpk_path):
    """The arrays of a .wpk as NumPy reads its unpacked .npz."""
    out = r.path("unpacked.npz")
    status, _, err = r.run(["unpack", wpk_path, "-o", out])
    if status != 0:
        raise Failure(f"unpack of an accepted file failed: {err}")
    with np.load(out) as z:
        arrays = {k: z[k] for k in z.files}
    os.remove(out)
    return arrays


def same_values(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        a64 = a.astype(np.float64)
        b64 = b.astype(np.float64)
        return bool(np.array_equal(a64, b64, equal_nan=True))
    return bool(np.array_equal(a.astype(np.int64) if a.dtype != np.uint64 else a, b.astype(np.int64) if b.dtype != np.uint64 else b))


# Refusals where wpack is stricter than the reference on purpose, by the phrase its error uses.
STRICTER = (
    # npy: NumPy ignores trailing bytes and reads any bool byte; other versions and layouts
    # are not read by wpack at all.
    "follow the array data", "unsupported .npy version", "not 0 or 1", "non-negative integers",
    "exactly the keys", "unsupported dtype", "is not a tuple", "structured", "malformed", "escapes",
    "fortran_order", "too large", "rank",
    # safetensors: duplicates, unknown fields, gaps and float8 (no .wpk dtype).
    "twice", "unknown field", "belong to no tensor", "trailing", "cannot store",
    # npz: zipfile trusts the sizes it needs and reads only what it is asked for; wpack wants a
    # consistent directory and whole, terminated members.
    "CRC-32", "not a .npy member", "the directory says", "more than deflate can produce", "sizes differ", "deflated data is damaged",
    "damaged or truncated", "does not end where the end record starts", "central directory is damaged",
    "local header names another file", "follow the zip", "appears twice",
)


def judge(r, kind, reference, accepted, err, compare):
    """The oracle rule. `reference` is what the reference reader made of the input (None when it
    refused it): wpack must not accept what it refuses; when both accept, `compare()` checks
    the values; when only the reference accepts, wpack's refusal must name a listed reason."""
    if accepted and reference is None:
        raise Failure(f"{kind}: wpack accepted what the reference refuses")
    if accepted:
        compare()
        r.counts["accepted"] += 1
    elif reference is not None:
        if not any(s in err for s in STRICTER):
            raise Failure(f"{kind}: the reference reads it, wpack refuses without a known reason: {err!r}")
        r.counts["stricter"] += 1
    else:
        r.counts["refused"] += 1


def same_arrays(r, kind, wpk_path, reference):
    """The arrays of the packed file equal the reference's, name by name."""
    arrays = unpacked_arrays(r, wpk_path)
    if sorted(arrays) != sorted(reference):
        raise Failure(f"{kind}: arrays {sorted(arrays)} vs the reference's {sorted(reference)}")
    for key, ref in reference.items():
        if not same_values(arrays[key], ref):
            raise Failure(f"{kind}: array {key!r} differs from the reference: {arrays[key]!r} vs {ref!r}")


def case_npy(r, rng):
    with open(r.path("a.npy"), "wb") as f:
        f.write(raw := random_npy(rng))
    status, err = r.pack("npy", ["a.npy"], "o.wpk")
    view = numpy_view(raw)
    if view is not None and view.dtype.kind not in "fiub":
        view = None  # complex, strings: not numbers wpack stores; refusing them is right
    reference = None if view is None else {"a": view}
    judge(r, "npy", reference, status == 0, err, lambda: same_arrays(r, "npy", r.path("o.wpk"), reference))


# ---------------------------------------------------------------- npz

def random_npz(rng):
    members = []
    for i in range(rng.randrange(1, 4)):
        a = np.arange(rng.randrange(0, 12), dtype=rng.choice([np.float32, np.float64, np.int64])).reshape(-1)
        buf = io.BytesIO()
        np.save(buf, a)
        members.append((f"m{i}.npy", buf.getvalue()))
    if rng.random() < 0.2:
        members.append(("readme.txt", b"not an array"))
    buf = io.BytesIO()
    method = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        for name, data in members:
            z.writestr(name, data)
    raw = bytearray(buf.getvalue())
    eocd = raw.rfind(b"PK\x05\x06")
    cd = struct.unpack_from("<I", raw, eocd + 16)[0]
    mutation = rng.randrange(12)
    if mutation == 0:  # the end record's count
        struct.pack_into("<HH", raw, eocd + 8, *([rng.choice([0, 1, 5, 65535])] * 2))
    elif mutation == 1:  # the directory offset or size
        struct.pack_into("<I", raw, eocd + rng.choice([12, 16]), rng.choice(INTERESTING[:17]))
    elif mutation == 2:  # a byte of member data
        raw[rng.randrange(30, max(31, cd))] ^= 1 << rng.randrange(8)
    elif mutation == 3:  # a central directory field
        field = rng.choice([10, 16, 20, 24, 28, 30, 42])
        width = 2 if field in (10, 28, 30) else 4
        struct.pack_into("<H" if width == 2 else "<I", raw, cd + field, rng.choice(INTERESTING[:9 if width == 2 else 17]))
    elif mutation == 4:  # truncation
        raw = raw[: rng.randrange(len(raw))]
    elif mutation == 5:  # a local header field
        field = rng.choice([8, 14, 18, 22, 26, 28])
        width = 2 if field in (8, 26, 28) else 4
        struct.pack_into("<H" if width == 2 else "<I", raw, field, rng.choice(INTERESTING[:9 if width == 2 else 17]))
    return bytes(raw)


def zip_view(raw):
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            out = {}
            for k in z.files:
                if not k.endswith(".txt"):  # wpack skips non-.npy members
                    out[k] = z[k]
            return out
    except Exception:  # noqa: BLE001
        return None


def case_npz(r, rng):
    with open(r.path("a.npz"), "wb") as f:
        f.write(raw := random_npz(rng))
    status, err = r.pack("npz", ["a.npz"], "o.wpk")
    view = zip_view(raw)
    if view is not None:
        # NumPy reads members lazily, so a damaged member it was never asked for passes
        # np.load; zipfile reads every .npy member in full, with its CRC and header checks.
        # (The other members wpack skips, with a note, damaged or not.)
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as z:
                for name in z.namelist():
                    if name.endswith(".npy"):
                        z.read(name)
        except Exception:  # noqa: BLE001
            view = None
    judge(r, "npz", view, status == 0, err, lambda: same_arrays(r, "npz", r.path("o.wpk"), view))


# ---------------------------------------------------------------- safetensors

def random_safetensors(rng):
    tensors = {}
    offset = 0
    blobs = []
    for i in range(rng.randrange(1, 4)):
        dtype, size = rng.choice([("F32", 4), ("F16", 2), ("I64", 8), ("BOOL", 1), ("BF16", 2), ("U8", 1)])
        shape = [rng.randrange(0, 4) for _ in range(rng.randrange(0, 3))]
        n = int(np.prod(shape)) if shape else 1
        data = bytes(rng.getrandbits(8) for _ in range(n * size))
        if dtype == "BOOL" and rng.random() < 0.8:
            data = bytes(b & 1 for b in data)
        tensors[f"t{i}"] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header = {"__metadata__": {"k": "v"}} if rng.random() < 0.5 else {}
    header.update(tensors)
    body = b"".join(blobs)
    text = json.dumps(header)
    mutation = rng.randrange(14)
    name = rng.choice(list(tensors))
    if mutation == 0:
        tensors[name]["shape"] = rng.choice([[4.7], [True, 1], [-1], [2**64], ["2"], None, 3, [4.0]])
    elif mutation == 1:
        tensors[name]["data_offsets"] = rng.choice([[0], [5, 1], [0, 2**64], [-1, 3], [0.0, 4], None, [0, offset + 8]])
    elif mutation == 2:
        tensors[name]["dtype"] = rng.choice(["F8_E4M3", "f32", "", None, 7, "BOOL"])
    elif mutation == 3:
        text = json.dumps(header)[:-1] + ', "' + name + '": ' + json.dumps(tensors[name]) + "}"
    elif mutation == 4:
        body = body + b"\0" * rng.randrange(1, 9)
    elif mutation == 5 and body:
        body = body[: rng.randrange(len(body))]
    elif mutation == 6:
        tensors[name]["extra"] = 1
    elif mutation == 7:
        header["__metadata__"] = rng.choice([{"k": 1}, [], "x", None, {"a\nb": "c"}])
    if mutation not in (3,):
        text = json.dumps(header)
    hb = text.encode()
    if mutation == 8:
        hb = hb[: rng.randrange(len(hb))]
    elif mutation == 9:
        hb = b" " + hb
    elif mutation == 10:
        i = rng.randrange(len(hb))
        hb = hb[:i] + bytes([rng.getrandbits(8)]) + hb[i + 1:]
    hb += b" " * ((8 - len(hb) % 8) % 8)
    length = len(hb)
    if mutation == 11:
        length = rng.choice([0, 2, len(hb) + 1, 2**40, 2**64 - 1])
    return struct.pack("<Q", length) + hb + body


def safetensors_view(raw):
    """name -> (dtype, shape, bytes) as the safetensors library reads the file, or None."""
    if safetensors_lib is None:
        return "unknown"
    try:
        entries = safetensors_lib.deserialize(raw)
    except Exception:  # noqa: BLE001
        return None
    return {name: (t["dtype"], list(t["shape"]), bytes(t["data"])) for name, t in entries}


def case_safetensors(r, rng):
    with open(r.path("a.safetensors"), "wb") as f:
        f.write(raw := random_safetensors(rng))
    status, err = r.pack("safetensors", ["a.safetensors"], "o.wpk", "--keep-half")
    view = safetensors_view(raw)
    if view == "unknown":
        r.counts["accepted" if status == 0 else "refused"] += 1
        if status == 0:
            r.run(["verify", r.path("o.wpk")])
        return

    def compare():
        # Unpack keeps halves (packed with --keep-half); compare bytes through the library.
        back_path = r.path("back.safetensors")
        s2, _, e2 = r.run(["unpack", r.path("o.wpk"), "-o", back_path])
        if s2 != 0:
            raise Failure(f"unpack of an accepted safetensors failed: {e2}")
        with open(back_path, "rb") as f:
            back = {name: (t["dtype"], list(t["shape"]), bytes(t["data"])) for name, t in safetensors_lib.deserialize(f.read())}
        os.remove(back_path)
        for k, v in view.items():
            if back.get(k) != v:
                raise Failure(f"safetensors: tensor {k!r} differs after pack and unpack: {back.get(k)!r} vs {v!r}")

    judge(r, "safetensors", view, status == 0, err, compare)


# ---------------------------------------------------------------- .wpk

def wpk_seed(r):
    path = r.path("seed.wpk")
    arrays = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(5, np.float32),
              "ids": np.arange(3, dtype=np.int64)}
    wpk.write(path, arrays, metadata={"model": "seed", "layers": 2})
    with open(path, "rb") as f:
        data = f.read()
    os.remove(path)
    return data


def rehash(b):
    """Preamble and footer sizes and the two header hashes, as a writer would make them."""
    n = len(b)
    if n < 160:
        return b
    struct.pack_into("<Q", b, 40, n)
    struct.pack_into("<Q", b, n - 24, n)
    header_length = struct.unpack_from("<Q", b, 24)[0]
    end = min(64 + header_length, n - 32)
    if end > 64:
        h = wpk.xxh3_64(bytes(b[64:end]))
        struct.pack_into("<Q", b, 32, h)
        struct.pack_into("<Q", b, n - 32, h)
    struct.pack_into("<Q", b, 56, wpk.xxh3_64(bytes(b[:56])))
    return b


def case_wpk(r, rng, seed):
    b = bytearray(seed)
    tensors = struct.unpack_from("<I", b, 64)[0]
    metadata_count = struct.unpack_from("<I", b, 68)[0]
    records = 96
    for _ in range(rng.randrange(1, 3)):
        kind = rng.randrange(6)
        if kind == 0:  # a preamble field
            off, fmt = rng.choice([(8, "<H"), (10, "<H"), (16, "<I"), (20, "<I"), (24, "<Q"), (48, "<I"), (52, "<I")])
        elif kind == 1:  # the fixed header
            off, fmt = rng.choice([(64, "<I"), (68, "<I"), (72, "<Q"), (80, "<Q"), (88, "<Q")])
        elif kind == 2:  # a tensor record field
            base = records + 128 * rng.randrange(max(1, tensors))
            field, fmt = rng.choice([(0, "<I"), (4, "<I"), (8, "<B"), (9, "<B"), (10, "<B"), (11, "<B"), (12, "<I"),
                                     (16, "<Q"), (24, "<Q"), (80, "<Q"), (88, "<Q"), (96, "<Q"), (104, "<Q"), (112, "<Q")])
            off = base + field
        elif kind == 3:  # the name index or a metadata record
            index = records + 128 * tensors
            meta = index + 4 * tensors
            if rng.random() < 0.5 or metadata_count == 0:
                off, fmt = index + 4 * rng.randrange(max(1, tensors)), "<I"
            else:
                off = meta + 32 * rng.randrange(metadata_count) + rng.choice([0, 4, 8, 16, 24])
                fmt = "<I" if (off - meta) % 32 in (0, 4) else "<B" if (off - meta) % 32 == 8 else "<Q"
        elif kind == 4:  # any byte
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            continue
        else:  # truncate or extend
            if rng.random() < 0.5:
                del b[rng.randrange(160, len(b)):]
            else:
                b.extend(bytes(rng.randrange(1, 200)))
            continue
        size = struct.calcsize(fmt)
        if off + size > len(b):
            continue
        limit = 2 ** (8 * size) - 1
        value = rng.choice([v for v in INTERESTING if v <= limit] + [rng.randrange(limit + 1)])
        struct.pack_into(fmt, b, off, value)
    if rng.random() < 0.9:
        rehash(b)
    path = r.path("c.wpk")
    with open(path, "wb") as f:
        f.write(b)
    opened, _, err = r.run(["inspect", path])
    verified, _, _ = r.run(["verify", path])
    unpacked, _, unpack_err = r.run(["unpack", path, "-o", r.path("u.npz")])
    if verified == 0 and unpacked != 0 and "bfloat16" not in unpack_err:
        raise Failure(f".wpk: verify passes but unpack fails: {unpack_err.strip()}")
    # The independent reader (tools/wpk.py, the specification's second implementation) and wpack
    # must agree on whether the header is valid.
    try:
        wpk.WpkFile(path)
        python_error = None
    except Exception as error:  # noqa: BLE001
        python_error = str(error)
    if (python_error is None) != (opened == 0):
        raise Failure(f".wpk: tools/wpk.py says {python_error or 'valid'}, wpack inspect says {err.strip() or 'valid'}")
    r.counts["accepted" if opened == 0 else "refused"] += 1
    r.clean()


# ---------------------------------------------------------------- model folders and layer lists

def mutate_json_value(rng, value):
    return rng.choice([0, -1, 1, 2**31, 10**12, 2**63, 1.5, -0.0, "x", None, True, [], {}, 1e308, value])


def case_model_folder(r, rng, source):
    folder = r.path("model")
    shutil.copytree(source, folder)
    target = rng.choice(["config.json", "config.json", "config.json", "1_Pooling/config.json", "modules.json",
                         "tokenizer_config.json", "sentence_bert_config.json", "tokenizer.json"])
    path = os.path.join(folder, target)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
        if isinstance(obj, dict) and obj:
            for _ in range(rng.randrange(1, 3)):
                key = rng.choice(list(obj))
                if target == "tokenizer.json" and isinstance(obj[key], dict) and obj[key] and rng.random() < 0.6:
                    inner = rng.choice(list(obj[key]))
                    obj[key][inner] = mutate_json_value(rng, obj[key][inner])
                else:
                    obj[key] = mutate_json_value(rng, obj[key])
        elif isinstance(obj, list) and obj:
            obj[rng.randrange(len(obj))] = mutate_json_value(rng, None)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(obj, f)
    status, _ = r.pack("model folder", ["model"], "m.wpk")
    if status == 0:
        r.run(["embed", r.path("m.wpk"), "a short text", "another one"])
    r.counts["accepted" if status == 0 else "refused"] += 1
    r.clean()


def case_layers(r, rng, weights, layers_json, images):
    spec = json.loads(layers_json)
    layer = rng.choice(spec["layers"])
    key = rng.choice(list(layer) + ["stride", "padding", "kernel", "axis", "groups", "dilation"])
    layer[key] = mutate_json_value(rng, layer.get(key))
    if rng.random() < 0.1:
        spec["layers"] = spec["layers"] * rng.randrange(2, 50)
    if rng.random() < 0.1:
        spec["input"] = mutate_json_value(rng, spec.get("input"))
    path = r.path("layers.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    status, _ = r.pack("layer list", [weights], "d.wpk", "--layers", path)
    if status == 0:
        r.run(["run", r.path("d.wpk"), "--input", images])
    r.counts["accepted" if status == 0 else "refused"] += 1
    r.clean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wpack", required=True)
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "little"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # NumPy warns about some of the headers it is given
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="wpack-mutate-")
    r = Runner(os.path.abspath(args.wpack), work)
    fixtures = os.path.join(ROOT, "Tests", "Fixtures")
    digits = os.path.join(fixtures, "digits-cnn")
    layers_json = open(os.path.join(digits, "layers.json")).read()
    images = os.path.join(digits, "test_images.npy")
    seed = wpk_seed(r)
    kinds = [("npy", 0.22), ("npz", 0.16), ("safetensors", 0.2), ("wpk", 0.22), ("model folder", 0.12), ("layer list", 0.08)]
    per_kind = {}
    try:
        for i in range(args.cases):
            kind = rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
            per_kind[kind] = per_kind.get(kind, 0) + 1
            r.counts["cases"] += 1
            try:
                if kind == "npy":
                    case_npy(r, rng)
                elif kind == "npz":
                    case_npz(r, rng)
                elif kind == "safetensors":
                    case_safetensors(r, rng)
                elif kind == "wpk":
                    case_wpk(r, rng, seed)
                elif kind == "model folder":
                    case_model_folder(r, rng, os.path.join(fixtures, "encoders", rng.choice(["bert", "roberta", "mpnet", "distilbert"])))
                else:
                    case_layers(r, rng, os.path.join(digits, "digits_cnn.safetensors"), layers_json, images)
            except Failure as failure:
                keep = os.path.join(ROOT, ".build", "fuzz-finding")
                shutil.rmtree(keep, ignore_errors=True)
                shutil.copytree(work, keep)
                print(f"fuzz-mutate: FAILED at case {i} ({kind}, seed {args.seed}): {failure}", file=sys.stderr)
                print(f"fuzz-mutate: the inputs are in {keep}", file=sys.stderr)
                return 1
            r.clean()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    c = r.counts
    print(f"fuzz-mutate: {c['cases']} cases ({', '.join(f'{k} {v}' for k, v in sorted(per_kind.items()))}), "
          f"{c['commands']} wpack runs, seed {args.seed}: 0 signals, 0 hangs, 0 multi-line errors, 0 files left; "
          f"accepted {c['accepted']}, refused {c['refused']}, stricter than the reference {c['stricter']}"
          + ("" if safetensors_lib else "; safetensors library not installed: its cases ran without the oracle"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

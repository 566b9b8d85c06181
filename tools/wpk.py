#!/usr/bin/env python3
"""A small, independent reader and writer for .wpk files (formats/wpk.md), with numpy only.

It exists to prove the specification is complete: it shares no code with the Swift library.
Float32 tensors are mapped with np.memmap (zero-copy); bfloat16 and the block-quantized types
of format 1.1 (q8_0, q4_0, q4_1) are decoded to float32 (`array(name)`), or read as their raw
blocks (`blocks(name)`); zstd tensors are reported but cannot be decoded here (the standard
library has no zstd), and XXH3-64 is implemented below in numpy.

    python3 tools/wpk.py inspect FILE.wpk          # JSON like `wpack inspect --json`
    python3 tools/wpk.py verify FILE.wpk           # checks every uncompressed checksum
    python3 tools/wpk.py dump FILE.wpk OUT.npz     # uncompressed tensors to .npz
    python3 tools/wpk.py pack IN.npz OUT.wpk [--align N] [--meta K=V ...]
"""
import json
import os
import struct
import sys

import numpy as np

MAGIC = b"\x89WPK\r\n\x1a\n"
ENDIAN_MARK = 0x0A0B0C0D
PREAMBLE, HEADER_FIXED, RECORD, INDEX_ENTRY, META_RECORD, FOOTER = 64, 32, 128, 4, 32, 32
DTYPES = {1: "<f4", 2: "<f2", 3: None, 4: "<f8", 5: "i1", 6: "<i2", 7: "<i4", 8: "<i8",
          9: "u1", 10: "<u2", 11: "<u4", 12: "<u8", 13: "?"}
DTYPE_NAMES = {1: "float32", 2: "float16", 3: "bfloat16", 4: "float64", 5: "int8", 6: "int16",
               7: "int32", 8: "int64", 9: "uint8", 10: "uint16", 11: "uint32", 12: "uint64", 13: "bool",
               14: "q8_0", 15: "q4_0", 16: "q4_1"}
# Bytes per element, or for the block types (format 1.1) bytes per block of BLOCK values.
DTYPE_SIZES = {1: 4, 2: 2, 3: 2, 4: 8, 5: 1, 6: 2, 7: 4, 8: 8, 9: 1, 10: 2, 11: 4, 12: 8, 13: 1,
               14: 34, 15: 18, 16: 20}
BLOCK_TYPES = {14, 15, 16}
BLOCK = 32
MINOR = 1  # the newest minor version this reader knows
CODECS = {0: "none", 1: "zstd"}

# ---------------------------------------------------------------- XXH3-64 (seed 0), in numpy
M64 = (1 << 64) - 1
P32_1, P32_2, P32_3 = 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D
P64_1, P64_2, P64_3, P64_4, P64_5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                                     0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)
SECRET = bytes.fromhex(
    "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f"
    "cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
    "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8"
    "a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364"
    "eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e"
    "2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e")


def _r64(b, o):
    return int.from_bytes(b[o:o + 8], "little")


def _r32(b, o):
    return int.from_bytes(b[o:o + 4], "little")


def _mul128_fold64(a, b):
    p = a * b
    return (p & M64) ^ (p >> 64)


def _xxh64_avalanche(h):
    h ^= h >> 33
    h = (h * P64_2) & M64
    h ^= h >> 29
    h = (h * P64_3) & M64
    return h ^ (h >> 32)


def _xxh3_avalanche(h):
    h ^= h >> 37
    h = (h * 0x165667919E3779F9) & M64
    return h ^ (h >> 32)


def _rrmxmx(h, length):
    rotl = lambda x, r: ((x << r) | (x >> (64 - r))) & M64
    h ^= rotl(h, 49) ^ rotl(h, 24)
    h = (h * 0x9FB21C651E98DF25) & M64
    h ^= (h >> 35) + length
    h = (h * 0x9FB21C651E98DF25) & M64
    return h ^ (h >> 28)


def _mix16(b, o, so):
    lo = _r64(b, o) ^ _r64(SECRET, so)
    hi = _r64(b, o + 8) ^ _r64(SECRET, so + 8)
    return _mul128_fold64(lo, hi)


def xxh3_64(data):
    """XXH3-64 with seed 0 and the default secret, as libxxhash's XXH3_64bits."""
    b = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else data
    n = len(b)
    if n == 0:
        return _xxh64_avalanche(_r64(SECRET, 56) ^ _r64(SECRET, 64))
    if n <= 3:
        c1, c2, c3 = b[0], b[n >> 1], b[n - 1]
        combined = (c1 << 16) | (c2 << 24) | c3 | (n << 8)
        return _xxh64_avalanche(combined ^ (_r32(SECRET, 0) ^ _r32(SECRET, 4)))
    if n <= 8:
        i1, i2 = _r32(b, 0), _r32(b, n - 4)
        keyed = (i2 + (i1 << 32)) ^ (_r64(SECRET, 8) ^ _r64(SECRET, 16))
        return _rrmxmx(keyed, n)
    if n <= 16:
        lo = _r64(b, 0) ^ (_r64(SECRET, 24) ^ _r64(SECRET, 32))
        hi = _r64(b, n - 8) ^ (_r64(SECRET, 40) ^ _r64(SECRET, 48))
        swapped = int.from_bytes(lo.to_bytes(8, "little"), "big")
        return _xxh3_avalanche((n + swapped + hi + _mul128_fold64(lo, hi)) & M64)
    if n <= 128:
        acc = (n * P64_1) & M64
        if n > 32:
            if n > 64:
                if n > 96:
                    acc += _mix16(b, 48, 96) + _mix16(b, n - 64, 112)
                acc += _mix16(b, 32, 64) + _mix16(b, n - 48, 80)
            acc += _mix16(b, 16, 32) + _mix16(b, n - 32, 48)
        acc += _mix16(b, 0, 0) + _mix16(b, n - 16, 16)
        return _xxh3_avalanche(acc & M64)
    if n <= 240:
        acc = (n * P64_1) & M64
        for i in range(8):
            acc += _mix16(b, 16 * i, 16 * i)
        acc = _xxh3_avalanche(acc & M64)
        for i in range(8, n // 16):
            acc += _mix16(b, 16 * i, 16 * (i - 8) + 3)
        acc += _mix16(b, n - 16, 136 - 17)
        return _xxh3_avalanche(acc & M64)
    return _xxh3_long(b, n)


def _xxh3_long(b, n):
    # The accumulators take modular additions of per-stripe terms, so the stripes of one block
    # can be summed with numpy at once; only the scramble between blocks is sequential.
    words = np.frombuffer(bytes(b[:n - n % 8]) if n % 8 else b, dtype="<u8")
    secret_words = np.frombuffer(SECRET, dtype="<u1")
    acc = np.array([P32_3, P64_1, P64_2, P64_3, P64_4, P32_2, P64_5, P32_1], dtype=np.uint64)
    stripes_per_block = (len(SECRET) - 64) // 8
    block_len = 64 * stripes_per_block
    nb_blocks = (n - 1) // block_len
    # keys[s] = the 8 secret words used by stripe s of a block (secret offset 8*s)
    keys = np.stack([np.frombuffer(SECRET[8 * s:8 * s + 64], dtype="<u8") for s in range(stripes_per_block)])
    swap = np.array([1, 0, 3, 2, 5, 4, 7, 6])
    lo32 = np.uint64(0xFFFFFFFF)
    s32 = np.uint64(32)

    def accumulate(acc, stripes, k):
        data_key = stripes ^ k
        prod = (data_key & lo32) * (data_key >> s32)
        acc = acc + prod.sum(axis=0, dtype=np.uint64)
        acc = acc + stripes.sum(axis=0, dtype=np.uint64)[swap]
        return acc

    scramble_key = np.frombuffer(SECRET[len(SECRET) - 64:], dtype="<u8")
    with np.errstate(over="ignore"):
        full = words[: nb_blocks * block_len // 8].reshape(nb_blocks, stripes_per_block, 8)
        for blk in range(nb_blocks):
            acc = accumulate(acc, full[blk], keys)
            acc = ((acc ^ (acc >> np.uint64(47))) ^ scramble_key) * np.uint64(P32_1)
        nb_stripes = ((n - 1) - block_len * nb_blocks) // 64
        start = nb_blocks * block_len
        if nb_stripes:
            tail = np.frombuffer(bytes(b[start:start + nb_stripes * 64]), dtype="<u8").reshape(nb_stripes, 8)
            acc = accumulate(acc, tail, keys[:nb_stripes])
        last = np.frombuffer(bytes(b[n - 64:n]), dtype="<u8").reshape(1, 8)
        acc = accumulate(acc, last, np.frombuffer(SECRET[len(SECRET) - 64 - 7:len(SECRET) - 7], dtype="<u8"))
    del secret_words
    accs = [int(x) for x in acc]
    result = (n * P64_1) & M64
    for i in range(4):
        result += _mul128_fold64(accs[2 * i] ^ _r64(SECRET, 11 + 16 * i), accs[2 * i + 1] ^ _r64(SECRET, 11 + 16 * i + 8))
    return _xxh3_avalanche(result & M64)


# ---------------------------------------------------------------- reading


class WpkError(Exception):
    pass


class WpkFile:
    """Opens and validates a .wpk file's preamble, header and footer (not the tensor data)."""

    def __init__(self, path):
        self.path = path
        size = os.path.getsize(path)
        if size < PREAMBLE + HEADER_FIXED + FOOTER:
            raise WpkError("file too small")
        self.raw = np.memmap(path, dtype=np.uint8, mode="r")
        pre = self.raw[:PREAMBLE].tobytes()
        if pre[:8] != MAGIC:
            raise WpkError("bad magic")
        (major, minor, mark, critical, _compat, hlen, hhash, fsize, align, reserved, phash) = struct.unpack(
            "<HHIIIQQQIIQ", pre[8:64])
        if mark != ENDIAN_MARK:
            raise WpkError("bad endianness mark")
        if major != 1:
            raise WpkError(f"unsupported version {major}.{minor}")
        if xxh3_64(pre[:56]) != phash:
            raise WpkError("preamble checksum mismatch")
        if critical:
            raise WpkError(f"unknown critical flags {critical:#x}")
        if align < 64 or align > 1 << 20 or align & (align - 1):
            raise WpkError(f"bad alignment {align}")
        if fsize != size:
            raise WpkError(f"file size {size} != declared {fsize}")
        foot = self.raw[size - FOOTER:].tobytes()
        fhash, fsize2, _fres = struct.unpack("<QQQ", foot[:24])  # reserved checked below
        if foot[24:] != MAGIC or fsize2 != fsize or fhash != hhash:
            raise WpkError("footer mismatch")
        same_minor = minor <= MINOR
        if same_minor and (reserved or _fres):
            raise WpkError("reserved field not zero")
        if hlen < HEADER_FIXED or PREAMBLE + hlen > size - FOOTER or hlen > 64 << 20:
            raise WpkError("header length out of bounds")
        header = self.raw[PREAMBLE:PREAMBLE + hlen].tobytes()
        if xxh3_64(header) != hhash:
            raise WpkError("header checksum mismatch")
        tcount, mcount, slen, data_offset, data_length = struct.unpack("<IIQQQ", header[:32])
        if tcount * (RECORD + INDEX_ENTRY) + mcount * META_RECORD > hlen - 32:
            raise WpkError("counts exceed the header")
        if 32 + tcount * (RECORD + INDEX_ENTRY) + mcount * META_RECORD + slen != hlen:
            raise WpkError("header length mismatch")
        if data_offset != (PREAMBLE + hlen + align - 1) // align * align:
            raise WpkError("bad data offset")
        if data_offset + data_length + FOOTER != size:
            raise WpkError("data length mismatch")
        if any(self.raw[PREAMBLE + hlen:data_offset]):
            raise WpkError("non-zero padding")
        strings_at = 32 + tcount * (RECORD + INDEX_ENTRY) + mcount * META_RECORD
        strings = header[strings_at:]

        def text(offset, length, what):
            if offset + length > len(strings):
                raise WpkError(f"{what} lies outside the string table")
            raw = strings[offset:offset + length]
            if b"\0" in raw:
                raise WpkError(f"{what} contains a NUL byte")
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise WpkError(f"{what} is not valid UTF-8") from None

        self.alignment, self.version = align, (major, minor)
        self.tensors = []
        position = data_offset
        seen_compressed = False
        for i in range(tcount):
            rec = header[32 + i * RECORD: 32 + (i + 1) * RECORD]
            noff, nlen, dtype, codec, rank, rbyte, rword = struct.unpack("<IIBBBBI", rec[:16])
            dims = struct.unpack("<8Q", rec[16:80])
            offset, stored, raw_size, checksum, tail0, tail1 = struct.unpack("<QQQQQQ", rec[80:128])
            name = text(noff, nlen, f"name of tensor record {i}")
            if not name or nlen > 1024:
                raise WpkError(f"tensor record {i}: name must be 1 to 1024 bytes")
            if same_minor and (rbyte or rword or tail0 or tail1):
                raise WpkError(f"tensor {name!r}: reserved field not zero")
            if rank > 8 or any(dims[rank:]):
                raise WpkError(f"tensor {name!r}: bad rank or unused dimensions")
            # A block type is known only to files that claim version 1.1 or later.
            known = dtype in DTYPE_SIZES and codec in CODECS and (dtype not in BLOCK_TYPES or minor >= 1)
            if not known and same_minor:
                raise WpkError(f"tensor {name!r}: bad dtype, codec or rank")
            shape = list(dims[:rank])
            # Every dimension counted, zeros as ones, must keep sizes inside a signed 64-bit int.
            bound = DTYPE_SIZES.get(dtype, 1)
            for d in shape:
                bound *= max(d, 1)
            if bound > 2**63 - 1 or raw_size > 2**63 - 1 or stored > 2**63 - 1:
                raise WpkError(f"tensor {name!r}: size overflow")
            count = int(np.prod(shape, dtype=object))
            if known and dtype in BLOCK_TYPES:
                if not shape or shape[-1] % BLOCK:
                    raise WpkError(f"tensor {name!r}: {DTYPE_NAMES[dtype]} needs a last dimension that is a multiple of {BLOCK}")
                if raw_size != count // BLOCK * DTYPE_SIZES[dtype]:
                    raise WpkError(f"tensor {name!r}: raw size mismatch")
            elif known and raw_size != count * DTYPE_SIZES[dtype]:
                raise WpkError(f"tensor {name!r}: raw size mismatch")
            if codec == 0 and stored != raw_size:
                raise WpkError(f"tensor {name!r}: stored size differs from raw size")
            if codec != 0:
                seen_compressed = True
            elif seen_compressed:
                raise WpkError(f"tensor {name!r}: uncompressed tensor after a compressed one")
            expected = (position + align - 1) // align * align
            if offset != expected:
                raise WpkError(f"tensor {name!r}: offset {offset}, expected {expected}")
            if offset + stored > size - FOOTER:
                raise WpkError(f"tensor {name!r}: outside the data")
            position = offset + stored
            self.tensors.append(dict(name=name, dtype=DTYPE_NAMES.get(dtype, f"unknown({dtype})"), dtype_code=dtype,
                                     shape=shape, offset=offset, stored_bytes=stored, raw_bytes=raw_size,
                                     codec=CODECS.get(codec, f"unknown({codec})"), checksum=f"{checksum:016x}"))
        if (position if tcount else data_offset) != data_offset + data_length:
            raise WpkError("trailing bytes after the last tensor")
        index_at = 32 + tcount * RECORD
        order = [struct.unpack_from("<I", header, index_at + 4 * i)[0] for i in range(tcount)]
        if sorted(order) != list(range(tcount)):
            raise WpkError("name index is not a permutation of the records")
        names = [self.tensors[i]["name"].encode() for i in order]
        if any(a >= b for a, b in zip(names, names[1:])):
            raise WpkError("name index not strictly sorted by name bytes (or a name repeats)")
        self.metadata = {}
        base = 32 + tcount * (RECORD + INDEX_ENTRY)
        previous = None
        for i in range(mcount):
            rec = header[base + i * META_RECORD: base + (i + 1) * META_RECORD]
            koff, klen, typ = struct.unpack("<IIB", rec[:9])
            a, b = struct.unpack("<QQ", rec[16:32])
            key = text(koff, klen, f"key of metadata record {i}")
            if not key or klen > 1024:
                raise WpkError(f"metadata record {i}: key must be 1 to 1024 bytes")
            if same_minor and any(rec[9:16]):
                raise WpkError(f"metadata {key!r}: reserved field not zero")
            if previous is not None and previous >= key.encode():
                raise WpkError(f"metadata key {key!r} repeats or is out of order")
            previous = key.encode()
            if typ != 1 and b and same_minor:
                raise WpkError(f"metadata {key!r}: length field not zero")
            if typ == 1:
                value = text(a, b, f"value of metadata {key!r}")
            elif typ == 2:
                value = struct.unpack("<q", struct.pack("<Q", a))[0]
            elif typ == 3:
                value = struct.unpack("<d", struct.pack("<Q", a))[0]
            elif typ == 4:
                if a > 1:
                    raise WpkError(f"metadata {key!r}: bool value {a}")
                value = bool(a)
            elif same_minor:
                raise WpkError(f"metadata {key!r}: unknown type {typ}")
            else:
                continue
            self.metadata[key] = value
        self.by_name = {t["name"]: t for t in self.tensors}

    def blocks(self, name):
        """The stored bytes of an uncompressed tensor, uint8, without decoding."""
        t = self.by_name[name]
        if t["codec"] != "none":
            raise WpkError(f"tensor {name!r} is zstd-compressed; this reader does not decode zstd")
        return self.raw[t["offset"]:t["offset"] + t["stored_bytes"]]

    def array(self, name):
        """A zero-copy np.memmap view for an uncompressed tensor; bfloat16 and the block types
        decoded to a float32 array (numpy has neither)."""
        t = self.by_name[name]
        if t["codec"] != "none":
            raise WpkError(f"tensor {name!r} is zstd-compressed; this reader does not decode zstd")
        if t["dtype_code"] == 3:
            bits = np.frombuffer(self.blocks(name).tobytes(), dtype="<u2").astype(np.uint32) << 16
            return bits.view(np.float32).reshape(t["shape"])
        if t["dtype_code"] in BLOCK_TYPES:
            return dequantize(self.blocks(name), t["dtype_code"]).reshape(t["shape"])
        count = int(np.prod(t["shape"], dtype=np.int64))
        view = np.ndarray(shape=tuple(t["shape"]), dtype=DTYPES[t["dtype_code"]], buffer=self.raw,
                          offset=t["offset"]) if count else np.zeros(t["shape"], DTYPES[t["dtype_code"]])
        return view

    def verify(self):
        for t in self.tensors:
            if t["codec"] != "none":
                continue
            data = self.raw[t["offset"]:t["offset"] + t["stored_bytes"]]
            if f"{xxh3_64(data.tobytes()):016x}" != t["checksum"]:
                raise WpkError(f"tensor {t['name']!r}: checksum mismatch")


def dequantize(raw, code):
    """float32 values of q8_0 / q4_0 / q4_1 blocks (GGUF's layouts): a float16 scale d (and,
    for q4_1, a float16 minimum m), then 32 int8 values or 16 bytes of nibbles, the low
    nibbles holding values 0..15 and the high ones 16..31."""
    b = np.frombuffer(bytes(raw), dtype=np.uint8).reshape(-1, DTYPE_SIZES[code])
    d = b[:, 0:2].copy().view("<f2").astype(np.float32)
    if code == 14:
        return (d * b[:, 2:].view(np.int8).astype(np.float32)).ravel()
    nibbles = b[:, 4:] if code == 16 else b[:, 2:]
    q = np.concatenate([nibbles & 15, nibbles >> 4], axis=1).astype(np.float32)
    if code == 15:
        return (d * (q - 8)).ravel()
    m = b[:, 2:4].copy().view("<f2").astype(np.float32)
    return (d * q + m).astype(np.float32).ravel()


# ---------------------------------------------------------------- writing

CODE_FOR = {np.dtype("<f4"): 1, np.dtype("<f2"): 2, np.dtype("<f8"): 4, np.dtype("i1"): 5, np.dtype("<i2"): 6,
            np.dtype("<i4"): 7, np.dtype("<i8"): 8, np.dtype("u1"): 9, np.dtype("<u2"): 10, np.dtype("<u4"): 11,
            np.dtype("<u8"): 12, np.dtype("?"): 13}


class Coded:
    """A tensor given as its stored bytes in a dtype numpy lacks (bfloat16, q8_0, q4_0, q4_1)."""

    def __init__(self, dtype, shape, raw):
        self.code = {v: k for k, v in DTYPE_NAMES.items()}[dtype]
        self.shape, self.raw = list(shape), bytes(raw)
        count = int(np.prod(self.shape, dtype=object))
        size = count // BLOCK * DTYPE_SIZES[self.code] if self.code in BLOCK_TYPES else count * DTYPE_SIZES[self.code]
        if len(self.raw) != size or (self.code in BLOCK_TYPES and (not self.shape or self.shape[-1] % BLOCK)):
            raise WpkError(f"{dtype} {self.shape}: {len(self.raw)} bytes do not fit")

    def tobytes(self):
        return self.raw


def write(path, arrays, metadata=None, alignment=64):
    """Writes `arrays` (name -> ndarray or Coded, in order) uncompressed, with string/int/float/bool
    metadata. The file is 1.1 when it holds a block type, 1.0 otherwise."""
    metadata = metadata or {}
    names = list(arrays)
    strings = bytearray()
    spans = {}

    def add(s):
        raw = s.encode("utf-8")
        if s not in spans:
            spans[s] = (len(strings), len(raw))
            strings.extend(raw)
        return spans[s]

    arrays = {k: v if isinstance(v, Coded) else
              np.asarray(v, order="C", dtype=v.dtype.newbyteorder("<") if v.dtype.byteorder == ">" else v.dtype)
              for k, v in arrays.items()}
    records = []
    minor = 0
    for name in names:
        a = arrays[name]
        if isinstance(a, Coded):
            minor = max(minor, 1 if a.code in BLOCK_TYPES else 0)
            records.append([*add(name), a.code, len(a.shape), a.shape, len(a.raw), xxh3_64(a.raw)])
            continue
        if a.dtype not in CODE_FOR or a.ndim > 8:
            raise WpkError(f"{name}: unsupported dtype {a.dtype} or rank {a.ndim}")
        records.append([*add(name), CODE_FOR[a.dtype], a.ndim, list(a.shape), a.nbytes, xxh3_64(a.tobytes())])
    meta_records = []
    for key in sorted(metadata, key=lambda k: k.encode()):
        v = metadata[key]
        ko, kl = add(key)
        if isinstance(v, bool):
            meta_records.append(struct.pack("<IIB7xQQ", ko, kl, 4, int(v), 0))
        elif isinstance(v, int):
            meta_records.append(struct.pack("<IIB7xqQ", ko, kl, 2, v, 0))
        elif isinstance(v, float):
            meta_records.append(struct.pack("<IIB7xdQ", ko, kl, 3, v, 0))
        else:
            vo, vl = add(str(v))
            meta_records.append(struct.pack("<IIB7xQQ", ko, kl, 1, vo, vl))
    hlen = 32 + len(records) * (RECORD + INDEX_ENTRY) + len(meta_records) * META_RECORD + len(strings)
    align_up = lambda x: (x + alignment - 1) // alignment * alignment
    data_offset = align_up(PREAMBLE + hlen)
    position = data_offset
    for r in records:
        r.append(align_up(position))
        position = r[-1] + r[5]
    data_length = position - data_offset
    header = bytearray(struct.pack("<IIQQQ", len(records), len(meta_records), len(strings), data_offset, data_length))
    for (noff, nlen, code, rank, shape, nbytes, checksum, offset) in records:
        dims = shape + [0] * (8 - rank)
        header += struct.pack("<IIBBBBI8QQQQQ16x", noff, nlen, code, 0, rank, 0, 0, *dims, offset, nbytes, nbytes, checksum)
    order = sorted(range(len(names)), key=lambda i: names[i].encode())
    header += struct.pack(f"<{len(order)}I", *order)
    for m in meta_records:
        header += m
    header += strings
    hhash = xxh3_64(bytes(header))
    fsize = position + FOOTER
    pre = MAGIC + struct.pack("<HHIIIQQQII", 1, minor, ENDIAN_MARK, 0, 0, hlen, hhash, fsize, alignment, 0)
    pre += struct.pack("<Q", xxh3_64(pre))
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(pre)
            f.write(header)
            for name, r in zip(names, records):
                f.write(b"\0" * (r[-1] - f.tell()))
                f.write(arrays[name].tobytes())
            f.write(b"\0" * (data_offset + data_length - f.tell()))  # an empty store still pads to the data offset
            f.write(struct.pack("<QQQ", hhash, fsize, 0) + MAGIC)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, path = argv[1], argv[2]
    try:
        if cmd == "inspect":
            f = WpkFile(path)
            print(json.dumps({"tensors": [{k: v for k, v in t.items() if k != "dtype_code"} for t in f.tensors],
                              "metadata": f.metadata, "alignment": f.alignment}, indent=1))
        elif cmd == "verify":
            f = WpkFile(path)
            f.verify()
            print(f"ok: {len(f.tensors)} tensors")
        elif cmd == "dump":
            f = WpkFile(path)
            np.savez(argv[3], **{t["name"]: f.array(t["name"]) for t in f.tensors if t["codec"] == "none"})
        elif cmd == "pack":
            args = argv[3:]
            out, align, meta = args[0], 64, {}
            i = 1
            while i < len(args):
                if args[i] == "--align":
                    align = int(args[i + 1]); i += 2
                elif args[i] == "--meta":
                    k, v = args[i + 1].split("=", 1); meta[k] = v; i += 2
                else:
                    raise WpkError(f"unknown option {args[i]}")
            with np.load(path) as z:
                write(out, {k: z[k] for k in z.files}, meta, align)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (WpkError, OSError, KeyError) as e:
        print(f"wpk.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

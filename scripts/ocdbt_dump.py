#!/usr/bin/env python3
"""Independent OCDBT decoder, written from TensorStore's index.rst, for cross-checking cairn's C++ codec.

Usage: ocdbt_dump.py DB_DIR [--values]
Checks every CRC, walks the latest generation's B+tree, verifies key order, heights, subtree prefixes and
statistics, and prints one line per key (key, kind, length, and with --values a short digest of the value).
Needs only the `zstd` command-line tool. Exits non-zero on any inconsistency.
"""
import hashlib
import os
import subprocess
import sys

POLY = 0x82F63B78
TABLE = []
for b in range(256):
    c = b
    for _ in range(8):
        c = (c >> 1) ^ (POLY if c & 1 else 0)
    TABLE.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for byte in data:
        c = (c >> 8) ^ TABLE[(c ^ byte) & 0xFF]
    return c ^ 0xFFFFFFFF


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def byte(self):
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self):
        result, shift = 0, 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    def raw(self, n):
        assert self.pos + n <= len(self.data), "truncated"
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u64(self):
        return int.from_bytes(self.raw(8), "little")

    def u32(self):
        return int.from_bytes(self.raw(4), "little")


def envelope(data, magic):
    assert int.from_bytes(data[:4], "big") == magic, "magic"
    assert int.from_bytes(data[4:12], "little") == len(data), "length"
    assert crc32c(data[:-4]) == int.from_bytes(data[-4:], "little"), "crc"
    r = Reader(data[:-4])
    r.pos = 12
    assert r.varint() == 0, "version"
    compression = r.varint()
    body = data[r.pos:-4]
    if compression == 1:
        body = subprocess.run(["zstd", "-d", "-c", "-q"], input=body, capture_output=True, check=True).stdout
    else:
        assert compression == 0
    return Reader(body)


def file_table(r, transitive):
    n = r.varint()
    prefix = [0] + [r.varint() for _ in range(n - 1)] if n else []
    suffix = [r.varint() for _ in range(n)]
    base = [r.varint() for _ in range(n)]
    files, prev = [], b""
    for i in range(n):
        path = prev[:prefix[i]] + r.raw(suffix[i])
        files.append((transitive + path[:base[i]], path[base[i]:]))
        prev = path
    return files


def keys(r, n, interior):
    prefix = [0] + [r.varint() for _ in range(n - 1)]
    suffix = [r.varint() for _ in range(n)]
    scp = [r.varint() for _ in range(n)] if interior else None
    out, prev = [], b""
    for i in range(n):
        k = prev[:prefix[i]] + r.raw(suffix[i])
        assert i == 0 or k > prev, "key order"
        out.append(k)
        prev = k
    return out, scp


def read_node(db, ref, height, inherited, lower, lines, with_values):
    (base, rel), offset, length = ref
    with open(os.path.join(db, (base + rel).decode()), "rb") as f:
        f.seek(offset)
        data = f.read(length)
    assert len(data) == length, "node truncated"
    r = envelope(data, 0x0CDB20DE)
    assert r.byte() == height, "height"
    files = file_table(r, base)
    n = r.varint()
    assert n >= 1
    stats = [0, length, 0]  # num_keys, num_tree_bytes, num_indirect_value_bytes
    if height == 0:
        ks, _ = keys(r, n, False)
        lengths = [r.varint() for _ in range(n)]
        kinds = [r.byte() for _ in range(n)]
        ids = {i: files[r.varint()] for i in range(n) if kinds[i] == 1}
        offs = {i: r.varint() for i in range(n) if kinds[i] == 1}
        for i in range(n):
            full = inherited + ks[i]
            assert full >= lower, "below parent bound"
            if kinds[i] == 0:
                value = r.raw(lengths[i])
                kind = "inline"
            else:
                fb, fr = ids[i]
                with open(os.path.join(db, (fb + fr).decode()), "rb") as f:
                    f.seek(offs[i])
                    value = f.read(lengths[i])
                assert len(value) == lengths[i], "value truncated"
                kind = "outline:" + (fb + fr).decode()
                stats[2] += lengths[i]
            line = "%r %s %d" % (full, kind, lengths[i])
            if with_values:
                line += " " + hashlib.sha256(value).hexdigest()[:16]
            lines.append(line)
        stats[0] = n
    else:
        ks, scp = keys(r, n, True)
        ids = [files[r.varint()] for _ in range(n)]
        offs = [r.varint() for _ in range(n)]
        lens = [r.varint() for _ in range(n)]
        child_stats = [[r.varint() for _ in range(n)] for _ in range(3)]
        for i in range(n):
            got = read_node(db, (ids[i], offs[i], lens[i]), height - 1, inherited + ks[i][:scp[i]],
                            inherited + ks[i], lines, with_values)
            assert got == [child_stats[0][i], child_stats[1][i], child_stats[2][i]], "stats"
            stats[0] += got[0]
            stats[1] += got[1]
            stats[2] += got[2]
    assert r.pos == len(r.data), "trailing bytes"
    return stats


def main():
    db = sys.argv[1]
    with_values = "--values" in sys.argv
    with open(os.path.join(db, "manifest.ocdbt"), "rb") as f:
        r = envelope(f.read(), 0x0CDB3A2A)
    uuid = r.raw(16)
    kind = r.byte()
    config = dict(manifest_kind=kind, max_inline=r.varint(), max_node=r.varint(), arity_log2=r.byte(),
                  compression=r.varint())
    if config["compression"] == 1:
        config["zstd_level"] = r.u32()
    assert kind == 0, "only single manifests here"
    files = file_table(r, b"")
    n = r.varint()
    gens = [r.varint() for _ in range(n)]
    heights = [r.byte() for _ in range(n)]
    ids = [files[r.varint()] for _ in range(n)]
    offs = [r.varint() for _ in range(n)]
    lens = [r.varint() for _ in range(n)]
    st = [[r.varint() for _ in range(n)] for _ in range(3)]
    times = [r.u64() for _ in range(n)]
    m = r.varint()
    for _ in range(m):
        r.varint()
    # (version nodes: generation, file, offset, length, num_generations, commit time, height)
    for _ in range(4 * m):
        r.varint()
    r.raw(8 * m)
    r.raw(m)
    assert r.pos == len(r.data), "manifest trailing bytes"
    print("uuid", uuid.hex(), config, "generations", gens, "root height", heights[-1], "commit", times[-1])
    lines = []
    if offs[-1] == 2**64 - 1 and lens[-1] == 2**64 - 1:
        stats = [0, 0, 0]
    else:
        stats = read_node(db, (ids[-1], offs[-1], lens[-1]), heights[-1], b"", b"", lines, with_values)
    assert stats == [st[0][-1], st[1][-1], st[2][-1]], ("root stats", stats, [s[-1] for s in st])
    print("keys", stats[0], "tree bytes", stats[1], "indirect bytes", stats[2])
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()

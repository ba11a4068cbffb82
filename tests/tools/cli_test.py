#!/usr/bin/python3
"""Tests of the `cairn` command: every command, exit codes, --json output, progress on a terminal, and safetensors
interop with an independent reader and writer (json + numpy, written here) and with torch where it is installed.

    /usr/bin/python3 tests/tools/cli_test.py <path to the cairn binary> <Orbax fixtures dir>
"""
import json
import os
import pty
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

CAIRN = None
FIXTURES = None
try:
    import torch  # python3-torch (1.13 on Debian 12); the torch checks are skipped without it
except Exception:  # pragma: no cover
    torch = None


def run(*args, check_rc=None):
    p = subprocess.run([CAIRN, *map(str, args)], capture_output=True, text=True)
    if check_rc is not None and p.returncode != check_rc:
        raise AssertionError(f"cairn {' '.join(map(str, args))}: rc {p.returncode}, expected {check_rc}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def run_on_terminal(*args):
    """Runs cairn with stderr on a pseudo-terminal; returns (exit status, what it wrote there)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([CAIRN, *map(str, args)], stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO once the child has closed its end
            break
        if not chunk:
            break
        out += chunk
    proc.wait()
    os.close(master)
    return proc.returncode, out


# --- an independent safetensors reader and writer, from the format's description ---

ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
             "I16": np.int16, "I8": np.int8, "U8": np.uint8, "U16": np.uint16, "U32": np.uint32, "U64": np.uint64,
             "BOOL": np.bool_, "BF16": np.uint16}  # bf16 read as its raw 16 bits


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        raw = data[8 + n + b:8 + n + e]
        out[name] = (info["dtype"], np.frombuffer(raw, dtype=ST_DTYPES[info["dtype"]]).reshape(info["shape"]))
    return out, meta, n


def write_safetensors(path, tensors, metadata=None, pad=7):
    """tensors: name -> (dtype string, numpy array of matching bytes). Written in reverse name order."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors, reverse=True):
        dtype, arr = tensors[name]
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode() + b" " * pad
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def bf16_bits(x):
    return (np.asarray(x, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cairn_cli_test_")
        self.fixture = os.path.join(FIXTURES, "v0_checkpoints/direct_checkpoint/checkpoint_metadata_present/"
                                              "pytree_checkpointable_has_metadata")
        self.composite = os.path.join(FIXTURES, "v0_checkpoints/composite_checkpoint/checkpoint_metadata_present/"
                                                "pytree_checkpointable_has_metadata")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def make_model(self, name="model.safetensors"):
        rng = np.random.default_rng(0)
        w = rng.standard_normal((4, 6)).astype(np.float32)
        tensors = {
            "params.w": ("F32", w),
            "params.b": ("BF16", bf16_bits([1.5, -2.0, 3.25])),
            "layers.0.k": ("I64", np.arange(5, dtype=np.int64)),
            "mask": ("BOOL", np.array([True, False, True])),
            "half": ("F16", np.array([0.5, 1.0], dtype=np.float16)),
            "step": ("I32", np.array(7, dtype=np.int32)),
        }
        path = self.path(name)
        write_safetensors(path, tensors, {"format": "pt", "note": "written by the test"})
        return path, tensors

    # --- general ---

    def test_help_and_usage_errors(self):
        self.assertIn("Commands:", run("--help", check_rc=0).stdout)
        for cmd in ("info", "verify", "diff", "cat", "convert"):
            self.assertIn("usage: cairn " + cmd, run(cmd, "--help", check_rc=0).stdout)
        run(check_rc=2)
        self.assertIn("unknown command", run("frobnicate", check_rc=2).stderr)
        run("info", check_rc=2)
        self.assertIn("unknown option --bogus", run("info", "--bogus", self.fixture, check_rc=2).stderr)
        run("cat", self.fixture, "a", "--slice", "0:x", check_rc=2)
        run("cat", self.fixture, "a", "--slice", "0,1", check_rc=2)
        run("diff", self.fixture, check_rc=2)
        run("convert", self.fixture, self.path("x.safetensors"), "--zarr3", check_rc=2)

    def test_bad_inputs_have_their_exit_codes(self):
        missing = self.path("nope")
        for cmd in ("info", "verify"):
            p = run(cmd, missing, check_rc=3)
            self.assertIn(missing, p.stderr)
        run("cat", missing, "a", check_rc=3)
        os.mkdir(self.path("7.orbax-checkpoint-tmp"))
        for target in (self.path("7"), self.path("7.orbax-checkpoint-tmp")):
            for cmd in ("info", "verify"):
                self.assertIn("incomplete", run(cmd, target, check_rc=5).stderr)
        os.mkdir(self.path("empty"))
        self.assertIn("not a checkpoint", run("info", self.path("empty"), check_rc=3).stderr)
        with open(self.path("junk.safetensors"), "wb") as f:
            f.write(struct.pack("<Q", 1 << 40) + b"{}")
        self.assertIn("runs past the end", run("info", self.path("junk.safetensors"), check_rc=4).stderr)
        run("cat", self.fixture, "no.such.param", check_rc=3)

    # --- info ---

    def test_info_text_and_json(self):
        p = run("info", self.fixture, check_rc=0)
        self.assertIn("OCDBT", p.stdout)
        self.assertIn("int32", p.stdout)
        d = json.loads(run("info", "--json", self.fixture, check_rc=0).stdout)
        self.assertEqual(d["kind"], "step")
        item = d["items"][0]
        self.assertEqual(item["layout"]["ocdbt"], True)
        self.assertEqual(item["layout"]["zarr_formats"], [2])
        names = {leaf["name"]: leaf for leaf in item["tree"]}
        self.assertEqual(names["a"]["shape"], [8])
        self.assertEqual(names["a"]["dtype"], "int32")
        self.assertEqual(names["a"]["compression"], "zstd(1)")
        self.assertEqual(d["step_metadata"]["custom_metadata"], {"custom": "meta"})
        d = json.loads(run("info", "--json", self.composite, check_rc=0).stdout)
        self.assertEqual(sorted(i["name"] for i in d["items"]), ["metadata", "state"])

    def test_info_exits_4_on_damage_it_prints(self):
        # An undecodable B+tree node: info prints each array's error, and its exit status says the checkpoint is
        # damaged (issue 13; it used to exit 0).
        ck = self.path("node")
        shutil.copytree(self.fixture, ck)
        for name in os.listdir(os.path.join(ck, "d")):
            with open(os.path.join(ck, "d", name), "r+b") as f:
                f.seek(-1, os.SEEK_END)
                b = f.read(1)
                f.seek(-1, os.SEEK_END)
                f.write(bytes([b[0] ^ 1]))
        p = run("info", ck, check_rc=4)
        self.assertIn("error", p.stdout)
        d = json.loads(run("info", "--json", ck, check_rc=4).stdout)
        self.assertTrue(all("error" in leaf for leaf in d["items"][0]["tree"]))
        # A _METADATA that still parses but fails its recorded CRC-32C.
        ck2 = self.path("meta")
        run("convert", self.fixture, ck2, check_rc=0)
        meta = os.path.join(ck2, "_METADATA")
        with open(meta) as f:
            text = f.read()
        self.assertIn("('a',)", text)
        with open(meta, "w") as f:
            f.write(text.replace("('a',)", "('x',)", 1))
        p = run("info", ck2, check_rc=4)
        self.assertIn("_METADATA", p.stderr)
        self.assertIn("CRC-32C", p.stderr)

    def test_commands_exit_4_on_metadata_that_fails_its_crc(self):
        # One extra space: the files still parse and mean the same, but no longer match the CRC-32C cairn recorded
        # when it saved them; every command reads them as a restore does, checked (docs/cli.md: exit 4).
        def respace(path):
            with open(path) as f:
                text = f.read()
            self.assertIn(": ", text)
            with open(path, "w") as f:
                f.write(text.replace(": ", ":  ", 1))

        ck = self.path("ck")
        run("convert", self.fixture, ck, check_rc=0)
        respace(os.path.join(ck, "_METADATA"))
        for args in (["info", ck], ["cat", ck, "a"], ["diff", ck, self.fixture], ["convert", ck, self.path("out")]):
            p = run(*args, check_rc=4)
            self.assertIn("_METADATA", p.stderr)
            self.assertIn("CRC-32C", p.stderr)
        # A JSON item of a composite step, with its cairn_<file>.crc32c beside it.
        comp = self.path("comp")
        run("convert", self.composite, comp, check_rc=0)
        item = os.path.join(comp, "metadata")
        files = [n for n in os.listdir(item) if not n.startswith("cairn_") and n != "commit_success.txt"]
        self.assertEqual(len(files), 1)
        respace(os.path.join(item, files[0]))
        for args in (["info", comp], ["diff", comp, self.composite]):
            p = run(*args, check_rc=4)
            self.assertIn("CRC-32C", p.stderr)

    def test_info_reads_no_array_data(self):
        ck = self.path("ck")
        run("convert", self.fixture, ck, "--no-ocdbt", check_rc=0)
        for param in ("a", "b.c"):
            os.remove(os.path.join(ck, param, "0"))  # every chunk gone: info still works
        d = json.loads(run("info", "--json", ck, check_rc=0).stdout)
        self.assertEqual(d["items"][0]["layout"]["ocdbt"], False)
        self.assertEqual(d["items"][0]["bytes"], 44)

    def test_info_on_a_manager_root_lists_steps(self):
        root = self.path("run")
        os.mkdir(root)
        run("convert", self.fixture, os.path.join(root, "1"), check_rc=0)
        run("convert", self.fixture, os.path.join(root, "2"), "--no-ocdbt", check_rc=0)
        os.mkdir(os.path.join(root, "3.orbax-checkpoint-tmp"))
        d = json.loads(run("info", "--json", root, check_rc=0).stdout)
        self.assertEqual(d["kind"], "root")
        self.assertEqual([s["name"] for s in d["steps"]], ["1", "2"])
        self.assertEqual(d["unfinished"], ["3.orbax-checkpoint-tmp"])
        self.assertIn("step 2", run("info", root, check_rc=0).stdout)
        r = json.loads(run("verify", "--json", root, check_rc=0).stdout)
        self.assertEqual(r["steps"], 2)

    # --- verify ---

    def test_verify_ok_and_orbax_without_checksums(self):
        p = run("verify", self.fixture, check_rc=0)
        self.assertIn("no checksums", p.stdout)
        ck = self.path("ck")
        run("convert", self.fixture, ck, check_rc=0)
        r = json.loads(run("verify", "--json", ck, check_rc=0).stdout)
        self.assertTrue(r["ok"])
        self.assertEqual(r["chunks"], 2)
        self.assertEqual(r["chunks_checksummed"], 2)
        self.assertEqual(r["notes"], [])
        run("verify", self.composite, check_rc=0)

    def test_verify_catches_a_flipped_byte(self):
        ck = self.path("ck")
        run("convert", self.fixture, ck, "--no-ocdbt", "--compression", "none", check_rc=0)
        chunk = os.path.join(ck, "a", "0")
        with open(chunk, "r+b") as f:
            f.seek(5)
            b = f.read(1)
            f.seek(5)
            f.write(bytes([b[0] ^ 1]))
        p = run("verify", ck, check_rc=1)
        self.assertIn("a/0", p.stdout)
        self.assertIn("CRC-32C", p.stdout)
        r = json.loads(run("verify", "--json", ck, check_rc=1).stdout)
        self.assertFalse(r["ok"])
        self.assertEqual([x["where"] for x in r["problems"]], ["a/0"])
        # In an OCDBT checkpoint: the byte flipped in the data file holding the chunks.
        ck2 = self.path("ck2")
        run("convert", self.fixture, ck2, check_rc=0)
        meta = os.path.join(ck2, "_METADATA")
        with open(meta, "r+b") as f:
            f.seek(10)
            b = f.read(1)
            f.seek(10)
            f.write(bytes([b[0] ^ 1]))
        self.assertIn("_METADATA", run("verify", ck2, check_rc=1).stdout)

    def test_verify_catches_a_missing_chunk(self):
        ck = self.path("ck")
        run("convert", self.fixture, ck, "--no-ocdbt", check_rc=0)
        os.remove(os.path.join(ck, "b.c", "0"))
        p = run("verify", ck, check_rc=1)
        self.assertIn("b.c/0: is missing", p.stdout)

    def test_verify_safetensors(self):
        path, _ = self.make_model()
        run("verify", path, check_rc=0)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) - 1)
        self.assertIn("cover", run("verify", path, check_rc=1).stdout)

    def test_progress_bar_only_on_a_terminal(self):
        ck = self.path("ck")
        run("convert", self.fixture, ck, check_rc=0)
        p = run("verify", ck, check_rc=0)
        self.assertNotIn("\r", p.stderr)
        self.assertNotIn("B/s", p.stderr)
        # stderr a terminal: the bar shows bytes done/total and the rate.
        rc, out = run_on_terminal("verify", ck)
        self.assertEqual(rc, 0)
        text = out.decode()
        self.assertIn("\r", text)
        self.assertIn("B/s", text)
        self.assertIn("100%", text)
        # --no-progress turns it off even on a terminal.
        rc, out = run_on_terminal("verify", "--no-progress", ck)
        self.assertNotIn(b"B/s", out)

    # --- cat ---

    def test_cat(self):
        d = json.loads(run("cat", "--json", self.fixture, "a", check_rc=0).stdout)
        self.assertEqual(d["dtype"], "int32")
        self.assertEqual(d["values"], list(range(8)))  # the fixture's a = arange(8)
        d = json.loads(run("cat", "--json", self.fixture, "a", "--slice", "2:7:2", check_rc=0).stdout)
        self.assertEqual(d["values"], [2, 4, 6])
        d = json.loads(run("cat", "--json", self.fixture, "a", "--slice", "-1", check_rc=0).stdout)
        self.assertEqual(d["values"], 7)
        self.assertIn("[0, 1, 2, 3, 4, 5, 6, 7]", run("cat", self.fixture, "a", check_rc=0).stdout)
        d = json.loads(run("cat", "--json", self.composite, "state.b.c", check_rc=0).stdout)
        self.assertEqual(d["values"], [1, 2, 3])
        path, tensors = self.make_model()
        d = json.loads(run("cat", "--json", path, "params.w", "--slice", "1:3,::2", check_rc=0).stdout)
        np.testing.assert_allclose(np.array(d["values"]), tensors["params.w"][1][1:3, ::2], rtol=1e-7)
        d = json.loads(run("cat", "--json", path, "params.b", check_rc=0).stdout)
        self.assertEqual(d["dtype"], "bfloat16")
        self.assertEqual(d["values"], [1.5, -2.0, 3.25])
        # Large arrays are summarised unless --all.
        write_safetensors(self.path("big.safetensors"), {"x": ("F32", np.arange(5000, dtype=np.float32))})
        self.assertIn("...", run("cat", self.path("big.safetensors"), "x", check_rc=0).stdout)
        self.assertIn("2500", run("cat", "--all", self.path("big.safetensors"), "x", check_rc=0).stdout)

    # --- diff ---

    def test_diff(self):
        path, tensors = self.make_model()
        ck = self.path("ck")
        run("convert", path, ck, check_rc=0)
        self.assertIn("same", run("diff", path, ck, check_rc=0).stdout)
        w = tensors["params.w"][1].copy()
        w[1, 2] += 0.5
        changed = dict(tensors)
        changed["params.w"] = ("F32", w)
        del changed["mask"]
        changed["extra"] = ("U8", np.zeros(2, np.uint8))
        other = self.path("other.safetensors")
        write_safetensors(other, changed)
        d = json.loads(run("diff", "--json", ck, other, check_rc=1).stdout)
        self.assertFalse(d["same"])
        self.assertEqual(d["only_in_a"], ["mask"])
        self.assertEqual(d["only_in_b"], ["extra"])
        entry = next(e for e in d["arrays"] if e["name"] == "params.w")
        self.assertAlmostEqual(entry["max_abs_error"], 0.5, places=5)
        self.assertAlmostEqual(entry["max_rel_error"], 0.5 / abs(tensors["params.w"][1][1, 2]), places=4)
        self.assertEqual(entry["elements_differing"], 1)
        text = run("diff", ck, other, check_rc=1).stdout
        self.assertIn("only in A: mask", text)
        self.assertIn("params.w: max abs error 0.5", text)
        run("diff", "--atol", "0.6", self.path("ck"), self.path("ck"), check_rc=0)

    # --- convert and safetensors interop ---

    def test_cairn_writes_what_an_independent_reader_and_torch_read(self):
        path, tensors = self.make_model()
        ck = self.path("ck")
        run("convert", path, ck, check_rc=0)
        out = self.path("back.safetensors")
        run("convert", ck, out, check_rc=0)
        got, meta, n = read_safetensors(out)
        self.assertEqual(n % 8, 0)
        self.assertEqual(set(got), set(tensors))
        for name, (dtype, arr) in tensors.items():
            self.assertEqual(got[name][0], dtype, name)
            np.testing.assert_array_equal(got[name][1], arr, err_msg=name)
        self.assertEqual(json.loads(meta["cairn.custom_metadata"]), {"format": "pt", "note": "written by the test"})
        if torch is not None:
            t = {name: torch.from_numpy(arr.copy()) for name, (dtype, arr) in got.items() if dtype != "BF16"}
            t["params.b"] = torch.from_numpy(got["params.b"][1].astype(np.int16)).view(torch.bfloat16)
            self.assertTrue(torch.equal(t["params.w"], torch.from_numpy(tensors["params.w"][1])))
            self.assertEqual(t["params.b"].tolist(), [1.5, -2.0, 3.25])
            self.assertEqual(t["step"].item(), 7)

    def test_cairn_reads_files_written_by_the_test_and_torch(self):
        if torch is None:
            self.skipTest("torch is not installed")
        torch.manual_seed(0)
        sd = {"encoder.weight": torch.randn(3, 5), "encoder.bias": torch.zeros(5, dtype=torch.float64),
              "head.weight": torch.randn(2, 2).to(torch.bfloat16)}
        tensors = {}
        for name, t in sd.items():
            if t.dtype == torch.bfloat16:
                tensors[name] = ("BF16", t.view(torch.int16).numpy().view(np.uint16))
            else:
                tensors[name] = ({torch.float32: "F32", torch.float64: "F64"}[t.dtype], t.numpy())
        path = self.path("torch.safetensors")
        write_safetensors(path, tensors, {"format": "pt"})
        d = json.loads(run("cat", "--json", path, "encoder.weight", check_rc=0).stdout)
        np.testing.assert_allclose(np.array(d["values"], dtype=np.float32), sd["encoder.weight"].numpy(), rtol=0)
        d = json.loads(run("cat", "--json", path, "head.weight", check_rc=0).stdout)
        self.assertEqual(d["values"], sd["head.weight"].float().tolist())
        ck = self.path("ck")
        run("convert", path, ck, "--zarr3", check_rc=0)
        run("verify", ck, check_rc=0)
        run("diff", path, ck, check_rc=0)
        info = json.loads(run("info", "--json", ck, check_rc=0).stdout)
        self.assertEqual(info["step_metadata"]["custom_metadata"], {"format": "pt"})

    def test_convert_between_layouts(self):
        path, _ = self.make_model()
        base = self.path("base")
        run("convert", path, base, check_rc=0)
        for i, flags in enumerate([["--no-ocdbt"], ["--zarr3"], ["--no-ocdbt", "--zarr3", "--compression", "none"]]):
            dst = self.path(f"c{i}")
            run("convert", base, dst, *flags, check_rc=0)
            layout = json.loads(run("info", "--json", dst, check_rc=0).stdout)["items"][0]["layout"]
            self.assertEqual(layout["ocdbt"], "--no-ocdbt" not in flags)
            self.assertEqual(layout["zarr_formats"], [3] if "--zarr3" in flags else [2])
            run("verify", dst, check_rc=0)
            run("diff", base, dst, check_rc=0)
        self.assertIn("already exists", run("convert", base, self.path("c0"), check_rc=6).stderr)
        run("convert", base, self.path("c0"), "--force", check_rc=0)
        # A composite step keeps its items (a JSON item included) and its custom metadata.
        comp = self.path("comp")
        run("convert", self.composite, comp, "--no-ocdbt", check_rc=0)
        d = json.loads(run("info", "--json", comp, check_rc=0).stdout)
        self.assertEqual(sorted(i["name"] for i in d["items"]), ["metadata", "state"])
        self.assertEqual(d["step_metadata"]["custom_metadata"], {"custom": "meta"})
        run("diff", self.composite, comp, check_rc=0)
        # Composite -> safetensors: names prefixed with the item; the JSON item is left out, with a note.
        p = run("convert", self.composite, self.path("comp.safetensors"), check_rc=0)
        self.assertIn("left out", p.stderr)
        got, _, _ = read_safetensors(self.path("comp.safetensors"))
        self.assertEqual(sorted(got), ["state.a", "state.b.c"])


if __name__ == "__main__":
    CAIRN, FIXTURES = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[3:])

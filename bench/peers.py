#!/usr/bin/python3
"""The peers of `make bench`, on the same bytes as cairn_bench.

Reads the state that cairn_bench left in <dump>/ (state.bin + manifest.json: every array's name, dtype, shape
and offset), then, for each peer, saves it (durably: every file it wrote is fsync'd, inside the timing), loads it
warm (page cache) and cold (after dropping the page cache, when allowed), and checks the loaded bytes once.
Each save and warm load is the best of --reps repetitions, fewer for a slow peer once its repetitions have taken
--budget-s seconds (zarr-python writes 2 GiB at ~0.1-0.15 GiB/s here).

Run with Debian's python3 (/usr/bin/python3), which has python3-torch, python3-numpy, python3-zarr,
python3-numcodecs and python3-h5py. bench/run.py runs it; it can also run alone:

    /usr/bin/python3 bench/peers.py --dump DIR/floor --dir DIR --json peers.json [--reps 3] [--no-cold]
"""

import argparse
import gc
import json
import os
import shutil
import sys
import time

import numpy as np

GIB = 1024.0 ** 3


def log(msg):
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


def drop_caches():
    """sync; echo 3 > /proc/sys/vm/drop_caches. Returns '' or why it could not."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3")
        return ""
    except OSError as e:
        return f"drop_caches: {e}"


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root):
    """fsync every file and directory under root (and root's parent), as a durable checkpoint needs."""
    if os.path.isfile(root):
        fsync_path(root)
    else:
        for dirpath, _dirnames, filenames in os.walk(root):
            for name in filenames:
                fsync_path(os.path.join(dirpath, name))
            fsync_path(dirpath)
    fsync_path(os.path.dirname(os.path.abspath(root)))


def remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def disk_usage(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for dirpath, _d, filenames in os.walk(path):
        for name in filenames:
            total += os.path.getsize(os.path.join(dirpath, name))
    return total


def measure(secs, nbytes):
    best = min(secs)
    return {"seconds": secs, "best_seconds": best, "bytes": nbytes, "gib_per_s": nbytes / best / GIB}


# -------------------------------------------------------------------------------------------------------------
# The state: one separate numpy array per parameter (as a program would hold them), read from the dump.

STORAGE_DTYPE = {"float32": np.dtype("<f4"), "bfloat16": np.dtype("<u2")}  # numpy has no bfloat16


def load_state(dump):
    with open(os.path.join(dump, "manifest.json")) as f:
        manifest = json.load(f)
    state = {}
    with open(os.path.join(dump, manifest["file"]), "rb") as f:
        for a in manifest["arrays"]:
            dt = STORAGE_DTYPE[a["dtype"]]
            f.seek(a["offset"])
            arr = np.fromfile(f, dtype=dt, count=a["bytes"] // dt.itemsize).reshape(a["shape"])
            state[a["name"]] = (a["dtype"], arr)
    return manifest, state


def same_bytes(state, loaded):
    """loaded: name -> array-like (numpy or torch). True when every array has the state's bytes."""
    if set(loaded) != set(state):
        return False
    for name, (_dtype, ref) in state.items():
        got = loaded[name]
        if hasattr(got, "numpy"):  # torch
            import torch
            got = got.view(torch.int16).numpy() if got.dtype == torch.bfloat16 else got.numpy()
        got = np.ascontiguousarray(got)
        if got.shape != ref.shape or got.tobytes() != ref.tobytes():
            return False
    return True


# -------------------------------------------------------------------------------------------------------------
# The peers: each has save(state, path) and load(path) -> {name: array}.


class Torch:
    name = "torch"
    note = "torch.save of a dict of tensors (zip format, bfloat16 native), fsync; torch.load into memory"

    def __init__(self, state):
        import torch
        self.torch = torch
        self.tensors = {}
        for name, (dtype, arr) in state.items():
            if dtype == "bfloat16":
                self.tensors[name] = torch.from_numpy(arr.view(np.int16)).view(torch.bfloat16)
            else:
                self.tensors[name] = torch.from_numpy(arr)
        self.version = torch.__version__

    def path(self, d):
        return os.path.join(d, "state.pt")

    def save(self, path):
        with open(path, "wb") as f:
            self.torch.save(self.tensors, f)
            f.flush()
            os.fsync(f.fileno())
        fsync_path(os.path.dirname(path))

    def load(self, path):
        return self.torch.load(path)


class NumpyNpz:
    name = "numpy"
    note = "np.savez (uncompressed zip; bfloat16 as uint16), fsync; np.load reading every array"

    def __init__(self, state):
        self.arrays = {name: arr for name, (_d, arr) in state.items()}
        self.version = np.__version__

    def path(self, d):
        return os.path.join(d, "state.npz")

    def save(self, path):
        with open(path, "wb") as f:
            np.savez(f, **self.arrays)
            f.flush()
            os.fsync(f.fileno())
        fsync_path(os.path.dirname(path))

    def load(self, path):
        with np.load(path) as z:
            return {k: z[k] for k in z.files}


class Zarr:
    def __init__(self, state, zstd):
        import numcodecs
        import zarr
        self.zarr = zarr
        self.compressor = numcodecs.Zstd(level=1) if zstd else None
        self.name = "zarr_zstd1" if zstd else "zarr"
        self.note = ("zarr-python v2 DirectoryStore, default chunks, "
                     + ("numcodecs Zstd level 1" if zstd else "no compressor")
                     + " (bfloat16 as uint16); every file and directory fsync'd; loads every array")
        self.arrays = {name: arr for name, (_d, arr) in state.items()}
        self.version = f"zarr {zarr.__version__}, numcodecs {numcodecs.__version__}"

    def path(self, d):
        return os.path.join(d, self.name)

    def save(self, path):
        g = self.zarr.open_group(self.zarr.DirectoryStore(path), mode="w")
        for name, arr in self.arrays.items():
            g.create_dataset(name.replace(".", "/"), data=arr, compressor=self.compressor)
        fsync_tree(path)

    def load(self, path):
        g = self.zarr.open_group(self.zarr.DirectoryStore(path), mode="r")
        return {name: g[name.replace(".", "/")][...] for name in self.arrays}


class H5py:
    name = "h5py"
    note = "h5py, contiguous datasets, no compression (bfloat16 as uint16), fsync; reads every dataset"

    def __init__(self, state):
        import h5py
        self.h5py = h5py
        self.arrays = {name: arr for name, (_d, arr) in state.items()}
        self.version = f"h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version}"

    def path(self, d):
        return os.path.join(d, "state.h5")

    def save(self, path):
        with self.h5py.File(path, "w") as f:
            for name, arr in self.arrays.items():
                f.create_dataset(name.replace(".", "/"), data=arr)
        fsync_path(path)
        fsync_path(os.path.dirname(path))

    def load(self, path):
        with self.h5py.File(path, "r") as f:
            return {name: f[name.replace(".", "/")][()] for name in self.arrays}


PEERS = {
    "torch": lambda s: Torch(s),
    "numpy": lambda s: NumpyNpz(s),
    "zarr": lambda s: Zarr(s, zstd=False),
    "zarr_zstd1": lambda s: Zarr(s, zstd=True),
    "h5py": lambda s: H5py(s),
}


def run_peer(peer, state, nbytes, work, reps, cold, budget):
    out = {"note": peer.note, "version": peer.version}
    d = os.path.join(work, "peer_" + peer.name)
    os.makedirs(d, exist_ok=True)
    path = peer.path(d)
    secs = []
    for _ in range(reps):
        remove(path)
        os.sync()
        t0 = time.perf_counter()
        peer.save(path)
        secs.append(time.perf_counter() - t0)
        if sum(secs) >= budget:  # a slow peer: fewer repetitions, so that a run stays within minutes
            break
    out["save"] = measure(secs, nbytes)
    out["bytes_on_disk"] = disk_usage(path)
    log(f"{peer.name} save: best {out['save']['best_seconds']:.3f} s, {out['save']['gib_per_s']:.2f} GiB/s")

    secs = []
    for r in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        loaded = peer.load(path)
        secs.append(time.perf_counter() - t0)
        if r == 0:
            out["verified"] = same_bytes(state, loaded)
            if not out["verified"]:
                log(f"{peer.name}: LOADED BYTES DIFFER")
        del loaded
        if sum(secs) >= budget:
            break
    out["load_warm"] = measure(secs, nbytes)
    log(f"{peer.name} load warm: best {out['load_warm']['best_seconds']:.3f} s, "
        f"{out['load_warm']['gib_per_s']:.2f} GiB/s")

    if cold:
        why = drop_caches()
        if why:
            out["load_cold"] = {"unavailable": why}
        else:
            gc.collect()
            t0 = time.perf_counter()
            loaded = peer.load(path)
            out["load_cold"] = measure([time.perf_counter() - t0], nbytes)
            del loaded
            log(f"{peer.name} load cold: {out['load_cold']['best_seconds']:.3f} s, "
                f"{out['load_cold']['gib_per_s']:.2f} GiB/s")
    else:
        out["load_cold"] = {"unavailable": "--no-cold"}
    remove(d)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", required=True, help="cairn_bench's floor directory (state.bin, manifest.json)")
    ap.add_argument("--dir", required=True, help="where the peers write (same disk as cairn's checkpoints)")
    ap.add_argument("--json", required=True, help="where to write the results")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=15.0,
                    help="stop repeating an operation once its repetitions took this long (at least one runs)")
    ap.add_argument("--no-cold", action="store_true")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of " + ",".join(PEERS))
    args = ap.parse_args()

    manifest, state = load_state(args.dump)
    nbytes = manifest["total_bytes"]
    results = {"python": sys.version.split()[0], "peers": {}}
    for name in [p for p in args.peers.split(",") if p]:
        if name not in PEERS:
            sys.exit(f"peers.py: unknown peer {name} (known: {', '.join(PEERS)})")
        try:
            peer = PEERS[name](state)
        except ImportError as e:
            results["peers"][name] = {"unavailable": f"import failed: {e}"}
            log(f"{name}: unavailable ({e})")
            continue
        results["peers"][name] = run_peer(peer, state, nbytes, args.dir, args.reps, not args.no_cold, args.budget_s)
        del peer
        gc.collect()
    with open(args.json, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Orbax, the first peer of `make bench`, and cairn's Python module beside it, on the same state and disk.

Run with the interop environment's Python (scripts/requirements-interop.txt: the real orbax-checkpoint, tensorstore
and jax), one library and one kind of input per process, so that each run's peak RSS is its own:

    $VENV/bin/python bench/orbax_peer.py --lib orbax|cairn --inputs numpy|jax|jax-sharded --dump DIR/floor \
        --dir DIR --json OUT

`jax-sharded` is a JAX training state: every array a jax.Array sharded over 8 virtual CPU devices (split along its
first dimension where 8 divides it, replicated otherwise), restored onto the same shardings.

bench/run.py runs the six combinations and turns them into rows and targets. Each measures, on Orbax's defaults
(OCDBT, zarr v2, zstd compression on):
- async save (StandardCheckpointer): time save() blocked, and time until the checkpoint is committed;
- durable sync save (Checkpointer(StandardCheckpointHandler)), counting an fsync of every file it wrote (cairn
  fsyncs on its own; Orbax does not, so its fsyncs are added inside the timing);
- restore with a target (ShapeDtypeStruct / ArraySpec for every array), warm (page cache) and cold (caches dropped);
- peak RSS of the process (ru_maxrss) after it held the state, and above that.
"""

import argparse
import gc
import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402

from peers import GIB, drop_caches, fsync_tree, load_state, measure, remove  # noqa: E402


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Orbax:
    def __init__(self):
        import orbax.checkpoint as ocp
        self.ocp = ocp
        self.version = f"orbax-checkpoint {ocp.__version__}"

    def async_checkpointer(self):
        return self.ocp.StandardCheckpointer()

    def sync_save(self, path, state):
        with self.ocp.Checkpointer(self.ocp.StandardCheckpointHandler()) as ckptr:
            ckptr.save(path, args=self.ocp.args.StandardSave(state))
        fsync_tree(path)  # Orbax writes without fsync; a durable save needs it

    def target(self, state):
        import jax
        return {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=getattr(v, "sharding", None))
                for k, v in state.items()}

    def restore(self, path, target):
        with self.ocp.Checkpointer(self.ocp.StandardCheckpointHandler()) as ckptr:
            return ckptr.restore(path, args=self.ocp.args.StandardRestore(target))


class Cairn(Orbax):
    def __init__(self):
        import cairn
        self.ocp = cairn
        self.version = "cairn (Python module)"

    def sync_save(self, path, state):
        with self.ocp.Checkpointer(self.ocp.StandardCheckpointHandler()) as ckptr:
            ckptr.save(path, args=self.ocp.args.StandardSave(state))  # fsyncs every file and directory itself

    def target(self, state):
        if any(hasattr(v, "sharding") for v in state.values()):
            return super().target(state)  # jax.ShapeDtypeStruct with the sharding, as a JAX user writes it
        return {k: self.ocp.ArraySpec(v.shape, v.dtype) for k, v in state.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", choices=["orbax", "cairn"], required=True)
    ap.add_argument("--inputs", choices=["numpy", "jax", "jax-sharded"], required=True)
    ap.add_argument("--dump", required=True, help="cairn_bench's floor directory (state.bin, manifest.json)")
    ap.add_argument("--dir", required=True, help="where to write (the disk cairn's checkpoints go to)")
    ap.add_argument("--json", required=True)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--no-cold", action="store_true")
    args = ap.parse_args()

    manifest, raw = load_state(args.dump)
    nbytes = manifest["total_bytes"]
    state = {name: (arr.view(ml_dtypes.bfloat16) if dtype == "bfloat16" else arr) for name, (dtype, arr) in raw.items()}
    if args.inputs == "jax-sharded":
        os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    if args.inputs.startswith("jax"):
        import jax
        if args.inputs == "jax-sharded":
            from jax.sharding import Mesh, NamedSharding, PartitionSpec
            mesh = Mesh(np.array(jax.devices()[:8]), ("data",))

            def sharding(a):
                split = a.ndim > 0 and a.shape[0] % 8 == 0
                return NamedSharding(mesh, PartitionSpec("data") if split else PartitionSpec())

            state = {k: jax.device_put(v, sharding(v)) for k, v in state.items()}
        else:
            state = {k: jax.device_put(v) for k, v in state.items()}
        jax.block_until_ready(state)
    del raw
    gc.collect()
    lib = Orbax() if args.lib == "orbax" else Cairn()
    rss_with_state = peak_rss_bytes()
    out = {"lib": args.lib, "inputs": args.inputs, "version": lib.version, "bytes": nbytes}
    path = os.path.join(args.dir, f"{args.lib}_{args.inputs}")

    blocked, committed = [], []
    with lib.async_checkpointer() as ckptr:
        for _ in range(args.reps):
            remove(path)
            os.sync()
            t0 = time.perf_counter()
            ckptr.save(path, state)
            blocked.append(time.perf_counter() - t0)
            ckptr.wait_until_finished()
            committed.append(time.perf_counter() - t0)
    out["async_blocked"] = measure(blocked, nbytes)
    out["async_commit"] = measure(committed, nbytes)

    secs = []
    for _ in range(args.reps):
        remove(path)
        os.sync()
        t0 = time.perf_counter()
        lib.sync_save(path, state)
        secs.append(time.perf_counter() - t0)
    out["save_durable"] = measure(secs, nbytes)

    target = lib.target(state)
    secs = []
    for r in range(args.reps):
        gc.collect()
        t0 = time.perf_counter()
        restored = lib.restore(path, target)
        if args.inputs.startswith("jax"):
            import jax
            jax.block_until_ready(restored)
        secs.append(time.perf_counter() - t0)
        if r == 0:
            out["verified"] = all(np.asarray(restored[k]).tobytes() == np.asarray(v).tobytes()
                                  for k, v in state.items())
        del restored
    out["restore_warm"] = measure(secs, nbytes)
    if args.no_cold:
        out["restore_cold"] = {"unavailable": "--no-cold"}
    elif why := drop_caches():
        out["restore_cold"] = {"unavailable": why}
    else:
        t0 = time.perf_counter()
        restored = lib.restore(path, target)
        out["restore_cold"] = measure([time.perf_counter() - t0], nbytes)
        del restored
    remove(path)
    out["peak_rss_bytes"] = peak_rss_bytes()
    out["peak_rss_above_state_bytes"] = out["peak_rss_bytes"] - rss_with_state
    for key in ["async_blocked", "async_commit", "save_durable", "restore_warm"]:
        print(f"[orbax_peer] {args.lib}/{args.inputs} {key}: {out[key]['best_seconds']:.3f} s "
              f"({nbytes / out[key]['best_seconds'] / GIB:.2f} GiB/s)", file=sys.stderr, flush=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()

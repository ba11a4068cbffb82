"""Many processes, both ways: a JAX job of 2 and 4 processes (jax.distributed, local CPU processes) saves with the
real Orbax, each process writing its own ocdbt.process_<i>, and cairn restores the merged checkpoint in one process
(Python and C++) and in 1, 2 and 4 MPI processes onto another layout; cairn's MPI program saves on 4 processes and a
JAX job of 1, 2 and 4 processes restores it with Orbax onto its own shardings."""

import json
import os
import sys

import numpy as np
import pytest

import cairn
from processes import free_port, run_processes
from interop_util import assert_same_array, assert_same_tree, numpy_dtype, pattern, run, tool_dump

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multiprocess_worker.py")


def jax_job(num_processes, directory, mode):
    """Runs the worker as `num_processes` processes of one jax.distributed job; every process must pass."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    run_processes(num_processes,
                  lambda i: [sys.executable, WORKER, str(port), str(num_processes), str(i), str(directory), mode],
                  lambda i: f"CAIRN-WORKER PASS {mode} {i}", timeout=300, env=env)


@pytest.mark.parametrize("num_processes", [2, 4])
def test_orbax_multiprocess_save_read_by_cairn(num_processes, tmp_path, tool):
    jax_job(num_processes, tmp_path / "ckpt", "save")
    assert sorted(e for e in os.listdir(tmp_path / "ckpt") if e.startswith("ocdbt.process_")) == \
        [f"ocdbt.process_{i}" for i in range(num_processes)]
    n = num_processes
    expected = {"w": pattern("float32", (8 * n, 12)), "b": pattern("bfloat16", (4 * n,)),
                "replicated": pattern("int32", (5, 3)), "cols": pattern("float64", (6, 4 * n)), "step": 5}
    with cairn.StandardCheckpointer() as ckptr:
        assert_same_tree(ckptr.restore(tmp_path / "ckpt"), expected)
        target = {k: cairn.ArraySpec(v.shape, v.dtype) if k != "step" else 0 for k, v in expected.items()}
        assert_same_tree(ckptr.restore(tmp_path / "ckpt", args=cairn.args.StandardRestore(target)), expected)
    leaves, _ = tool_dump(tool, tmp_path / "ckpt", tmp_path / "dump")
    for k, v in expected.items():
        assert_same_tree(leaves[k], v, k)


MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader", "--mca",
          "btl_vader_single_copy_mechanism", "none"]


@pytest.fixture(scope="module", params=[2, 4], ids=["saved_by_2", "saved_by_4"])
def orbax_multiprocess_checkpoint(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(f"orbax_{request.param}") / "ckpt"
    jax_job(request.param, directory, "save")
    n = request.param
    expected = {"w": pattern("float32", (8 * n, 12)), "b": pattern("bfloat16", (4 * n,)),
                "replicated": pattern("int32", (5, 3)), "cols": pattern("float64", (6, 4 * n)),
                "step": np.array(5, dtype=np.int64)}  # a Python int, stored as a 0-d int64 array
    return directory, expected


@pytest.mark.parametrize("readers", [1, 2, 4])
def test_orbax_multiprocess_save_read_by_cairn_mpi(readers, orbax_multiprocess_checkpoint, tmp_path, tool):
    """cairn's C++ API on `readers` MPI processes, each restoring its rows (another layout than the writers')."""
    directory, expected = orbax_multiprocess_checkpoint
    run(MPIRUN + ["-n", str(readers), tool, "mpi-restore", directory, tmp_path / "out"], timeout=300)
    for rank in range(readers):
        with open(tmp_path / "out" / f"rank{rank}.json") as f:
            index = json.load(f)
        assert sorted(index) == sorted(expected), index
        for param, entry in index.items():
            value = expected[param]
            assert entry["global_shape"] == list(value.shape) and entry["dtype"] == value.dtype.name, param
            box = tuple(slice(o, o + s) for o, s in zip(entry["origin"], entry["shape"]))
            with open(tmp_path / "out" / entry["file"], "rb") as f:
                got = np.frombuffer(f.read(), dtype=numpy_dtype(entry["dtype"])).reshape(entry["shape"])
            assert_same_array(got, value[box], f"rank {rank} {param}")
            if value.shape and value.shape[0] % readers == 0:
                assert entry["shape"][0] == value.shape[0] // readers, (param, entry)


@pytest.fixture(scope="module")
def cairn_mpi_checkpoint(tmp_path_factory):
    """What cairn's MPI program saves on 4 processes (sync and async saves)."""
    binary = os.path.join(os.environ["CAIRN_BINARY_DIR"], "tests", "cairn_mpi_checkpoint")
    directory = tmp_path_factory.mktemp("mpi")
    run(MPIRUN + ["-n", "4", binary, "save", directory], timeout=300)
    return directory


@pytest.mark.parametrize("num_processes", [1, 2, 4])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_cairn_mpi_save_read_by_orbax(kind, num_processes, cairn_mpi_checkpoint):
    directory = cairn_mpi_checkpoint / kind
    assert sorted(e for e in os.listdir(directory) if e.startswith("ocdbt.process_")) == \
        [f"ocdbt.process_{i}" for i in range(4)]
    jax_job(num_processes, directory, "restore-cairn-mpi")


def sharded_tree():
    """orbax_interop_main.cc's ShardedTree() as global arrays: every dtype as (8, 6), and a replicated (3, 5)."""
    from interop_util import DTYPES
    tree = {name: pattern(name, (8, 6)) for name in DTYPES}
    tree["replicated"] = pattern("float32", (3, 5))
    return tree


@pytest.mark.parametrize("layout", ["ocdbt_zarr2", "ocdbt_zarr3", "zarr2"])
@pytest.mark.parametrize("writers", [1, 2, 4])
def test_cairn_mpi_writers_read_by_orbax(writers, layout, tmp_path, tool):
    """cairn's C++ API on 1, 2 and 4 MPI processes, each writing its rows of every dtype; Orbax restores the whole,
    and onto shardings over 8 devices."""
    from interop_util import LAYOUTS
    import orbax.checkpoint as orbax
    run(MPIRUN + ["-n", str(writers), tool, "mpi-save", tmp_path / "ckpt"] + LAYOUTS[layout][1], timeout=300)
    if "--no-ocdbt" not in LAYOUTS[layout][1]:
        assert sorted(e for e in os.listdir(tmp_path / "ckpt") if e.startswith("ocdbt.process_")) == \
            [f"ocdbt.process_{i}" for i in range(writers)]
    expected = sharded_tree()
    with orbax.PyTreeCheckpointer() as ckptr:
        assert_same_tree(ckptr.restore(tmp_path / "ckpt"), expected)
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec
    mesh = Mesh(np.array(jax.devices()).reshape(4, 2), ("x", "y"))
    target = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=NamedSharding(
        mesh, PartitionSpec("x", "y") if v.shape == (8, 6) else PartitionSpec())) for k, v in expected.items()}
    with orbax.PyTreeCheckpointer() as ckptr:
        restored = ckptr.restore(tmp_path / "ckpt", args=orbax.args.PyTreeRestore(
            target, restore_args=orbax.checkpoint_utils.construct_restore_args(target)))
    assert_same_tree(restored, expected)
    for k, v in restored.items():
        assert v.sharding == target[k].sharding, k


@pytest.mark.parametrize("num_processes", [2, 4])
@pytest.mark.parametrize("writer,reader", [("cairn", "cairn"), ("cairn", "orbax"), ("orbax", "cairn")])
def test_jax_job_with_cairn(writer, reader, num_processes, tmp_path):
    """A jax.distributed job using `import cairn as ocp` (no MPI: cairn coordinates over JAX's runtime): each process
    saves only its shards, and restores only the boxes its devices need, onto other shardings; crossed with Orbax."""
    jax_job(num_processes, tmp_path / "ckpt", "cairn-save" if writer == "cairn" else "save")
    assert sorted(e for e in os.listdir(tmp_path / "ckpt") if e.startswith("ocdbt.process_")) == \
        [f"ocdbt.process_{i}" for i in range(num_processes)]
    jax_job(num_processes, tmp_path / "ckpt", "cairn-restore" if reader == "cairn" else "restore")


@pytest.mark.parametrize("writer,reader", [("cairn", "cairn"), ("cairn", "orbax"), ("orbax", "cairn")])
def test_jax_job_restores_without_target(writer, reader, tmp_path):
    """Saved by a 2-process job, restored without a target: every array back on the sharding it was saved with,
    read from `_sharding` (cairn records it as Orbax does, in many processes too)."""
    jax_job(2, tmp_path / "ckpt", "cairn-save" if writer == "cairn" else "save")
    jax_job(2, tmp_path / "ckpt", "cairn-restore-untargeted" if reader == "cairn" else "restore-untargeted")

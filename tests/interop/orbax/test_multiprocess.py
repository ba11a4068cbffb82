"""Many processes, both ways: a JAX job of 2 and 4 processes (jax.distributed, local CPU processes) saves with the
real Orbax, each process writing its own ocdbt.process_<i>, and cairn restores the merged checkpoint; cairn's MPI
program saves on 4 processes and a JAX job of 1, 2 and 4 processes restores it with Orbax onto its own shardings."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import cairn
from interop_util import assert_same_tree, pattern, run, tool_dump

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multiprocess_worker.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jax_job(num_processes, directory, mode):
    """Runs the worker as `num_processes` processes of one jax.distributed job; every process must pass."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    procs = [subprocess.Popen([sys.executable, WORKER, str(port), str(num_processes), str(i), str(directory), mode],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for i in range(num_processes)]
    outputs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        outputs.append(out)
    for i, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0 and f"CAIRN-WORKER PASS {mode} {i}" in out, f"process {i}:\n{out[-3000:]}"


@pytest.mark.parametrize("num_processes", [2, 4])
def test_orbax_multiprocess_save_read_by_cairn(num_processes, tmp_path, tool):
    jax_job(num_processes, tmp_path / "ckpt", "save")
    assert sorted(e for e in os.listdir(tmp_path / "ckpt") if e.startswith("ocdbt.process_")) == \
        [f"ocdbt.process_{i}" for i in range(num_processes)]
    n = num_processes
    expected = {"w": pattern("float32", (8 * n, 12)), "b": pattern("bfloat16", (4 * n,)),
                "replicated": pattern("int32", (5, 3)), "cols": pattern("float64", (6, 4 * n))}
    with cairn.StandardCheckpointer() as ckptr:
        assert_same_tree(ckptr.restore(tmp_path / "ckpt"), expected)
        # Another layout: a box of each array, as a restore onto other shardings reads it.
        target = {k: cairn.ArraySpec(v.shape, v.dtype) for k, v in expected.items()}
        assert_same_tree(ckptr.restore(tmp_path / "ckpt", args=cairn.args.StandardRestore(target)), expected)
    leaves, _ = tool_dump(tool, tmp_path / "ckpt", tmp_path / "dump")
    for k, v in expected.items():
        assert_same_tree(leaves[k], v, k)


@pytest.fixture(scope="module")
def cairn_mpi_checkpoint(tmp_path_factory):
    """What cairn's MPI program saves on 4 processes (sync and async saves)."""
    binary = os.path.join(os.environ["CAIRN_BINARY_DIR"], "tests", "cairn_mpi_checkpoint")
    directory = tmp_path_factory.mktemp("mpi")
    run(["mpirun", "--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader", "--mca",
         "btl_vader_single_copy_mechanism", "none", "-n", "4", binary, "save", directory], timeout=300)
    return directory


@pytest.mark.parametrize("num_processes", [1, 2, 4])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_cairn_mpi_save_read_by_orbax(kind, num_processes, cairn_mpi_checkpoint):
    directory = cairn_mpi_checkpoint / kind
    assert sorted(e for e in os.listdir(directory) if e.startswith("ocdbt.process_")) == \
        [f"ocdbt.process_{i}" for i in range(4)]
    jax_job(num_processes, directory, "restore-cairn-mpi")

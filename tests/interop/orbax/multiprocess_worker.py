"""One process of a multi-process JAX job (jax.distributed on local CPU processes, two devices each) running the real
Orbax. Started by test_multiprocess.py as
    python multiprocess_worker.py <port> <num_processes> <process_id> <directory> <mode>
save / cairn-save: a sharded state (rows over every device, over processes, replicated, columns) saved with Orbax /
with cairn (`import cairn as ocp`, coordinated over JAX's own runtime), each process writing its own
ocdbt.process_<i>. restore / cairn-restore: the same state restored with Orbax / cairn onto other shardings, each
process checking its own shards. restore-untargeted / cairn-restore-untargeted: restored without a target, onto
the shardings `_sharding` records. restore-cairn-mpi: restores what cairn's MPI test program saved on 4 processes
(tests/distributed/mpi_checkpoint_main.cc) with Orbax onto this job's devices."""

import os
import sys

port, num_processes, process_id, directory, mode = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4],
                                                   sys.argv[5])
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402

jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.config.update("jax_enable_x64", True)
jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=num_processes,
                           process_id=process_id, initialization_timeout=120)

import numpy as np  # noqa: E402
import orbax.checkpoint as orbax  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_util import pattern  # noqa: E402


def global_array(value, sharding):
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


devices = np.array(jax.devices()).reshape(num_processes, 2)
mesh = Mesh(devices, ("proc", "local"))
values = {"w": pattern("float32", (8 * num_processes, 12)), "b": pattern("bfloat16", (4 * num_processes,)),
          "replicated": pattern("int32", (5, 3)), "cols": pattern("float64", (6, 4 * num_processes))}
shardings = {"w": NamedSharding(mesh, PartitionSpec(("proc", "local"))),
             "b": NamedSharding(mesh, PartitionSpec("proc")),
             "replicated": NamedSharding(mesh, PartitionSpec()),
             "cols": NamedSharding(mesh, PartitionSpec(None, ("proc", "local")))}
library = orbax
if mode.startswith("cairn-"):
    import cairn as library  # noqa: F811
if mode in ("save", "cairn-save"):
    state = {k: global_array(values[k], shardings[k]) for k in values}
    state["step"] = 5
    with library.StandardCheckpointer() as ckptr:
        ckptr.save(directory, state)
elif mode in ("restore", "cairn-restore"):
    # Other shardings than the saved ones: columns where rows were, and the other way round.
    targets = {"w": NamedSharding(mesh, PartitionSpec(None, "proc")),
               "b": NamedSharding(mesh, PartitionSpec(("proc", "local"))),
               "replicated": NamedSharding(mesh, PartitionSpec()),
               "cols": NamedSharding(mesh, PartitionSpec("local", "proc"))}
    target = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=targets[k]) for k, v in values.items()}
    target["step"] = 0
    with library.StandardCheckpointer() as ckptr:
        restored = ckptr.restore(directory, target)
    for k, v in values.items():
        assert isinstance(restored[k], jax.Array) and restored[k].sharding == targets[k], (k, type(restored[k]))
        for shard in restored[k].addressable_shards:
            assert np.asarray(shard.data).tobytes() == v[shard.index].tobytes(), k
    assert int(restored["step"]) == 5
elif mode in ("restore-untargeted", "cairn-restore-untargeted"):
    with library.StandardCheckpointer() as ckptr:
        restored = ckptr.restore(directory)
    for k, v in values.items():
        assert isinstance(restored[k], jax.Array) and restored[k].sharding == shardings[k], (k, restored[k])
        for shard in restored[k].addressable_shards:
            assert np.asarray(shard.data).tobytes() == v[shard.index].tobytes(), k
    assert int(restored["step"]) == 5
else:
    # mpi_checkpoint_main.cc's state: iota arrays w float32 (64, 24), g int32 (8, 8), r float64 (5,), step 3.
    expected = {"w": np.arange(64 * 24, dtype=np.float64).astype(np.float32).reshape(64, 24),
                "g": np.arange(64, dtype=np.int32).reshape(8, 8), "r": np.arange(5, dtype=np.float64)}
    targets = {"w": NamedSharding(mesh, PartitionSpec(("proc", "local"))),
               "g": NamedSharding(mesh, PartitionSpec(None, "proc")), "r": NamedSharding(mesh, PartitionSpec())}
    target = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=targets[k]) for k, v in expected.items()}
    target["step"] = 0
    with orbax.StandardCheckpointer() as ckptr:
        restored = ckptr.restore(directory, target)
    for k, v in expected.items():
        assert restored[k].sharding == targets[k], k
        for shard in restored[k].addressable_shards:
            np.testing.assert_array_equal(np.asarray(shard.data), v[shard.index], err_msg=k)
    assert int(restored["step"]) == 3
print(f"CAIRN-WORKER PASS {mode} {process_id}", flush=True)
jax.distributed.shutdown()

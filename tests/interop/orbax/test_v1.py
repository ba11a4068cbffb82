"""Orbax's newer API, `ocp.v1` (save / load / metadata): the same calls with `import cairn as ocp` and with
`import orbax.checkpoint as ocp`, each library reading what the other wrote."""

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as orbax
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import cairn
from interop_util import assert_same_tree, pattern

LIBRARIES = {"cairn": cairn, "orbax": orbax}


def state():
    return {"params": {"w": pattern("float32", (16, 8)), "b": pattern("bfloat16", (8,))},
            "opt": [pattern("int32", (4,)), pattern("float64", (2, 3))], "step": 7}


def as_numpy(tree):
    return jax.tree.map(lambda x: np.asarray(x) if hasattr(x, "shape") else x, tree)


@pytest.mark.parametrize("reader", sorted(LIBRARIES))
@pytest.mark.parametrize("writer", sorted(LIBRARIES))
def test_save_and_load(writer, reader, tmp_path):
    LIBRARIES[writer].v1.save(tmp_path / "1", state())
    assert_same_tree(as_numpy(LIBRARIES[reader].v1.load(tmp_path / "1")), state())
    # The deprecated names still work.
    assert_same_tree(as_numpy(LIBRARIES[reader].v1.load_pytree(tmp_path / "1")), state())


@pytest.mark.parametrize("reader", sorted(LIBRARIES))
@pytest.mark.parametrize("writer", sorted(LIBRARIES))
def test_load_onto_shardings(writer, reader, tmp_path):
    LIBRARIES[writer].v1.save(tmp_path / "1", state())
    mesh = Mesh(np.array(jax.devices()[:8]).reshape(4, 2), ("a", "b"))
    abstract = {"params": {"w": jax.ShapeDtypeStruct((16, 8), jnp.float32, sharding=NamedSharding(mesh, PartitionSpec("a", "b"))),
                           "b": jax.ShapeDtypeStruct((8,), jnp.bfloat16, sharding=NamedSharding(mesh, PartitionSpec("b")))},
                "opt": [jax.ShapeDtypeStruct((4,), jnp.int32, sharding=NamedSharding(mesh, PartitionSpec())),
                        jax.ShapeDtypeStruct((2, 3), jnp.float64, sharding=NamedSharding(mesh, PartitionSpec()))],
                "step": 0}
    restored = LIBRARIES[reader].v1.load(tmp_path / "1", abstract)
    assert_same_tree(as_numpy(restored), state())
    assert restored["params"]["w"].sharding == abstract["params"]["w"].sharding
    assert restored["params"]["b"].sharding == abstract["params"]["b"].sharding


def test_cairn_loads_a_classic_checkpoint_and_orbax_classic_reads_v1(tmp_path):
    """load() takes a checkpoint whose root is the tree; Orbax's classic Composite restore reads cairn's v1 save."""
    with cairn.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "classic", {"x": np.arange(5)})
    assert_same_tree(as_numpy(cairn.v1.load(tmp_path / "classic")), {"x": np.arange(5)})
    cairn.v1.save(tmp_path / "v1", state())
    with orbax.Checkpointer(orbax.CompositeCheckpointHandler()) as ckptr:
        restored = ckptr.restore(tmp_path / "v1", args=orbax.args.Composite(state=orbax.args.PyTreeRestore()))
    assert_same_tree(as_numpy(restored["state"]), state())


def test_async_overwrite_metadata_and_checkpointables(tmp_path):
    response = cairn.v1.save_async(tmp_path / "1", state(), custom_metadata={"run": "a"})
    assert response.result() is None
    with pytest.raises(FileExistsError):
        cairn.v1.save(tmp_path / "1", state())
    cairn.v1.save(tmp_path / "1", {"x": np.ones(2)}, overwrite=True)
    assert_same_tree(as_numpy(cairn.v1.load(tmp_path / "1")), {"x": np.ones(2)})
    meta = cairn.v1.metadata(tmp_path / "1")
    assert tuple(meta.metadata["x"].shape) == (2,)
    cairn.v1.save_checkpointables(tmp_path / "2", {"model": state(), "extra": {"y": np.zeros(3)}})
    both = cairn.v1.load_checkpointables(tmp_path / "2")
    assert_same_tree(as_numpy(both["model"]), state())
    assert_same_tree(as_numpy(orbax.v1.load(tmp_path / "2", checkpointable_name="extra")), {"y": np.zeros(3)})
    assert cairn.v1.is_orbax_checkpoint(tmp_path / "2") and not cairn.v1.is_orbax_checkpoint(tmp_path / "none")

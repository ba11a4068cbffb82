"""Orbax code runs unchanged: the patterns of Orbax's documentation, written once against `ocp` and run with
`import cairn as ocp` and with `import orbax.checkpoint as ocp`, must give the same results (sharded jax.Arrays on
8 virtual CPU devices, restores onto another mesh, several items in a manager, partial restores)."""

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as orbax
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import cairn
from interop_util import assert_same_tree, pattern

LIBRARIES = {"cairn": cairn, "orbax": orbax}


def mesh(shape, names):
    return Mesh(np.array(jax.devices()[: int(np.prod(shape))]).reshape(shape), names)


def sharded_state():
    m = mesh((4, 2), ("data", "model"))

    def put(name, shape, *spec):
        return jax.device_put(jnp.asarray(pattern(name, shape)), NamedSharding(m, PartitionSpec(*spec)))

    return {
        "params": {"w": put("float32", (16, 8), "data", "model"), "b": put("bfloat16", (8,), "model"),
                   "emb": put("float32", (32, 4), None, "model")},
        "opt": {"count": put("int32", ())},
        "step": 7,
    }


def check_jax_tree(restored, expected, shardings=None):
    """Same values; every array a jax.Array, on the sharding asked for (or the saved one)."""
    assert_same_tree(restored, expected)
    flat_r, _ = jax.tree_util.tree_flatten(restored)
    flat_e, _ = jax.tree_util.tree_flatten(shardings if shardings is not None else expected)
    for r, e in zip(flat_r, flat_e):
        if hasattr(e, "sharding"):
            assert isinstance(r, jax.Array), type(r)
            assert r.sharding == e.sharding, (r.sharding, e.sharding)


@pytest.mark.parametrize("lib", sorted(LIBRARIES))
def test_checkpoint_a_sharded_pytree(lib, tmp_path):
    """The README pattern: save a sharded state, restore it onto its abstract version."""
    ocp = LIBRARIES[lib]
    state = sharded_state()
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "ckpt", state)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    with ocp.StandardCheckpointer() as ckptr:
        restored = ckptr.restore(tmp_path / "ckpt", abstract)
    check_jax_tree(restored, state)


@pytest.mark.parametrize("lib", sorted(LIBRARIES))
@pytest.mark.parametrize("writer", sorted(LIBRARIES))
def test_restore_onto_another_mesh(lib, writer, tmp_path):
    """Written by `writer`, restored by `lib` onto a 2x4 mesh with other partition specs."""
    state = sharded_state()
    with LIBRARIES[writer].StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "ckpt", state)
    ocp = LIBRARIES[lib]
    other = mesh((2, 4), ("a", "b"))

    def spec(shape, dtype, *partition):
        return jax.ShapeDtypeStruct(shape, dtype, sharding=NamedSharding(other, PartitionSpec(*partition)))

    target = {"params": {"w": spec((16, 8), jnp.float32, "b"), "b": spec((8,), jnp.bfloat16),
                         "emb": spec((32, 4), jnp.float32, "a", "b")},
              "opt": {"count": spec((), jnp.int32)}, "step": 0}
    with ocp.StandardCheckpointer() as ckptr:
        restored = ckptr.restore(tmp_path / "ckpt", target)
    check_jax_tree(restored, state, target)


@pytest.mark.parametrize("lib", sorted(LIBRARIES))
def test_pytree_restore_with_restore_args(lib, tmp_path):
    """PyTreeCheckpointHandler with construct_restore_args: ArrayRestoreArgs carry the shardings."""
    ocp = LIBRARIES[lib]
    state = sharded_state()
    with ocp.Checkpointer(ocp.PyTreeCheckpointHandler()) as ckptr:
        ckptr.save(tmp_path / "ckpt", args=ocp.args.PyTreeSave(state))
        restore_args = ocp.checkpoint_utils.construct_restore_args(state)
        restored = ckptr.restore(tmp_path / "ckpt", args=ocp.args.PyTreeRestore(state, restore_args=restore_args))
    check_jax_tree(restored, state)


@pytest.mark.parametrize("lib", sorted(LIBRARIES))
def test_partial_restore_with_placeholder(lib, tmp_path):
    ocp = LIBRARIES[lib]
    state = sharded_state()
    with ocp.Checkpointer(ocp.PyTreeCheckpointHandler()) as ckptr:
        ckptr.save(tmp_path / "ckpt", args=ocp.args.PyTreeSave(state))
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
        target["params"]["emb"] = ocp.PLACEHOLDER
        target["opt"] = {"count": ocp.PLACEHOLDER}
        restored = ckptr.restore(tmp_path / "ckpt", args=ocp.args.PyTreeRestore(
            target, restore_args=ocp.checkpoint_utils.construct_restore_args(target), partial_restore=True))
    assert_same_tree(restored["params"]["w"], state["params"]["w"])
    assert restored["params"]["w"].sharding == state["params"]["w"].sharding


@pytest.mark.parametrize("lib", sorted(LIBRARIES))
def test_manager_with_several_items(lib, tmp_path):
    """CheckpointManager with a sharded state and a JSON item, async, max_to_keep, restored onto the abstract
    state."""
    ocp = LIBRARIES[lib]
    state = sharded_state()
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    options = ocp.CheckpointManagerOptions(max_to_keep=2, save_interval_steps=1)
    with ocp.CheckpointManager(tmp_path / "run", options=options, item_names=("state", "config")) as mngr:
        for step in range(4):
            mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                    config=ocp.args.JsonSave({"step": step})))
        mngr.wait_until_finished()
        assert list(mngr.all_steps()) == [2, 3]
        restored = mngr.restore(mngr.latest_step(), args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), config=ocp.args.JsonRestore()))
    check_jax_tree(restored["state"], state)
    assert restored["config"] == {"step": 3}

"""Orbax code runs unchanged: the patterns of Orbax's documentation, written once against `ocp` and run with
`import cairn as ocp` and with `import orbax.checkpoint as ocp`, must give the same results (sharded jax.Arrays on
8 virtual CPU devices, restores onto another mesh, several items in a manager, partial restores)."""

import time

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


def saved_shardings(path):
    """The `_sharding` file as {parameter: parsed sharding}."""
    import base64
    import json
    with open(path / "_sharding") as f:
        entries = json.load(f)
    return {base64.urlsafe_b64decode(k + "=" * (-len(k) % 4)).decode(): json.loads(v) for k, v in entries.items()}


def mixed_state():
    """A sharded state with a single-device array and a numpy array beside the NamedSharding ones."""
    state = sharded_state()
    state["single"] = jax.device_put(jnp.arange(6, dtype=jnp.float32), jax.devices()[3])
    state["host"] = np.arange(5, dtype=np.int16)
    return state


def test_sharding_file_is_orbaxs(tmp_path):
    """cairn records each jax.Array's sharding in `_sharding` exactly as Orbax does."""
    state = mixed_state()
    for name, lib in LIBRARIES.items():
        with lib.StandardCheckpointer() as ckptr:
            ckptr.save(tmp_path / name, state)
    cairn_entries, orbax_entries = saved_shardings(tmp_path / "cairn"), saved_shardings(tmp_path / "orbax")
    for param, entry in orbax_entries.items():
        assert cairn_entries[param] == entry, param


@pytest.mark.parametrize("lib", sorted(LIBRARIES))
@pytest.mark.parametrize("writer", sorted(LIBRARIES))
def test_restore_without_target_on_saved_shardings(lib, writer, tmp_path):
    """Without a target, jax.Arrays come back on the shardings they were saved with, numpy arrays as numpy."""
    state = mixed_state()
    with LIBRARIES[writer].StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "ckpt", state)
    with LIBRARIES[lib].StandardCheckpointer() as ckptr:
        restored = ckptr.restore(tmp_path / "ckpt")
    expected = dict(state, host=jnp.asarray(state["host"])) if writer == "cairn" else state
    check_jax_tree(restored, state, expected)
    if writer == "orbax":
        assert isinstance(restored["host"], np.ndarray)


@pytest.mark.parametrize("lib", sorted(LIBRARIES))
def test_manager_restore_without_args_on_saved_shardings(lib, tmp_path):
    ocp = LIBRARIES[lib]
    state = sharded_state()
    with ocp.CheckpointManager(tmp_path / "run") as mngr:
        mngr.save(1, args=ocp.args.StandardSave(state))
        mngr.wait_until_finished()
    with ocp.CheckpointManager(tmp_path / "run") as mngr:
        restored = mngr.restore(1)
    check_jax_tree(restored, state)


def transformed_target():
    return {
        "encoder": {"w": jax.ShapeDtypeStruct((16, 8), jnp.float32), "b": jax.ShapeDtypeStruct((8,), jnp.float32)},
        "emb_doubled": np.zeros((32, 4), np.float32),
        "count_plus_step": 0,
        "fresh": np.full((3,), 7, np.int32),
    }


def transforms_for(ocp):
    return {
        r"encoder/(w|b)": ocp.Transform(original_key=r"params/\1"),
        "emb_doubled": ocp.Transform(original_key="params/emb", value_fn=lambda x: np.asarray(x) * 2),
        "count_plus_step": ocp.RestoreTransform(
            multi_value_fn=lambda key, tree, args: int(tree["opt"]["count"]) + int(tree["step"]),
            multi_value_fn_input_args={"opt/count": ocp.RestoreArgs(), "step": ocp.RestoreArgs()}),
        "fresh": ocp.Transform(use_fallback=True),
    }


@pytest.mark.parametrize("lib", sorted(LIBRARIES))
def test_pytree_restore_transforms(lib, tmp_path):
    """PyTreeRestore(transforms=...) remaps keys (regex with groups), computes values and keeps the target's own,
    with the same result in cairn and Orbax; the target's dtype casts (bfloat16 b arrives as float32)."""
    ocp = LIBRARIES[lib]
    state = sharded_state()
    with ocp.Checkpointer(ocp.PyTreeCheckpointHandler()) as ckptr:
        ckptr.save(tmp_path / "ckpt", args=ocp.args.PyTreeSave(state))
        target = transformed_target()
        restored = ckptr.restore(tmp_path / "ckpt", args=ocp.args.PyTreeRestore(
            target, restore_args=jax.tree.map(lambda x: ocp.RestoreArgs(dtype=getattr(x, "dtype", None)), target),
            transforms=transforms_for(ocp)))
    np.testing.assert_array_equal(np.asarray(restored["encoder"]["w"]), np.asarray(state["params"]["w"]))
    np.testing.assert_array_equal(np.asarray(restored["encoder"]["b"]),
                                  np.asarray(state["params"]["b"]).astype(np.float32))
    assert np.asarray(restored["encoder"]["b"]).dtype == np.float32
    np.testing.assert_array_equal(np.asarray(restored["emb_doubled"]), np.asarray(state["params"]["emb"]) * 2)
    assert int(restored["count_plus_step"]) == int(state["opt"]["count"]) + 7
    np.testing.assert_array_equal(np.asarray(restored["fresh"]), np.full((3,), 7, np.int32))


def test_apply_transformations_matches_orbax():
    """cairn.apply_transformations gives Orbax's result, default_to_original both ways, regex keys included."""
    original = {"a": 1, "b": {"c": 5, "d": [0, 1, 2, 3]}, "f": 2, "b1": {"c": 2}, "b2": {"c": 3}}
    new = {"a1": ..., "b": {"c": ...}, "c1": ..., "x": ..., "f": ..., "g": 5, "x1": {"c": 0}, "x2": {"c": 0}}
    for default_to_original in (True, False):
        results = {}
        for name, lib in LIBRARIES.items():
            transforms = {"a1": lib.Transform(original_key="a"),
                          "b": {"c": lib.Transform(multi_value_fn=lambda k, t: t["b"]["c"] * 2)},
                          "c1": lib.Transform(original_key="b/c"),
                          "x": lib.Transform(multi_value_fn=lambda k, t: t["b"]["d"][0]),
                          r"x(\d.*)": lib.Transform(original_key=r"b\1"),
                          "f": lib.Transform(use_fallback=True)}
            results[name] = lib.apply_transformations(original, transforms, new, default_to_original)
        assert results["cairn"] == results["orbax"], (default_to_original, results)
    # A fallback to an original that lacks the key is a ValueError in both.
    for lib in LIBRARIES.values():
        with pytest.raises(ValueError, match="g"):
            lib.apply_transformations(original, {"g": lib.Transform(use_fallback=True)}, new, False)


def test_target_that_does_not_fit_is_a_value_error_naming_the_parameter(tmp_path):
    state = sharded_state()
    with cairn.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "ckpt", state)
    m = mesh((4, 2), ("data", "model"))
    # A saved shape that differs from the target's.
    target = jax.tree.map(cairn.utils.to_shape_dtype_struct, state)
    target["params"]["w"] = jax.ShapeDtypeStruct((17, 8), jnp.float32, sharding=NamedSharding(m, PartitionSpec()))
    with cairn.StandardCheckpointer() as ckptr, pytest.raises(ValueError, match=r"params\.w"):
        ckptr.restore(tmp_path / "ckpt", target)
    # A sharding that cannot split the saved shape (8 rows of `b` over... 3 does not divide 8).
    odd = Mesh(np.array(jax.devices()[:3]), ("three",))
    target = jax.tree.map(cairn.utils.to_shape_dtype_struct, state)
    target["params"]["b"] = jax.ShapeDtypeStruct((8,), jnp.bfloat16, sharding=NamedSharding(odd, PartitionSpec("three")))
    with cairn.StandardCheckpointer() as ckptr, pytest.raises(ValueError, match=r"params\.b"):
        ckptr.restore(tmp_path / "ckpt", target)


def test_leaf_that_cannot_be_saved_is_a_type_error_naming_its_path(tmp_path):
    state = sharded_state()
    state["params"]["bad"] = object()
    with cairn.StandardCheckpointer() as ckptr, pytest.raises(TypeError, match=r"params\.bad|params/bad|bad"):
        ckptr.save(tmp_path / "ckpt", state)
    assert not (tmp_path / "ckpt").exists()
    assert not list(tmp_path.iterdir()), list(tmp_path.iterdir())


def _peak_rss_reset():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def test_async_save_of_jax_arrays_copies_nothing_and_outlives_them(tmp_path):
    """A jax.Array is immutable: an async save holds its buffer instead of staging a copy (the peak RSS grows by far
    less than the array until save() returns, where a numpy array of the same size is copied), and the checkpoint is
    exact though the caller deletes its arrays before the save is done."""
    n = 64 << 20  # float32: 256 MiB
    handler = cairn.StandardCheckpointHandler(use_compression=False)
    grew = {}
    sharded = NamedSharding(mesh((4, 2), ("data", "model")), PartitionSpec("data", "model"))
    for kind in ("numpy", "jax", "jax-sharded"):
        w = {"numpy": lambda: np.arange(n, dtype=np.float32), "jax": lambda: jnp.arange(n, dtype=jnp.float32),
             "jax-sharded": lambda: jax.device_put(jnp.arange(n, dtype=jnp.float32).reshape(1024, -1), sharded)}
        state = {"w": w[kind](), "b": jnp.ones((8,), jnp.bfloat16)}
        jax.block_until_ready(state)
        ckptr = cairn.AsyncCheckpointer(handler)
        _peak_rss_reset()
        before = _peak_rss()
        ckptr.save(tmp_path / kind, args=cairn.args.StandardSave(state))
        grew[kind] = _peak_rss() - before
        if kind != "numpy":
            for leaf in jax.tree_util.tree_leaves(state):
                leaf.delete()
        del state
        jnp.zeros((n,), jnp.float32).block_until_ready()  # memory the deleted arrays may have freed, reused
        ckptr.wait_until_finished()
        ckptr.close()
        restored = cairn.Checkpointer(handler).restore(tmp_path / kind)
        np.testing.assert_array_equal(np.asarray(restored["w"]).reshape(-1), np.arange(n, dtype=np.float32))
        np.testing.assert_array_equal(np.asarray(restored["b"], dtype=np.float32), np.ones(8, np.float32))
    assert grew["numpy"] > 200 << 20, grew  # (the measure sees a staging copy)
    assert grew["jax"] < 64 << 20, grew
    assert grew["jax-sharded"] < 64 << 20, grew  # each shard saved from its own buffer


def test_jax_arrays_a_save_held_are_released_while_the_main_thread_waits(tmp_path):
    """The buffers an async save held go back as soon as it is done, whatever the main thread is doing: here it is
    blocked in C (waiting on an Event) and runs no Python code, and another thread sees the arrays freed."""
    import threading
    import weakref
    state = {"w": jnp.arange(1 << 20, dtype=jnp.float32), "b": jnp.ones((8,), jnp.bfloat16)}
    refs = [weakref.ref(leaf) for leaf in jax.tree_util.tree_leaves(state)]
    ckptr = cairn.AsyncCheckpointer(cairn.StandardCheckpointHandler())
    ckptr.save(tmp_path / "s", args=cairn.args.StandardSave(state))
    del state
    freed = threading.Event()

    def watch():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(r() is None for r in refs):
                freed.set()
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert freed.wait(90), "the arrays the save held were not released while the main thread waited"
    watcher.join()
    ckptr.wait_until_finished()
    ckptr.close()


def test_jax_arrays_a_save_held_are_released_while_another_thread_runs_python(tmp_path):
    """The save's thread lets go of the arrays while another Python thread holds the GIL (a busy loop): they are
    released on cairn's releaser thread once the GIL is free, never without it (which crashed)."""
    import threading
    stop = threading.Event()

    def spin():
        n = 0
        while not stop.is_set():
            n += 1

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        ckptr = cairn.AsyncCheckpointer(cairn.StandardCheckpointHandler())
        for i in range(5):
            state = {f"a{j}": jnp.full((1 << 16,), i + j, jnp.float32) for j in range(16)}
            ckptr.save(tmp_path / str(i), args=cairn.args.StandardSave(state))
            del state
            ckptr.wait_until_finished()
        ckptr.close()
    finally:
        stop.set()
        spinner.join()
    restored = cairn.Checkpointer(cairn.StandardCheckpointHandler()).restore(tmp_path / "4")
    np.testing.assert_array_equal(np.asarray(restored["a3"]), np.full((1 << 16,), 7, np.float32))

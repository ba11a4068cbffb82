"""Round trips of nested trees of every dtype through each checkpointer and handler, in both call forms."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import cairn as ocp
from conftest import ALL_DTYPES, as_saved, assert_tree_equal, every_dtype_tree, sample_array


def _standard():
    return ocp.Checkpointer(ocp.StandardCheckpointHandler())


def _pytree():
    return ocp.Checkpointer(ocp.PyTreeCheckpointHandler())


def _async_standard():
    return ocp.AsyncCheckpointer(ocp.StandardCheckpointHandler())


def _async_pytree():
    return ocp.AsyncCheckpointer(ocp.PyTreeCheckpointHandler())


CHECKPOINTERS = {
    "Checkpointer(Standard)": (_standard, ocp.args.StandardSave, ocp.args.StandardRestore),
    "Checkpointer(PyTree)": (_pytree, ocp.args.PyTreeSave, ocp.args.PyTreeRestore),
    "AsyncCheckpointer(Standard)": (_async_standard, ocp.args.StandardSave, ocp.args.StandardRestore),
    "AsyncCheckpointer(PyTree)": (_async_pytree, ocp.args.PyTreeSave, ocp.args.PyTreeRestore),
    "StandardCheckpointer": (ocp.StandardCheckpointer, ocp.args.StandardSave, ocp.args.StandardRestore),
}


def _finish(ckptr):
    if hasattr(ckptr, "wait_until_finished"):
        ckptr.wait_until_finished()


@pytest.mark.parametrize("kind", CHECKPOINTERS)
def test_every_dtype_round_trip_args_form(tmp_path, kind):
    make, save_args, restore_args = CHECKPOINTERS[kind]
    tree = every_dtype_tree(strings="PyTree" in kind)
    with make() as ckptr:
        ckptr.save(tmp_path / "ckpt", args=save_args(tree))
        _finish(ckptr)
        assert_tree_equal(ckptr.restore(tmp_path / "ckpt"), as_saved(tree))
        assert_tree_equal(ckptr.restore(tmp_path / "ckpt", args=restore_args()), as_saved(tree))
        # With the tree itself as the target, tuples stay tuples and every value is restored as it was.
        assert_tree_equal(ckptr.restore(tmp_path / "ckpt", args=restore_args(tree)), tree)


@pytest.mark.parametrize("kind", CHECKPOINTERS)
def test_keyword_and_positional_forms(tmp_path, kind):
    make, _, _ = CHECKPOINTERS[kind]
    tree = every_dtype_tree(seed=1)
    with make() as ckptr:
        ckptr.save(tmp_path / "kw", state=tree)
        ckptr.save(str(tmp_path / "pos"), tree)
        _finish(ckptr)
        assert_tree_equal(ckptr.restore(tmp_path / "kw"), as_saved(tree))
        assert_tree_equal(ckptr.restore(tmp_path / "pos", tree), tree)
    if kind != "StandardCheckpointer":
        with make() as ckptr:
            ckptr.save(tmp_path / "item", item=tree)
            _finish(ckptr)
            assert_tree_equal(ckptr.restore(tmp_path / "item", item=tree), tree)


def test_standard_checkpointer_orbax_signature(tmp_path):
    state = {"params": {"w": sample_array("float32"), "b": sample_array("bfloat16", (3,))}, "step": 7}
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "1", state, custom_metadata={"note": "first"})
        ckptr.wait_until_finished()
        target = {"params": {"w": ocp.ArraySpec((2, 4), np.float64), "b": ocp.ArraySpec((3,), np.float32)},
                  "step": ocp.ArraySpec((), np.int64)}
        padded = ckptr.restore(tmp_path / "1", target, strict=False)
        assert padded["params"]["w"].dtype == np.float64
        np.testing.assert_array_equal(padded["params"]["w"][:, :3], state["params"]["w"])
        np.testing.assert_array_equal(padded["params"]["w"][:, 3], [0, 0])
        np.testing.assert_array_equal(padded["params"]["b"], ocp.cast(state["params"]["b"], np.float32))
        assert int(padded["step"]) == 7
        with pytest.raises(ValueError):
            ckptr.restore(tmp_path / "1", target)  # strict: the shapes differ
        meta = ckptr.metadata(tmp_path / "1")
        assert meta.custom_metadata == {"note": "first"}
        assert meta.item_metadata["params"]["w"] == ocp.ArraySpec((2, 3), np.float32)
        assert meta.item_metadata["params"]["b"] == ocp.ArraySpec((3,), ocp.bfloat16)
        assert "StandardCheckpointHandler" in meta.item_handlers
        assert meta.commit_timestamp_nsecs >= meta.init_timestamp_nsecs > 0


def test_force_replaces(tmp_path):
    with _standard() as ckptr:
        ckptr.save(tmp_path / "c", args=ocp.args.StandardSave({"x": np.zeros(3)}))
        with pytest.raises(FileExistsError):
            ckptr.save(tmp_path / "c", args=ocp.args.StandardSave({"x": np.ones(3)}))
        ckptr.save(tmp_path / "c", args=ocp.args.StandardSave({"x": np.ones(3)}), force=True)
        np.testing.assert_array_equal(ckptr.restore(tmp_path / "c")["x"], np.ones(3))


def test_save_args_cast_and_restore_args(tmp_path):
    tree = {"params": {"w": sample_array("float32"), "b": sample_array("float32", (3,))}}
    save_args = {"params": {"w": ocp.SaveArgs(dtype="bfloat16"), "b": None}}
    with _pytree() as ckptr:
        ckptr.save(tmp_path / "c", args=ocp.args.PyTreeSave(tree, save_args=save_args))
        back = ckptr.restore(tmp_path / "c")
        assert back["params"]["w"].dtype == ocp.bfloat16
        assert back["params"]["b"].dtype == np.float32
        cast = ckptr.restore(tmp_path / "c", args=ocp.args.PyTreeRestore(
            restore_args={"params": {"w": ocp.RestoreArgs(dtype=np.float32), "b": ocp.RestoreArgs(dtype=np.float64)}}))
        np.testing.assert_array_equal(cast["params"]["w"], tree["params"]["w"])  # exact in bfloat16
        assert cast["params"]["b"].dtype == np.float64
        # Orbax's single SaveArgs for every parameter, and parameter names as keys.
        ckptr.save(tmp_path / "d", args=ocp.args.PyTreeSave(tree, save_args=ocp.SaveArgs(dtype=np.float16)))
        assert ckptr.metadata(tmp_path / "d").item_metadata["params"]["b"].dtype == np.float16
        ckptr.save(tmp_path / "e", args=ocp.args.PyTreeSave(tree, save_args={"params.b": ocp.SaveArgs(dtype=np.int32)}))
        meta = ckptr.metadata(tmp_path / "e").item_metadata
        assert meta["params"]["b"].dtype == np.int32 and meta["params"]["w"].dtype == np.float32


def test_partial_restore_with_placeholder(tmp_path):
    tree = {"a": sample_array("int32", (8,)), "b": {"c": sample_array("float32", (3,))}}
    with _pytree() as ckptr:
        ckptr.save(tmp_path / "c", args=ocp.args.PyTreeSave(tree))
        back = ckptr.restore(tmp_path / "c", args=ocp.args.PyTreeRestore(
            {"a": ocp.PLACEHOLDER, "b": {"c": ocp.ArraySpec((3,), np.float64)}}, partial_restore=True))
        assert back["a"] is ... and back["b"]["c"].dtype == np.float64
        with pytest.raises(ValueError):
            ckptr.restore(tmp_path / "c", args=ocp.args.PyTreeRestore({"b": {"c": ocp.ArraySpec((3,), np.float64)}}))


def test_json_array_and_composite_handlers(tmp_path):
    with ocp.Checkpointer(ocp.JsonCheckpointHandler()) as ckptr:
        doc = {"name": "run", "lr": 0.5, "steps": [1, 2, 3], "nested": {"ok": True, "none": None}}
        ckptr.save(tmp_path / "json", args=ocp.args.JsonSave(doc))
        assert ckptr.restore(tmp_path / "json") == doc
        assert ckptr.restore(tmp_path / "json", args=ocp.args.JsonRestore()) == doc
        ckptr.save(tmp_path / "json2", {"k": np.float32(1.5)})  # keyword form; numpy scalars become JSON numbers
        assert ckptr.restore(tmp_path / "json2") == {"k": 1.5}
    with ocp.Checkpointer(ocp.ArrayCheckpointHandler()) as ckptr:
        x = sample_array("complex64", (5,))
        ckptr.save(tmp_path / "array", args=ocp.args.ArraySave(x))
        assert_tree_equal(ckptr.restore(tmp_path / "array"), x)
        back = ckptr.restore(tmp_path / "array", args=ocp.args.ArrayRestore(ocp.ArraySpec((5,), np.complex128)))
        assert back.dtype == np.complex128
    tree = every_dtype_tree()
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler("state", "meta")) as ckptr:
        ckptr.save(tmp_path / "comp", args=ocp.args.Composite(state=ocp.args.StandardSave(tree),
                                                              meta=ocp.args.JsonSave({"step": 3})))
        back = ckptr.restore(tmp_path / "comp")
        assert isinstance(back, ocp.args.Composite)
        assert_tree_equal(back.state, as_saved(tree))
        assert back["meta"] == {"step": 3}
        only_state = ckptr.restore(tmp_path / "comp", args=ocp.args.Composite(state=ocp.args.StandardRestore()))
        assert_tree_equal(only_state.state, as_saved(tree))
    # Keyword form of a composite with explicit handlers.
    with ocp.AsyncCheckpointer(ocp.CompositeCheckpointHandler(state=ocp.StandardCheckpointHandler(),
                                                              meta=ocp.JsonCheckpointHandler())) as ckptr:
        ckptr.save(tmp_path / "comp2", state=tree, meta={"step": 4})
        ckptr.wait_until_finished()
        back = ckptr.restore(tmp_path / "comp2")
        assert_tree_equal(back.state, as_saved(tree))
        assert back.meta == {"step": 4}
        assert set(ckptr.metadata(tmp_path / "comp2").item_handlers) == {"state", "meta"}


def test_storage_options(tmp_path):
    tree = every_dtype_tree()
    for i, opts in enumerate([dict(use_ocdbt=False), dict(use_zarr3=True), dict(use_compression=False)]):
        with ocp.Checkpointer(ocp.PyTreeCheckpointHandler(**opts)) as ckptr:
            ckptr.save(tmp_path / str(i), tree)
            assert_tree_equal(ckptr.restore(tmp_path / str(i)), as_saved(tree))


def test_restored_arrays_own_their_memory(tmp_path):
    with _standard() as ckptr:
        ckptr.save(tmp_path / "c", {"x": np.arange(1000, dtype=np.float32)})
        x = ckptr.restore(tmp_path / "c")["x"]
    del ckptr
    assert x.flags.writeable and x.flags.c_contiguous
    assert type(x.base).__name__ == "PyCapsule"  # numpy holds cairn's restored buffer itself: no copy was made
    x += 1  # writable, and still alive after the checkpointer is gone
    assert x[999] == 1000


def test_async_save_snapshots_arrays(tmp_path):
    """The caller may change its arrays as soon as save() returns: the save has copied them."""
    x = np.arange(1 << 20, dtype=np.float32)
    expected = x.copy()
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "c", {"x": x})
        x[:] = -1
        del x
        ckptr.wait_until_finished()
        np.testing.assert_array_equal(ckptr.restore(tmp_path / "c")["x"], expected)


@pytest.mark.parametrize("written", ["none", "10%", "all"])
def test_async_save_with_writes_during_the_save(tmp_path, written):
    """numpy arrays written, freed and resized while an async save is in flight: the checkpoint holds the values of
    the moment save() returned, byte for byte (docs/reliability.md, "Asynchronous saves: memory and time")."""
    rng = np.random.default_rng(1)
    state = {"w": rng.standard_normal(4 << 20).astype(np.float32),   # 16 MiB
             "m": rng.standard_normal((1024, 2048)).astype(np.float32),
             "freed": np.arange(3 << 20, dtype=np.int32),
             "resized": np.arange(1 << 20, dtype=np.float64)}
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "0", state)
        ckptr.wait_until_finished()
        restored = ckptr.restore(tmp_path / "0")  # cairn's own buffers, handed to numpy: saved back below
    state["r"] = restored["w"]
    expected = {k: v.copy() for k, v in state.items()}
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "1", state)
        stride = {"none": 0, "10%": 10, "all": 1}[written]
        if stride:
            for key in ("w", "m", "r"):
                flat = state[key].reshape(-1)
                flat[:: stride * 1024] = -7.0  # one float per 4 KiB page, every stride-th page
        del state["freed"]
        state["resized"].resize(16, refcheck=False)
        ckptr.wait_until_finished()
        back = ckptr.restore(tmp_path / "1")
    assert sorted(back) == sorted(expected)
    for key, value in expected.items():
        assert back[key].tobytes() == value.tobytes(), key


def test_non_contiguous_and_big_endian_inputs(tmp_path):
    base = sample_array("float64", (4, 6))
    tree = {"t": base.T, "s": base[::2, 1::2], "be": base.astype(">f8")}
    with _standard() as ckptr:
        ckptr.save(tmp_path / "c", tree)
        back = ckptr.restore(tmp_path / "c")
    np.testing.assert_array_equal(back["t"], base.T)
    np.testing.assert_array_equal(back["s"], base[::2, 1::2])
    np.testing.assert_array_equal(back["be"], base)
    assert back["be"].dtype == np.dtype("<f8")


def test_save_releases_the_gil(tmp_path):
    """Another Python thread runs while a save or a restore does its I/O."""
    big = {"x": np.random.default_rng(0).standard_normal(8 << 20).astype(np.float32)}  # 32 MiB
    ticks = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            ticks[0] += 1

    def measure(fn, count):
        """Ticks of the spinning thread during calls fn(i), repeated until they took 0.1 s in all."""
        total_ticks, elapsed = 0, 0.0
        for i in range(count):
            before, start = ticks[0], time.monotonic()
            fn(i)
            elapsed += time.monotonic() - start
            total_ticks += ticks[0] - before
            if elapsed > 0.1:
                break
        return total_ticks, elapsed

    thread = threading.Thread(target=spin)
    thread.start()
    try:
        time.sleep(0.05)
        with _standard() as ckptr:
            during_save, save_time = measure(lambda i: ckptr.save(tmp_path / str(i), big), 20)
            during_restore, restore_time = measure(lambda i: ckptr.restore(tmp_path / "0"), 50)
    finally:
        stop.set()
        thread.join()
    # Holding the GIL, the spinning thread would get in at most a tick or so per call (the switch interval is
    # 5 ms); released, it counts millions per second.
    assert during_save > 1000, (during_save, save_time)
    assert during_restore > 1000, (during_restore, restore_time)


def test_async_save_returns_before_the_write(tmp_path):
    """save() returns once the arrays are copied; the write and the commit run in the background."""
    release = threading.Event()
    options = ocp.AsyncOptions(post_finalization_callback=lambda: release.wait(30))
    big = {"x": np.ones(4 << 20, dtype=np.float32)}
    with ocp.AsyncCheckpointer(ocp.StandardCheckpointHandler(), async_options=options) as ckptr:
        start = time.monotonic()
        ckptr.save(tmp_path / "c", args=ocp.args.StandardSave(big))
        blocked = time.monotonic() - start
        assert ckptr.is_saving_in_progress()
        assert not (tmp_path / "c").exists()
        release.set()
        ckptr.wait_until_finished()
        assert not ckptr.is_saving_in_progress()
    assert (tmp_path / "c" / "commit_success.txt").exists()
    assert blocked < 10, blocked


def test_context_manager_waits_for_async_save(tmp_path):
    tree = {"x": sample_array("float32", (256, 256))}
    with ocp.AsyncCheckpointer(ocp.StandardCheckpointHandler()) as ckptr:
        ckptr.save(tmp_path / "c", args=ocp.args.StandardSave(tree))
    assert (tmp_path / "c" / "commit_success.txt").exists()
    assert not ckptr.is_saving_in_progress()


def test_callbacks_run(tmp_path):
    called = []
    options = ocp.AsyncOptions(post_finalization_callback=lambda: called.append(threading.get_ident()))
    with ocp.AsyncCheckpointer(ocp.StandardCheckpointHandler(), async_options=options) as ckptr:
        ckptr.save(tmp_path / "c", {"x": np.zeros(4)})
        ckptr.wait_until_finished()
    assert len(called) == 1


@pytest.mark.parametrize("name", ALL_DTYPES)
def test_restore_cast_from_every_dtype_to_float32(tmp_path, name):
    x = sample_array(name)
    with _standard() as ckptr:
        ckptr.save(tmp_path / "c", {"x": x})
        back = ckptr.restore(tmp_path / "c", args=ocp.args.StandardRestore({"x": ocp.ArraySpec((2, 3), np.float32)}))
    assert back["x"].dtype == np.float32
    np.testing.assert_array_equal(back["x"], ocp.cast(x, np.float32))


def test_exit_with_a_save_in_flight(tmp_path):
    """The interpreter exits normally with saves still running (and Python callbacks still to call): they finish."""
    script = f"""
import time, numpy as np, cairn as ocp
def callback():
    time.sleep(0.5)
options = ocp.AsyncOptions(post_finalization_callback=callback)
ckptr = ocp.AsyncCheckpointer(ocp.StandardCheckpointHandler(), async_options=options)
ckptr.save({str(tmp_path / 'ckpt')!r}, {{"x": np.zeros(3)}})
mngr = ocp.CheckpointManager({str(tmp_path / 'run')!r}, options=ocp.CheckpointManagerOptions(
    best_fn=lambda m: m["loss"], max_to_keep=1, async_options=options))
mngr.save(0, args=ocp.args.StandardSave({{"x": np.zeros(3)}}), metrics={{"loss": 1.0}})
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "ckpt" / "commit_success.txt").exists()
    assert (tmp_path / "run" / "0" / "commit_success.txt").exists()



# What cairn takes for a jax.Array (a type of a "jax" module with addressable_shards, bytes through DLPack): saved
# without a copy, its Python objects held by an async save and released by the module's releaser thread. Real JAX
# cannot run in a fork() child; this can.
FORK_SCRIPT = r"""
import os, signal, sys, time, weakref
import numpy as np
import cairn as ocp

class ImmutableStandIn:
    __module__ = "jax_standin"
    addressable_shards = ()
    sharding = None
    def __init__(self, a):
        self.a, self.shape, self.dtype = a, a.shape, a.dtype
    def __dlpack__(self, **kwargs):
        return self.a.__dlpack__()
    def __dlpack_device__(self):
        return self.a.__dlpack_device__()

def save_and_watch(path):
    leaf = ImmutableStandIn(np.arange(1 << 16, dtype=np.float32))
    ref = weakref.ref(leaf)
    ckptr = ocp.AsyncCheckpointer(ocp.StandardCheckpointHandler())
    ckptr.save(path, args=ocp.args.StandardSave({"w": leaf}))
    del leaf
    ckptr.wait_until_finished()
    ckptr.close()
    deadline = time.monotonic() + 30
    while ref() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    restored = ocp.Checkpointer(ocp.StandardCheckpointHandler()).restore(path)
    assert np.array_equal(restored["w"], np.arange(1 << 16, dtype=np.float32))
    assert ref() is None, "the held array was not released"

save_and_watch(sys.argv[1] + "/parent")
pid = os.fork()
if pid == 0:
    signal.alarm(60)  # a child that hangs dies (and says so through its status) instead of staying behind
    save_and_watch(sys.argv[1] + "/child")
    sys.exit(0)  # a normal exit: atexit handlers run, cairn's among them
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_a_fork_child_releases_held_arrays_and_exits(tmp_path):
    """After the parent's async saves started the releaser thread, a fork() child (which has no such thread) still
    gets held arrays released, and exits through atexit without waiting for a thread it does not have."""
    result = subprocess.run([sys.executable, "-c", FORK_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr

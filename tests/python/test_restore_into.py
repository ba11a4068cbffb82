"""RestoreArgs(fill_target=True): a restore into the caller's own numpy arrays, which come back as the same objects."""

import numpy as np
import pytest

import cairn as ocp


def _save(path, state, **options):
    ckptr = ocp.Checkpointer(ocp.PyTreeCheckpointHandler(**options))
    ckptr.save(path, args=ocp.args.PyTreeSave(state))
    return ckptr


@pytest.mark.parametrize("use_ocdbt", [True, False])
@pytest.mark.parametrize("use_compression", [True, False])
def test_fill_target_returns_the_same_objects_filled(tmp_path, use_ocdbt, use_compression):
    state = {"w": np.arange(64 * 32, dtype=np.float32).reshape(64, 32),
             "layers": [np.arange(10, dtype=np.int64), np.full((3, 3), 2.5, dtype=np.float64)],
             "step": 5}
    _save(tmp_path / "1", state, use_ocdbt=use_ocdbt, use_compression=use_compression)
    target = {"w": np.full((64, 32), -1, dtype=np.float32),
              "layers": [np.zeros(10, dtype=np.int64), np.zeros((3, 3), dtype=np.float32)],  # float64 -> float32
              "step": 0}
    restored = ocp.Checkpointer(ocp.PyTreeCheckpointHandler()).restore(
        tmp_path / "1", args=ocp.args.PyTreeRestore(target, restore_args=ocp.RestoreArgs(fill_target=True)))
    assert restored["w"] is target["w"]
    assert restored["layers"][0] is target["layers"][0]
    assert restored["layers"][1] is target["layers"][1]
    np.testing.assert_array_equal(target["w"], state["w"])
    np.testing.assert_array_equal(target["layers"][0], state["layers"][0])
    assert target["layers"][1].dtype == np.float32
    np.testing.assert_array_equal(target["layers"][1], state["layers"][1].astype(np.float32))
    assert restored["step"] == 5


def test_fill_target_per_parameter_pytree(tmp_path):
    state = {"a": np.arange(6, dtype=np.int32), "b": np.arange(6, dtype=np.int32)}
    _save(tmp_path / "1", state)
    target = {"a": np.zeros(6, dtype=np.int32), "b": np.zeros(6, dtype=np.int32)}
    restored = ocp.Checkpointer(ocp.PyTreeCheckpointHandler()).restore(
        tmp_path / "1", args=ocp.args.PyTreeRestore(
            target, restore_args={"a": ocp.RestoreArgs(fill_target=True), "b": ocp.RestoreArgs()}))
    assert restored["a"] is target["a"]
    assert restored["b"] is not target["b"]
    np.testing.assert_array_equal(target["a"], state["a"])
    np.testing.assert_array_equal(target["b"], np.zeros(6, dtype=np.int32))  # not filled: a new array came back
    np.testing.assert_array_equal(restored["b"], state["b"])


def test_fill_target_refuses_read_only_or_misshapen_targets(tmp_path):
    state = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.arange(12, dtype=np.float32).reshape(3, 4)}
    _save(tmp_path / "1", state)
    ckptr = ocp.Checkpointer(ocp.PyTreeCheckpointHandler())
    a = np.zeros((3, 4), dtype=np.float32)
    read_only = np.zeros((3, 4), dtype=np.float32)
    read_only.flags.writeable = False
    for bad, says in [(read_only, "read-only"), (np.zeros((4, 3), dtype=np.float32), "shape"),
                      (np.zeros((4, 3), dtype=np.float32).T, "read-only")]:  # not C order: a copy would be filled
        with pytest.raises(ValueError, match=says):
            ckptr.restore(tmp_path / "1", args=ocp.args.PyTreeRestore(
                {"a": a, "b": bad}, restore_args=ocp.RestoreArgs(fill_target=True)))
        assert not a.any(), "a leaf was filled before the bad target was refused"


def test_fill_target_through_the_manager(tmp_path):
    state = {"x": np.arange(100, dtype=np.float32)}
    with ocp.CheckpointManager(tmp_path / "run") as manager:
        manager.save(1, args=ocp.args.PyTreeSave(state))
        manager.wait_until_finished()
        target = {"x": np.zeros(100, dtype=np.float32)}
        restored = manager.restore(1, args=ocp.args.PyTreeRestore(target,
                                                                  restore_args=ocp.RestoreArgs(fill_target=True)))
    assert restored["x"] is target["x"]
    np.testing.assert_array_equal(target["x"], state["x"])


@pytest.mark.parametrize("use_ocdbt", [True, False])
@pytest.mark.parametrize("lazy_check", ["on_access", "up_front"])
def test_lazy_restore_gives_read_only_arrays_over_the_files(tmp_path, use_ocdbt, lazy_check):
    state = {"w": np.arange(256 * 1024, dtype=np.float32).reshape(256, 1024), "step": 3}
    _save(tmp_path / "1", state, use_ocdbt=use_ocdbt, use_compression=False)
    ckptr = ocp.Checkpointer(ocp.PyTreeCheckpointHandler())
    restored = ckptr.restore(tmp_path / "1", args=ocp.args.PyTreeRestore(
        restore_args=ocp.RestoreArgs(lazy=True, lazy_check=lazy_check)))
    del ckptr
    w = restored["w"]
    assert isinstance(w, np.ndarray)
    assert not w.flags.writeable
    with pytest.raises(ValueError):
        w[0, 0] = 1.0
    np.testing.assert_array_equal(w, state["w"])
    assert restored["step"] == 3
    view = w[10:20]  # a view keeps the mapping alive after the array itself is gone
    del restored, w
    np.testing.assert_array_equal(view, state["w"][10:20])


def test_lazy_restore_of_compressed_arrays_reads_them(tmp_path):
    state = {"w": np.arange(1000, dtype=np.float64)}
    _save(tmp_path / "1", state, use_compression=True)
    restored = ocp.Checkpointer(ocp.PyTreeCheckpointHandler()).restore(
        tmp_path / "1", args=ocp.args.PyTreeRestore(restore_args=ocp.RestoreArgs(lazy=True)))
    np.testing.assert_array_equal(restored["w"], state["w"])
    assert restored["w"].flags.writeable  # read eagerly into a buffer of its own


def test_lazy_restore_up_front_reports_corruption(tmp_path):
    state = {"w": np.arange(256 * 1024, dtype=np.float32)}
    _save(tmp_path / "1", state, use_ocdbt=False, use_compression=False)
    chunk = tmp_path / "1" / "w" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(ocp.CorruptionError, match="CRC-32C"):
        ocp.Checkpointer(ocp.PyTreeCheckpointHandler()).restore(tmp_path / "1", args=ocp.args.PyTreeRestore(
            restore_args=ocp.RestoreArgs(lazy=True, lazy_check="up_front")))

"""Errors arrive as Python exceptions of the matching builtin kind, all also cairn.Error."""

import errno
import time

import numpy as np
import pytest

import cairn as ocp


def _ckptr(**handler_kwargs):
    return ocp.Checkpointer(ocp.PyTreeCheckpointHandler(**handler_kwargs))


def test_exception_hierarchy():
    expected = {
        ocp.NotFoundError: FileNotFoundError,
        ocp.AlreadyExistsError: FileExistsError,
        ocp.InvalidArgumentError: ValueError,
        ocp.CorruptionError: ValueError,
        ocp.TimeoutError: TimeoutError,
        ocp.IoError: OSError,
        ocp.UnimplementedError: NotImplementedError,
        ocp.AbortedError: RuntimeError,
    }
    for cls, builtin in expected.items():
        assert issubclass(cls, ocp.Error) and issubclass(cls, builtin), cls
        assert cls.__module__ == "cairn"
    assert issubclass(ocp.AlreadyExistsError, ValueError)  # Orbax raises ValueError for an existing destination


def test_existing_destination_is_file_exists_error(tmp_path):
    with _ckptr() as ckptr:
        ckptr.save(tmp_path / "c", {"x": np.zeros(2)})
        with pytest.raises(FileExistsError, match="already exists") as info:
            ckptr.save(tmp_path / "c", {"x": np.zeros(2)})
        assert isinstance(info.value, ocp.AlreadyExistsError) and isinstance(info.value, ValueError)


def test_missing_checkpoint_is_file_not_found_error(tmp_path):
    with _ckptr() as ckptr:
        with pytest.raises(FileNotFoundError, match="nope") as info:
            ckptr.restore(tmp_path / "nope")
        assert isinstance(info.value, ocp.NotFoundError)
        with pytest.raises(FileNotFoundError):
            ckptr.metadata(tmp_path / "nope")


def test_invalid_arguments_are_value_errors(tmp_path):
    with _ckptr() as ckptr:
        ckptr.save(tmp_path / "c", {"x": np.zeros((2, 3))})
        with pytest.raises(ValueError, match="x") as info:  # strict restore into another shape
            ckptr.restore(tmp_path / "c", args=ocp.args.PyTreeRestore({"x": ocp.ArraySpec((4, 3), np.float32)}))
        assert isinstance(info.value, ocp.InvalidArgumentError)
        with pytest.raises(ValueError, match="y"):  # a target that does not match the saved tree
            ckptr.restore(tmp_path / "c", args=ocp.args.PyTreeRestore({"y": ocp.ArraySpec((2, 3), np.float32)}))
        with pytest.raises(ValueError, match="JsonSave"):  # the wrong args for the handler
            ckptr.save(tmp_path / "d", args=ocp.args.JsonSave({"a": 1}))
        with pytest.raises(TypeError, match="cannot save a object"):
            ckptr.save(tmp_path / "e", {"x": object()})
        with pytest.raises(TypeError, match="dict keys must be strings"):
            ckptr.save(tmp_path / "f", {1: np.zeros(2)})
        with pytest.raises(ValueError, match="int64"):
            ckptr.save(tmp_path / "g", {"x": 1 << 70})
        with pytest.raises(ValueError, match="no cairn equivalent"):
            ckptr.save(tmp_path / "h", {"x": np.array(["a", "b"])})
    with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as ckptr:
        with pytest.raises(ValueError):  # StandardCheckpointHandler takes no strings
            ckptr.save(tmp_path / "i", {"s": "text"})
    with pytest.raises(ValueError):
        ocp.ArraySpec((2, 3), "not-a-dtype")
    with pytest.raises(ValueError):
        ocp.ArraySpec((-1,), np.float32)
    assert not (tmp_path / "d").exists() and not (tmp_path / "e").exists()


def test_corrupted_chunk_is_corruption_error(tmp_path):
    with _ckptr(use_ocdbt=False, use_compression=False) as ckptr:
        ckptr.save(tmp_path / "c", {"x": np.arange(16, dtype=np.float32)})
        chunk = tmp_path / "c" / "x" / "0"
        data = bytearray(chunk.read_bytes())
        data[5] ^= 0xFF
        chunk.write_bytes(bytes(data))
        with pytest.raises(ValueError, match="x") as info:
            ckptr.restore(tmp_path / "c")
        assert isinstance(info.value, ocp.CorruptionError)


def test_unimplemented_format_feature_is_not_implemented_error(tmp_path):
    with _ckptr(use_ocdbt=False, verify_checksums=False) as ckptr:
        ckptr.save(tmp_path / "c", {"x": np.arange(4, dtype=np.float32)})
        zarray = tmp_path / "c" / "x" / ".zarray"
        zarray.write_text(zarray.read_text().replace('"<f4"', '">f4"'))
        with pytest.raises(NotImplementedError) as info:
            ckptr.restore(tmp_path / "c")
        assert isinstance(info.value, ocp.UnimplementedError)


def test_io_error_carries_errno(tmp_path):
    with _ckptr() as ckptr:
        with pytest.raises(OSError) as info:
            ckptr.save(tmp_path / ("x" * 300), {"x": np.zeros(2)})  # a name longer than NAME_MAX
    assert isinstance(info.value, ocp.IoError)
    assert info.value.errno == errno.ENAMETOOLONG, info.value
    # A file where a directory must be: the library says so (an AlreadyExistsError, also a FileExistsError).
    (tmp_path / "file").write_text("not a directory")
    with _ckptr() as ckptr:
        with pytest.raises(ocp.Error):
            ckptr.save(tmp_path / "file", {"x": np.zeros(2)})


def test_background_timeout_is_timeout_error(tmp_path):
    options = ocp.AsyncOptions(timeout_secs=1, post_finalization_callback=lambda: time.sleep(2.5))
    with ocp.AsyncCheckpointer(ocp.StandardCheckpointHandler(), async_options=options) as ckptr:
        ckptr.save(tmp_path / "c", {"x": np.zeros(2)})
        with pytest.raises(TimeoutError) as info:
            ckptr.wait_until_finished()
        assert isinstance(info.value, ocp.TimeoutError)
    assert not (tmp_path / "c").exists()


def test_python_exception_in_callback_is_raised_from_wait(tmp_path):
    def fail():
        raise RuntimeError("callback failed")

    ckptr = ocp.AsyncCheckpointer(ocp.StandardCheckpointHandler(),
                                  async_options=ocp.AsyncOptions(post_finalization_callback=fail))
    ckptr.save(tmp_path / "c", {"x": np.zeros(2)})
    with pytest.raises(RuntimeError, match="callback failed"):
        ckptr.wait_until_finished()
    ckptr.wait_until_finished()  # raised once
    ckptr.close()
    assert not (tmp_path / "c").exists()


def test_type_errors_for_misused_calls(tmp_path):
    with ocp.StandardCheckpointer() as ckptr:
        with pytest.raises(TypeError):
            ckptr.save(tmp_path / "c")
        with pytest.raises(TypeError):
            ckptr.save(tmp_path / "c", {"x": np.zeros(2)}, args=ocp.args.StandardSave({}))
    with pytest.raises(TypeError):
        ocp.Checkpointer(object())
    with pytest.raises(TypeError):
        ocp.args.Composite(state={"x": np.zeros(2)})._native()

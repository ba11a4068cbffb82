"""dtypes, ArraySpec, cast, and the conversion of trees to cairn's Tree and back."""

import collections
import copy
import pickle

import numpy as np
import pytest

import cairn as ocp
from conftest import ALL_DTYPES, EXTENDED_DTYPES, NUMPY_DTYPES, sample_array


@pytest.mark.parametrize("name", NUMPY_DTYPES)
def test_numpy_dtypes_map_to_themselves(name):
    assert ocp.dtype_name(np.dtype(name)) == name
    assert ocp.as_numpy_dtype(name) == np.dtype(name)
    assert ocp.ArraySpec((1,), name).dtype == np.dtype(name)


@pytest.mark.parametrize("name", EXTENDED_DTYPES)
def test_extended_dtypes_are_named_structured_dtypes(name):
    dt = getattr(ocp, name)
    assert dt.names == (name,)
    assert dt.itemsize == (2 if name == "bfloat16" else 1)
    assert ocp.dtype_name(dt) == name and ocp.dtype_name(name) == name
    assert ocp.ArraySpec((2,), name).dtype == dt
    assert ocp.ArraySpec((2,), name).dtype_name == name


def test_cast_to_and_from_bfloat16():
    x = np.array([1.0, -2.5, 3.140625, 65280.0], dtype=np.float32)  # exact in bfloat16
    b = ocp.cast(x, ocp.bfloat16)
    assert b.dtype == ocp.bfloat16
    np.testing.assert_array_equal(b.view(np.uint16), x.view(np.uint32) >> 16)
    np.testing.assert_array_equal(ocp.cast(b, np.float32), x)
    np.testing.assert_array_equal(ocp.cast(ocp.cast(x[:2], "float8_e4m3fn"), np.float32), x[:2])  # exact in float8
    np.testing.assert_array_equal(ocp.cast(x, np.int32), x.astype(np.int32))


def test_array_spec():
    spec = ocp.ArraySpec([2, 3], np.float32)
    assert spec.shape == (2, 3) and spec.dtype == np.float32 and spec.ndim == 2 and spec.size == 6
    assert spec == ocp.ArraySpec((2, 3), "float32") and spec != ocp.ArraySpec((2, 3), np.float64)
    assert hash(spec) == hash(ocp.ArraySpec((2, 3), np.float32))
    assert repr(spec) == "ArraySpec(shape=(2, 3), dtype=float32)"
    assert repr(ocp.ArraySpec((4,), ocp.bfloat16)) == "ArraySpec(shape=(4,), dtype=bfloat16)"
    assert pickle.loads(pickle.dumps(ocp.ArraySpec((4,), ocp.bfloat16))) == ocp.ArraySpec((4,), "bfloat16")
    assert copy.deepcopy(spec) == spec


def test_tree_conversion_round_trip():
    tree = {"a": [1, 2.5, True, "s", None, ...], "b": (np.float32(1.5),), "c": {"d": sample_array("int16")},
            "spec": ocp.ArraySpec((2,), np.int8)}
    back = ocp._cairn._roundtrip_tree(tree)
    assert back["a"] == [1, 2.5, True, "s", None, ...]
    assert isinstance(back["b"], tuple) and back["b"][0].dtype == np.float32 and back["b"][0].shape == ()
    np.testing.assert_array_equal(back["c"]["d"], tree["c"]["d"])
    assert back["spec"] == tree["spec"]
    Point = collections.namedtuple("Point", "x y")
    assert ocp._cairn._roundtrip_tree(Point(1, 2)) == (1, 2)


def test_duck_typed_specs_and_array_likes(tmp_path):
    class ShapeDtype:  # like jax.ShapeDtypeStruct
        def __init__(self, shape, dtype):
            self.shape, self.dtype = shape, dtype

    class ArrayLike:
        def __array__(self, dtype=None):
            return np.arange(3, dtype=np.int16)

    with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as ckptr:
        ckptr.save(tmp_path / "c", {"x": ArrayLike()})
        back = ckptr.restore(tmp_path / "c", {"x": ShapeDtype((3,), np.float32)})
    assert back["x"].dtype == np.float32
    np.testing.assert_array_equal(back["x"], [0, 1, 2])


@pytest.mark.parametrize("name", ALL_DTYPES)
def test_zero_size_and_zero_dim_arrays(tmp_path, name):
    tree = {"empty": sample_array(name, (0, 3)), "scalar": sample_array(name, ())}
    with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as ckptr:
        ckptr.save(tmp_path / "c", tree)
        back = ckptr.restore(tmp_path / "c")
    assert back["empty"].shape == (0, 3) and back["empty"].dtype == tree["empty"].dtype
    assert back["scalar"].shape == () and back["scalar"].tobytes() == tree["scalar"].tobytes()


def test_utils_build_targets_and_restore_args(tmp_path):
    state = {"w": sample_array("bfloat16", (2, 2)), "layers": [sample_array("int32", (3,))], "step": 5}
    specs = ocp.utils.tree_to_specs(state)
    assert specs == {"w": ocp.ArraySpec((2, 2), ocp.bfloat16), "layers": [ocp.ArraySpec((3,), np.int32)], "step": 5}
    assert ocp.utils.to_shape_dtype_struct(np.zeros((1, 2), np.int8)) == ocp.ArraySpec((1, 2), np.int8)
    with ocp.Checkpointer(ocp.PyTreeCheckpointHandler()) as ckptr:
        ckptr.save(tmp_path / "c", state)
        target = {"w": ocp.ArraySpec((2, 2), np.float32), "layers": [ocp.ArraySpec((3,), np.float64)], "step": 0}
        back = ckptr.restore(tmp_path / "c", args=ocp.args.PyTreeRestore(
            target, restore_args=ocp.checkpoint_utils.construct_restore_args(target)))
    assert back["w"].dtype == np.float32 and back["layers"][0].dtype == np.float64
    np.testing.assert_array_equal(back["w"], ocp.cast(state["w"], np.float32))


def test_device_arrays_are_copied_to_host_through_array(tmp_path):
    class DeviceArray:  # like a jax.Array on a GPU: DLPack would hand over device memory, __array__ copies to host
        def __dlpack_device__(self):
            return (2, 0)  # kDLCUDA

        def __dlpack__(self, stream=None):
            raise AssertionError("DLPack must not be used for a device array")

        def __array__(self, dtype=None):
            return np.arange(4, dtype=np.float32)

    with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as ckptr:
        ckptr.save(tmp_path / "c", {"x": DeviceArray()})
        np.testing.assert_array_equal(ckptr.restore(tmp_path / "c")["x"], np.arange(4, dtype=np.float32))

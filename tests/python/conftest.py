"""Shared helpers of the Python suite. Run through ctest (label `python`), which sets PYTHONPATH to the build's
package and CAIRN_FIXTURES_DIR / CAIRN_INTEROP_HELPER."""

import os

import numpy as np
import pytest

import cairn as ocp

NUMPY_DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
                "float32", "float64", "complex64", "complex128"]
EXTENDED_DTYPES = ["bfloat16", "float8_e4m3fn", "float8_e5m2"]
ALL_DTYPES = NUMPY_DTYPES + EXTENDED_DTYPES


def sample_array(name, shape=(2, 3), seed=0):
    """Distinct, exactly representable values of dtype `name` (bfloat16 and float8 through cairn.cast)."""
    n = int(np.prod(shape))
    base = np.arange(n, dtype=np.float32) * 0.5 - 1.0 + seed
    if name == "bool":
        return (np.arange(n) % 2 == seed % 2).reshape(shape)
    if name in EXTENDED_DTYPES:
        return ocp.cast(base.reshape(shape), getattr(ocp, name))
    if name.startswith("uint"):
        return (np.arange(n) + seed).astype(name).reshape(shape)
    if name.startswith("int"):
        return (np.arange(n) - 2 + seed).astype(name).reshape(shape)
    if name.startswith("complex"):
        return (base + 1j * base[::-1]).astype(name).reshape(shape)
    return base.astype(name).reshape(shape)


def every_dtype_tree(strings=False, seed=0):
    """A nested tree with every dtype, lists, tuples, None, 0-d arrays and Python scalars."""
    tree = {
        "arrays": {name: sample_array(name, seed=seed) for name in ALL_DTYPES},
        "nested": {
            "layers": [sample_array("float32", (4,), seed), {"w": sample_array("bfloat16", (2, 2), seed)}],
            "pair": (sample_array("int64", (3,), seed), sample_array("float64", (), seed)),
            "empty": None,
        },
        "step": 42 + seed,
        "lr": 0.125,
        "flag": True,
    }
    if strings:
        tree["name"] = "run-7"
    return tree


def as_saved(tree):
    """What a restore without a target returns: tuples come back as lists (Orbax's metadata records only
    "sequence", as Orbax's own restore without a target does)."""
    if isinstance(tree, dict):
        return {k: as_saved(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [as_saved(v) for v in tree]
    return tree


def assert_tree_equal(actual, expected, path="tree"):
    """Same structure, same container types, arrays of the same dtype, shape and bytes, equal scalars."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {type(actual).__name__} is not a dict"
        assert sorted(actual) == sorted(expected), f"{path}: keys {sorted(actual)} != {sorted(expected)}"
        for key in expected:
            assert_tree_equal(actual[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert type(actual) is type(expected), f"{path}: {type(actual).__name__} != {type(expected).__name__}"
        assert len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_tree_equal(a, e, f"{path}[{i}]")
    elif isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray), f"{path}: {type(actual).__name__} is not an ndarray"
        assert actual.dtype == expected.dtype, f"{path}: dtype {actual.dtype} != {expected.dtype}"
        assert actual.shape == expected.shape, f"{path}: shape {actual.shape} != {expected.shape}"
        assert actual.tobytes() == expected.tobytes(), f"{path}: {actual} != {expected}"
    else:
        assert type(actual) is type(expected), f"{path}: {type(actual).__name__} != {type(expected).__name__}"
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


@pytest.fixture
def fixtures_dir():
    path = os.environ.get("CAIRN_FIXTURES_DIR")
    if not path or not os.path.isdir(path):
        pytest.fail("CAIRN_FIXTURES_DIR is not set or missing (run through ctest)")
    return path


@pytest.fixture
def interop_helper():
    path = os.environ.get("CAIRN_INTEROP_HELPER")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("CAIRN_INTEROP_HELPER is not set or not executable (run through ctest)")
    return path

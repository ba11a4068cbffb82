"""Helpers of the Orbax compatibility suite, shared by the tests and the multi-process workers (which set up JAX
their own way, so nothing here configures it)."""

import json
import os
import subprocess

import ml_dtypes
import numpy as np

# Every dtype cairn stores, by Orbax's (zarr's) name.
DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "bfloat16",
          "float32", "float64", "complex64", "complex128", "float8_e4m3fn", "float8_e5m2"]
# What else Orbax writes (one byte an element, as TensorStore stores them).
MORE_DTYPES = ["int4", "int2", "float8_e4m3fnuz", "float8_e4m3b11fnuz", "float8_e5m2fnuz", "float8_e3m4",
               "float8_e8m0fnu", "float4_e2m1fn"]


def numpy_dtype(name):
    return np.dtype(getattr(ml_dtypes, name)) if hasattr(ml_dtypes, name) else np.dtype(name)


def pattern(name, shape):
    """Deterministic contents of every dtype, defined on bytes so that it is exact for any type: byte b of the array
    is (b * 167 + 13) % 251, except for bool (b % 3 == 0) and the types whose byte holds fewer meaningful bits,
    whose values are cycled from the type's own valid range. The C++ helper builds the same bytes."""
    dtype = numpy_dtype(name)
    n = int(np.prod(shape, dtype=np.int64))
    b = np.arange(n * dtype.itemsize, dtype=np.int64)
    if name == "bool":
        return (np.arange(n) % 3 == 0).reshape(shape)
    if name in ("int4", "int2"):
        bits = 4 if name == "int4" else 2
        return ((np.arange(n) % (1 << bits)) - (1 << (bits - 1))).astype(dtype).reshape(shape)
    if name in ("float4_e2m1fn",):
        return (b % 16).astype(np.uint8).view(dtype).reshape(shape)
    raw = ((b * 167 + 13) % 251).astype(np.uint8)
    return raw.view(dtype).reshape(shape)


def raw(a):
    """An array's bytes, whatever its type (cairn returns bfloat16 and float8 with structured dtypes)."""
    return np.ascontiguousarray(np.asarray(a)).view(np.uint8).tobytes()


def dtype_name(a):
    """The zarr name of an array's dtype, for numpy, ml_dtypes, cairn's structured dtypes and jax."""
    import cairn
    return cairn.dtype_name(np.asarray(a).dtype) if np.asarray(a).dtype.names else np.dtype(np.asarray(a).dtype).name


def assert_same_array(actual, expected, where):
    actual_np = np.asarray(actual)
    expected_np = np.asarray(expected)
    actual_dtype, expected_dtype = dtype_name(actual_np), dtype_name(expected_np)
    assert actual_dtype == expected_dtype, f"{where}: {actual_dtype} != {expected_dtype}"
    assert actual_np.shape == expected_np.shape, f"{where}: shape {actual_np.shape} != {expected_np.shape}"
    assert raw(actual_np) == raw(expected_np), f"{where}: bytes differ"


def assert_same_tree(actual, expected, where="tree"):
    """Same structure, arrays of the same dtype, shape and bytes, scalars and strings equal. Lists and tuples match
    each other (Orbax's metadata records both as a sequence)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {type(actual).__name__} is not a dict"
        assert sorted(actual) == sorted(expected), f"{where}: keys {sorted(actual)} != {sorted(expected)}"
        for key in expected:
            assert_same_tree(actual[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)), f"{where}: {type(actual).__name__} is not a sequence"
        assert len(actual) == len(expected), f"{where}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same_tree(a, e, f"{where}[{i}]")
    elif expected is None:
        assert actual is None, f"{where}: {actual!r} is not None"
    elif hasattr(expected, "shape") and hasattr(expected, "dtype"):
        assert hasattr(actual, "shape"), f"{where}: {type(actual).__name__} is not an array"
        assert_same_array(actual, expected, where)
    else:
        # Orbax restores Python scalars as they were saved; cairn too. A 0-d array standing for one is equal.
        assert np.asarray(actual).tolist() == expected, f"{where}: {actual!r} != {expected!r}"


def run(args, timeout=300, env=None, check=True):
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env)
    if check:
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def tool_dump(tool, directory, out, item=None):
    """What cairn's C++ API restores from `directory`: {param: array or value} read back from the helper's dump."""
    args = [tool, "dump", directory, out] + (["--item", item] if item else [])
    run(args)
    with open(os.path.join(out, "index.json")) as f:
        index = json.load(f)
    leaves = {}
    for param, entry in index["leaves"].items():
        if entry["kind"] == "array":
            with open(os.path.join(out, entry["file"]), "rb") as f:
                data = f.read()
            leaves[param] = np.frombuffer(data, dtype=np.uint8).view(numpy_dtype(entry["dtype"])).reshape(
                entry["shape"])
        else:
            leaves[param] = entry["value"]
    return leaves, index["metadata"]


def flatten(tree, prefix=()):
    """{'a.b': leaf} as Orbax names parameters (keys joined with '.')."""
    out = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.update(flatten(v, prefix + (str(k),)))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            out.update(flatten(v, prefix + (str(i),)))
    else:
        out[".".join(prefix)] = tree
    return out


def matrix_tree(standard=False, jax_arrays=False, empty=True):
    """The tree both sides write: every dtype, 0-d, empty, multi-chunk arrays, scalars, a string, None and empty
    containers (orbax_interop_main.cc's MatrixTree(): keep the two in step). `standard`: what
    StandardCheckpointHandler takes (no strings, no empty nodes). `empty=False` leaves out the zero-size array, which
    Orbax refuses to save ("Cannot save arrays with zero size")."""
    if jax_arrays:
        import jax.numpy as jnp
        to = jnp.asarray
    else:
        to = lambda a: a  # noqa: E731
    tree = {
        "dtypes": {name: to(pattern(name, (3, 5))) for name in DTYPES},
        "shapes": {"scalar": to(pattern("float32", ())), "empty": to(pattern("int32", (0, 4))),
                   "vector": to(pattern("int64", (7,))), "big": to(pattern("float32", (256, 1024)))},
        "scalars": {"int": 7, "float": 0.5},
        "layers": [to(pattern("uint8", (4,))), to(pattern("float16", (2, 2)))],
    }
    if not empty:
        del tree["shapes"]["empty"]
    if not standard:
        tree.update({"name": "run-7", "nothing": None, "empty_dict": {}, "empty_list": []})
    return tree


# Orbax's array storage options, as PyTreeCheckpointHandler / StandardCheckpointHandler keyword arguments, and the
# same layout as cairn_orbax_interop save flags.
LAYOUTS = {
    "ocdbt_zarr2": ({}, []),
    "ocdbt_zarr3": ({"use_zarr3": True}, ["--zarr3"]),
    "ocdbt_uncompressed": ({"use_compression": False}, ["--no-compression"]),
    "ocdbt_zarr3_uncompressed": ({"use_zarr3": True, "use_compression": False}, ["--zarr3", "--no-compression"]),
    "zarr2": ({"use_ocdbt": False}, ["--no-ocdbt"]),
    "zarr3": ({"use_ocdbt": False, "use_zarr3": True}, ["--no-ocdbt", "--zarr3"]),
    "zarr2_uncompressed": ({"use_ocdbt": False, "use_compression": False}, ["--no-ocdbt", "--no-compression"]),
}

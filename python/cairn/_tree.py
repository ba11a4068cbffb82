"""Pytree helpers: Orbax's parameter names for per-parameter options given as a tree."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np


def _walk(tree: Any, prefix: tuple[str, ...], is_leaf: Callable[[Any], bool]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if is_leaf(tree):
        yield prefix, tree
    elif isinstance(tree, dict):
        for key in sorted(tree):
            yield from _walk(tree[key], prefix + (str(key),), is_leaf)
    elif isinstance(tree, (list, tuple)):
        for i, element in enumerate(tree):
            yield from _walk(element, prefix + (str(i),), is_leaf)
    elif tree is not None:
        yield prefix, tree


def options_by_param_name(tree: Any, leaf_type: type) -> dict[str, Any] | None:
    """{'params.w': leaf, ...} from a tree of `leaf_type` (Orbax passes SaveArgs/RestoreArgs as a pytree).

    A single `leaf_type` applies to every parameter (the name ""). A dict whose keys already are parameter names
    ('params.w') gives the same names. None leaves are skipped.
    """
    if tree is None:
        return None
    if isinstance(tree, leaf_type):
        return {"": tree}
    out = {}
    for path, leaf in _walk(tree, (), lambda x: isinstance(x, leaf_type)):
        if not isinstance(leaf, leaf_type):
            raise TypeError(f"expected {leaf_type.__name__} leaves, got {type(leaf).__name__} at {'.'.join(path)}")
        out[".".join(path)] = leaf
    return out


def leaves_by_param_name(tree: Any, is_leaf: Callable[[Any], bool]) -> dict[str, Any]:
    """{'params.w': leaf, ...}: the leaves of `tree` by Orbax's parameter name (keys joined with '.')."""
    if tree is None:
        return {}
    return {".".join(path): leaf for path, leaf in _walk(tree, (), is_leaf)}


def on_saved_shardings(restored: Any, saved: Any) -> Any:
    """`restored` (a restore without a target) with each array that `_sharding` records a sharding for made a
    jax.Array on it, as Orbax returns it, when the program uses JAX and the devices exist; numpy otherwise."""
    from . import _jax_sharding
    if saved is None or not _jax_sharding.jax_loaded():
        return restored
    entries = saved.entries()
    if not entries:
        return restored

    def place(path: tuple[str, ...], value: Any) -> Any:
        if isinstance(value, dict):
            return {k: place(path + (str(k),), v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(place(path + (str(i),), v) for i, v in enumerate(value))
        entry = entries.get(".".join(path))
        if entry is None or not isinstance(value, np.ndarray):
            return value
        sharding = _jax_sharding.from_orbax_json(entry, ".".join(path))
        return value if sharding is None else _on_sharding(value, sharding)

    return place((), restored)


def cast_to_target(value: Any, target: Any, restore_args: Any = None) -> Any:
    """`value` with each array cast to the dtype its restore args or its target leaf ask for (a restore whose
    values were computed in Python, such as one with transforms)."""
    if isinstance(value, dict) and isinstance(target, dict):
        args = restore_args if isinstance(restore_args, dict) else {}
        return {k: cast_to_target(v, target.get(k), args.get(k, None if args else restore_args))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)) and isinstance(target, (list, tuple)) and len(value) == len(target):
        args = restore_args if isinstance(restore_args, (list, tuple)) else [restore_args] * len(value)
        return _same_sequence(value, [cast_to_target(v, t, a) for v, t, a in zip(value, target, args)])
    dtype = getattr(restore_args, "dtype", None)
    if dtype is None and not isinstance(target, (int, float, str)):
        dtype = getattr(target, "dtype", None)
    if dtype is None or not isinstance(value, np.ndarray):
        return value
    from ._cairn import as_numpy_dtype, cast
    return value if value.dtype == as_numpy_dtype(dtype) else cast(value, dtype)


def lists_for_tuples(tree: Any) -> Any:
    """The tree with every tuple (namedtuples too) made a list: Orbax's metadata records only "sequence", so a saved
    tuple is a list on disk, and cairn's C++ restore compares a target's containers with the saved ones."""
    if isinstance(tree, dict):
        return {k: lists_for_tuples(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [lists_for_tuples(v) for v in tree]
    return tree


def _same_sequence(like: Any, values: list) -> Any:
    """`values` as the sequence type of `like` (list, tuple, namedtuple)."""
    if isinstance(like, tuple):
        return type(like)(*values) if hasattr(like, "_fields") else tuple(values)
    return values


def match_containers(restored: Any, target: Any, restore_args: Any = None, path: tuple = ()) -> Any:
    """`restored` with the container types of `target`: tuples and namedtuples where the target has them. An array
    whose target leaf carries a JAX sharding (`jax.ShapeDtypeStruct(shape, dtype, sharding=s)`, a jax.Array), or
    whose restore args do (`ArrayRestoreArgs(sharding=s)`), becomes a jax.Array on that sharding, as Orbax returns
    it."""
    if isinstance(target, dict) and isinstance(restored, dict):
        args = restore_args if isinstance(restore_args, dict) else {}
        return {k: match_containers(v, target[k], args.get(k, restore_args if not args else None), path + (str(k),))
                if k in target else v for k, v in restored.items()}
    if isinstance(target, (list, tuple)) and isinstance(restored, (list, tuple)) and len(target) == len(restored):
        args = restore_args if isinstance(restore_args, (list, tuple)) and len(restore_args) == len(target) else \
            [None if isinstance(restore_args, (list, tuple)) else restore_args] * len(target)
        values = [match_containers(r, t, a, path + (str(i),))
                  for i, (r, t, a) in enumerate(zip(restored, target, args))]
        return _same_sequence(target, values)
    sharding = getattr(restore_args, "sharding", None) or getattr(target, "sharding", None)
    if sharding is not None and isinstance(restored, (np.ndarray, Shards)):
        try:
            return _on_sharding(restored, sharding)
        except (ValueError, TypeError, IndexError, KeyError) as e:
            raise ValueError(f"parameter {'.'.join(path)}: the target sharding {sharding} does not fit an array of "
                             f"shape {tuple(restored.shape)} on this process's devices: {e}") from e
    return restored


class Shards:
    """The boxes of a global array that this process restored, for a target whose sharding spans processes:
    (origin, numpy array) each."""

    def __init__(self, global_shape: tuple, shards: list):
        self.shape = tuple(global_shape)
        self.shards = {tuple(origin): array for origin, array in shards}

    def __getitem__(self, index: tuple) -> np.ndarray:
        origin = tuple(s.indices(d)[0] for s, d in zip(index, self.shape)) + (0,) * (len(self.shape) - len(index))
        return self.shards[origin]


def _on_sharding(array: Any, sharding: Any) -> Any:
    """A jax.Array of `array`'s values laid out by `sharding`: each of this process's devices gets its slice (of
    the whole array, or of the boxes restored for it)."""
    import jax
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])

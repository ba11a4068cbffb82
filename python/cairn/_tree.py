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


def lists_for_tuples(tree: Any) -> Any:
    """The tree with every tuple (namedtuples too) made a list: Orbax's metadata records only "sequence", so a saved
    tuple is a list on disk, and cairn's C++ restore compares a target's containers with the saved ones."""
    if isinstance(tree, dict):
        return {k: lists_for_tuples(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [lists_for_tuples(v) for v in tree]
    return tree


def match_containers(restored: Any, target: Any, restore_args: Any = None) -> Any:
    """`restored` with the container types of `target`: tuples and namedtuples where the target has them. An array
    whose target leaf carries a JAX sharding (`jax.ShapeDtypeStruct(shape, dtype, sharding=s)`, a jax.Array), or
    whose restore args do (`ArrayRestoreArgs(sharding=s)`), becomes a jax.Array on that sharding, as Orbax returns
    it."""
    if isinstance(target, dict) and isinstance(restored, dict):
        args = restore_args if isinstance(restore_args, dict) else {}
        return {k: match_containers(v, target[k], args.get(k, restore_args if not args else None)) if k in target
                else v for k, v in restored.items()}
    if isinstance(target, (list, tuple)) and isinstance(restored, (list, tuple)) and len(target) == len(restored):
        args = restore_args if isinstance(restore_args, (list, tuple)) and len(restore_args) == len(target) else \
            [None if isinstance(restore_args, (list, tuple)) else restore_args] * len(target)
        values = [match_containers(r, t, a) for r, t, a in zip(restored, target, args)]
        if isinstance(target, tuple):
            return type(target)(*values) if hasattr(target, "_fields") else tuple(values)
        return values
    sharding = getattr(restore_args, "sharding", None) or getattr(target, "sharding", None)
    if sharding is not None and isinstance(restored, (np.ndarray, Shards)):
        return _on_sharding(restored, sharding)
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

"""A few of Orbax's helpers (`ocp.utils`, `ocp.checkpoint_utils`) that restore code commonly calls."""

from __future__ import annotations

from typing import Any

from .types import ArrayRestoreArgs, ArraySpec, RestoreArgs


def _map(fn, tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _map(fn, v) for k, v in tree.items()}
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_map(fn, v) for v in tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(_map(fn, v) for v in tree)
    return None if tree is None else fn(tree)


def to_shape_dtype_struct(x: Any) -> Any:
    """An ArraySpec for an array (anything with .shape and .dtype); a jax.ShapeDtypeStruct with the same sharding
    for a jax.Array, as Orbax gives; other leaves unchanged."""
    if getattr(x, "sharding", None) is not None and type(x).__module__.startswith("jax"):
        import jax
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return ArraySpec(tuple(x.shape), x.dtype)
    return x


def tree_to_specs(tree: Any) -> Any:
    """The tree with every array replaced by its ArraySpec (as jax.eval_shape gives an abstract state)."""
    return _map(to_shape_dtype_struct, tree)


def construct_restore_args(target: Any) -> Any:
    """A tree of RestoreArgs casting each leaf to the target's dtype (Orbax's checkpoint_utils version); a leaf with
    a JAX sharding gets ArrayRestoreArgs(sharding=...), so it comes back as a jax.Array on it."""

    def restore_args(x: Any) -> RestoreArgs:
        if getattr(x, "sharding", None) is not None:
            return ArrayRestoreArgs(dtype=x.dtype, sharding=x.sharding, global_shape=tuple(x.shape))
        return RestoreArgs(dtype=x.dtype) if hasattr(x, "dtype") else RestoreArgs()

    return _map(restore_args, target)

"""Orbax's newer API (`orbax.checkpoint.v1`): save and load a PyTree, or several named ones, in one call.

    import cairn as ocp
    ocp.v1.save('/ckpt/1', state)                       # a PyTree, as the checkpointable 'state'
    state = ocp.v1.load('/ckpt/1', abstract_state)      # abstract_state: jax.ShapeDtypeStruct leaves (optional)

The checkpoint is what Orbax's v1 writes (a composite whose item `state` is a PyTree in OCDBT + zarr3), less
v1's empty `orbax.checkpoint` marker file; Orbax's `v1.load` and its classic API read it (tested), and `load` reads what either of Orbax's APIs wrote, a
checkpoint whose root is the tree included.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from . import _cairn
from . import args as _args
from .checkpointers import AsyncCheckpointer, Checkpointer
from .handlers import CompositeCheckpointHandler, PyTreeCheckpointHandler
from .types import PLACEHOLDER

__all__ = ["save", "save_async", "load", "load_async", "save_pytree", "load_pytree", "save_checkpointables",
           "load_checkpointables", "metadata", "pytree_metadata", "is_orbax_checkpoint", "AsyncResponse",
           "PLACEHOLDER"]

_DEFAULT_NAME = "state"


class AsyncResponse:
    """A save in flight: `result()` waits for it to commit (raising its failure) and returns None."""

    def __init__(self, checkpointer: AsyncCheckpointer):
        self._checkpointer = checkpointer

    def result(self, timeout: Optional[float] = None) -> None:
        del timeout  # waits for the commit, however long it takes
        try:
            self._checkpointer.wait_until_finished()
        finally:
            self._checkpointer.close()


def _handlers(names) -> CompositeCheckpointHandler:
    # Orbax's v1 writes PyTrees in OCDBT + zarr3.
    return CompositeCheckpointHandler(**{name: PyTreeCheckpointHandler(use_zarr3=True) for name in names})


def _save_args(checkpointables: dict) -> _args.Composite:
    for name in checkpointables:
        if not isinstance(name, str) or not name or name.startswith("_"):
            raise ValueError(f"checkpointable names are non-empty strings not starting with '_': {name!r}")
    return _args.Composite(**{name: _args.PyTreeSave(tree) for name, tree in checkpointables.items()})


def save_checkpointables(path: Any, checkpointables: dict, *, overwrite: bool = False,
                         custom_metadata: Optional[dict] = None) -> None:
    """Each value of `checkpointables` (a PyTree) saved under its name, atomically, in one checkpoint."""
    with Checkpointer(_handlers(checkpointables)) as ckptr:
        ckptr.save(path, args=_save_args(checkpointables), force=overwrite, custom_metadata=custom_metadata)


def save(path: Any, state: Any, *, checkpointable_name: str = _DEFAULT_NAME, overwrite: bool = False,
         custom_metadata: Optional[dict] = None) -> None:
    """`state` (a PyTree) saved as the checkpointable `checkpointable_name`; returns once it is committed."""
    save_checkpointables(path, {checkpointable_name: state}, overwrite=overwrite, custom_metadata=custom_metadata)


def save_async(path: Any, state: Any, *, checkpointable_name: str = _DEFAULT_NAME, overwrite: bool = False,
               custom_metadata: Optional[dict] = None) -> AsyncResponse:
    """As `save`, returning once the arrays are copied; `.result()` waits for the commit."""
    ckptr = AsyncCheckpointer(_handlers([checkpointable_name]))
    try:
        ckptr.save(path, args=_save_args({checkpointable_name: state}), force=overwrite,
                   custom_metadata=custom_metadata)
    except BaseException:
        ckptr.close()
        raise
    return AsyncResponse(ckptr)


def _items(path: Any) -> list[str]:
    """The item names of the checkpoint at `path` ("" when its root is the item)."""
    description = json.loads(_cairn._describe(os.fspath(path)))
    return [item.get("name", "") for item in description.get("items", [])]


def _resolve_name(path: Any, checkpointable_name: Optional[str]) -> Optional[str]:
    """The item to load: the one named; with 'AUTO', `state` if there is one, else the only item; None when the
    checkpoint's root is the tree."""
    items = _items(path)
    if items == [""]:
        return None
    if checkpointable_name not in (None, "AUTO"):
        if checkpointable_name not in items:
            raise ValueError(f"{os.fspath(path)} has no checkpointable {checkpointable_name!r} (it has {items})")
        return checkpointable_name
    if _DEFAULT_NAME in items:
        return _DEFAULT_NAME
    trees = [name for name in items if name not in ("metrics", "")]
    if len(trees) != 1:
        raise ValueError(f"{os.fspath(path)} holds {items}: pass checkpointable_name")
    return trees[0]


def load(path: Any, abstract_state: Any = None, *, checkpointable_name: Optional[str] = "AUTO") -> Any:
    """The PyTree saved at `path`, onto `abstract_state` (jax.ShapeDtypeStruct leaves with shardings give
    jax.Arrays on them; PLACEHOLDER leaves are skipped) or as saved."""
    name = _resolve_name(path, checkpointable_name)
    restore = _args.PyTreeRestore(abstract_state, partial_restore=False)
    if name is None:
        with Checkpointer(PyTreeCheckpointHandler()) as ckptr:
            return ckptr.restore(path, args=restore)
    with Checkpointer(CompositeCheckpointHandler(**{name: PyTreeCheckpointHandler()})) as ckptr:
        return ckptr.restore(path, args=_args.Composite(**{name: restore}))[name]


class _Done:
    def __init__(self, value: Any):
        self._value = value

    def result(self, timeout: Optional[float] = None) -> Any:
        del timeout
        return self._value


def load_async(path: Any, abstract_state: Any = None, *, checkpointable_name: Optional[str] = "AUTO") -> Any:
    """As `load`; the restore has finished when this returns (`.result()` gives the tree)."""
    return _Done(load(path, abstract_state, checkpointable_name=checkpointable_name))


def load_checkpointables(path: Any, abstract_checkpointables: Optional[dict] = None) -> dict:
    """Every PyTree checkpointable (or those of `abstract_checkpointables`), by name."""
    names = list(abstract_checkpointables) if abstract_checkpointables else \
        [n for n in _items(path) if n not in ("", "metrics")]
    abstract = abstract_checkpointables or {}
    with Checkpointer(CompositeCheckpointHandler(**{n: PyTreeCheckpointHandler() for n in names})) as ckptr:
        restored = ckptr.restore(path, args=_args.Composite(
            **{n: _args.PyTreeRestore(abstract.get(n)) for n in names}))
    return {n: restored[n] for n in names}


class CheckpointMetadata:
    """What `metadata` returns: `.metadata` (the tree, ArraySpecs for arrays), `.custom_metadata`, timestamps."""

    def __init__(self, tree: Any, step: Any):
        self.metadata = tree
        self.custom_metadata = step.custom_metadata
        self.init_timestamp_nsecs = step.init_timestamp_nsecs
        self.commit_timestamp_nsecs = step.commit_timestamp_nsecs

    def __repr__(self) -> str:
        return f"CheckpointMetadata(metadata={self.metadata!r}, custom_metadata={self.custom_metadata!r})"


def metadata(path: Any, checkpointable_name: Optional[str] = "AUTO") -> CheckpointMetadata:
    """The saved tree's metadata (no array bytes read)."""
    name = _resolve_name(path, checkpointable_name)
    if name is None:
        with Checkpointer(PyTreeCheckpointHandler()) as ckptr:
            step = ckptr.metadata(path)
        return CheckpointMetadata(step.item_metadata, step)
    with Checkpointer(CompositeCheckpointHandler(**{name: PyTreeCheckpointHandler()})) as ckptr:
        step = ckptr.metadata(path)
    items = step.item_metadata
    return CheckpointMetadata(items.get(name) if isinstance(items, dict) else items, step)


def is_orbax_checkpoint(path: Any) -> bool:
    """Whether `path` is a committed checkpoint (of Orbax's format, whoever wrote it)."""
    try:
        description = json.loads(_cairn._describe(os.fspath(path)))
    except (FileNotFoundError, ValueError):
        return False
    return description.get("kind") in ("step", "item") and bool(description.get("committed", True))


# Orbax's deprecated names for the same calls.
save_pytree = save
load_pytree = load
pytree_metadata = metadata

"""`ocp.args`: the arguments of each handler's save and restore.

    ckptr.save(path, args=cairn.args.StandardSave(state))
    ckptr.restore(path, args=cairn.args.StandardRestore(target, strict=False))
    mngr.save(step, args=cairn.args.Composite(state=cairn.args.StandardSave(state), meta=cairn.args.JsonSave({...})))
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from . import _jax_sharding
from ._tree import (cast_to_target, leaves_by_param_name, lists_for_tuples, match_containers, on_saved_shardings,
                    options_by_param_name)
from .types import RestoreArgs, SaveArgs

__all__ = [
    "CheckpointArgs", "StandardSave", "StandardRestore", "PyTreeSave", "PyTreeRestore", "ArraySave", "ArrayRestore",
    "JsonSave", "JsonRestore", "Composite",
]


def _save_args(save_args: Any, item: Any = None) -> Optional[dict]:
    """The native per-parameter SaveArgs; every jax.Array leaf of `item` also gets its sharding as Orbax records it
    in `_sharding`, so that a restore without a target (by cairn or Orbax) puts it back on the same devices."""
    by_name = options_by_param_name(save_args, SaveArgs)
    native = None if by_name is None else {name: a._native() for name, a in by_name.items()}
    for name, leaf in leaves_by_param_name(item, _jax_sharding.is_jax_array).items():
        if not _jax_sharding.is_jax_array(leaf):
            continue
        sharding = _jax_sharding.to_orbax_json(leaf.sharding)
        if sharding is None:
            continue
        native = {} if native is None else native
        base = native.get(name) or native.get("") or {"dtype": None, "chunk_byte_size": None}
        native[name] = dict(base, sharding=sharding)
    return native


def _restore_args(restore_args: Any) -> Optional[dict]:
    by_name = options_by_param_name(restore_args, RestoreArgs)
    return None if by_name is None else {name: a._native() for name, a in by_name.items()}


class CheckpointArgs:
    """Base of every handler's arguments."""

    def _native(self) -> dict:
        raise NotImplementedError

    def _match(self, restored: Any, saved: Any = None) -> Any:
        """The restored value with the target's container types (a restore target's tuples stay tuples); `saved`
        (a SavedShardings of the item) places arrays restored without a target on their saved shardings."""
        return restored


@dataclasses.dataclass
class StandardSave(CheckpointArgs):
    """A tree of arrays and scalars (StandardCheckpointHandler)."""

    item: Any
    save_args: Any = None
    custom_metadata: Optional[dict] = None

    def _native(self) -> dict:
        return {"kind": "StandardSave", "item": self.item, "save_args": _save_args(self.save_args, self.item),
                "custom_metadata": self.custom_metadata}


@dataclasses.dataclass
class StandardRestore(CheckpointArgs):
    """A target tree of ArraySpecs or arrays (None: restore as saved). strict=False zero-pads or truncates."""

    item: Any = None
    strict: bool = True

    def _native(self) -> dict:
        return {"kind": "StandardRestore", "item": lists_for_tuples(self.item), "strict": self.strict}

    def _match(self, restored: Any, saved: Any = None) -> Any:
        if self.item is None:
            return on_saved_shardings(restored, saved)
        return match_containers(restored, self.item)


@dataclasses.dataclass
class PyTreeSave(CheckpointArgs):
    """A tree of arrays, scalars and strings (PyTreeCheckpointHandler)."""

    item: Any
    save_args: Any = None
    ocdbt_target_data_file_size: Optional[int] = None
    custom_metadata: Optional[dict] = None

    def _native(self) -> dict:
        return {"kind": "PyTreeSave", "item": self.item, "save_args": _save_args(self.save_args, self.item),
                "ocdbt_target_data_file_size": self.ocdbt_target_data_file_size,
                "custom_metadata": self.custom_metadata}


@dataclasses.dataclass
class PyTreeRestore(CheckpointArgs):
    """A target tree (None: as saved); restore_args cast per parameter; partial_restore reads only the target's
    leaves (`...` leaves are skipped)."""

    item: Any = None
    restore_args: Any = None
    transforms: Any = None
    transforms_default_to_original: bool = True
    legacy_transform_fn: Any = None
    partial_restore: bool = False
    strict: bool = True

    def _native(self) -> dict:
        if self.legacy_transform_fn is not None:
            raise NotImplementedError("cairn does not implement PyTreeRestore legacy_transform_fn (use transforms)")
        if self.transforms is not None:
            if self.item is None:
                raise ValueError("PyTreeRestore: transforms need an item (the tree to restore into)")
            if self.restore_args is None:
                raise ValueError("PyTreeRestore: transforms need restore_args matching the item's structure")
            from .transform_utils import check_restore_transforms
            check_restore_transforms(self.transforms)
            # The saved tree is read whole; _match builds the item from it.
            return {"kind": "PyTreeRestore", "item": None, "restore_args": None, "partial_restore": False,
                    "strict": self.strict}
        return {"kind": "PyTreeRestore", "item": lists_for_tuples(self.item),
                "restore_args": _restore_args(self.restore_args), "partial_restore": self.partial_restore,
                "strict": self.strict}

    def _match(self, restored: Any, saved: Any = None) -> Any:
        if self.transforms is not None:
            from .transform_utils import apply_transformations, with_restore_args
            transformed = apply_transformations(restored, with_restore_args(self.transforms, self.restore_args),
                                                self.item, self.transforms_default_to_original)
            return match_containers(cast_to_target(transformed, self.item, self.restore_args), self.item,
                                    self.restore_args)
        if self.item is None and self.restore_args is None:
            return on_saved_shardings(restored, saved)
        return match_containers(restored, self.item, self.restore_args)


@dataclasses.dataclass
class ArraySave(CheckpointArgs):
    """One array (ArrayCheckpointHandler)."""

    item: Any
    save_args: Optional[SaveArgs] = None

    def _native(self) -> dict:
        return {"kind": "ArraySave", "item": self.item,
                "save_args": None if self.save_args is None else self.save_args._native()}


@dataclasses.dataclass
class ArrayRestore(CheckpointArgs):
    """An ArraySpec target (None: as saved)."""

    item: Any = None
    restore_args: Optional[RestoreArgs] = None
    strict: bool = True

    def _native(self) -> dict:
        item = self.item
        if self.restore_args is not None and self.restore_args.dtype is not None:
            if item is None:
                raise ValueError("ArrayRestore: restore_args.dtype needs an item with a shape")
            from .types import ArraySpec
            item = ArraySpec(item.shape, self.restore_args.dtype)
        return {"kind": "ArrayRestore", "item": item, "strict": self.strict}


@dataclasses.dataclass
class JsonSave(CheckpointArgs):
    """A JSON-serialisable value (JsonCheckpointHandler)."""

    item: Any

    def _native(self) -> dict:
        return {"kind": "JsonSave", "item": self.item}


@dataclasses.dataclass
class JsonRestore(CheckpointArgs):
    item: Any = None

    def _native(self) -> dict:
        return {"kind": "JsonRestore"}


class Composite(CheckpointArgs):
    """Arguments for several named items (CompositeCheckpointHandler), and the result of restoring them.

    Items are keyword arguments; read them as attributes or by key: `c.state`, `c['state']`.
    """

    def __init__(self, **items: Any):
        for name in items:
            if name.startswith("_"):
                raise ValueError(f"Composite item names may not start with '_': {name!r}")
        object.__setattr__(self, "_items", dict(items))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._items[name]
        except KeyError:
            raise AttributeError(f"Composite has no item {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Composite is immutable")

    def __getitem__(self, name: str) -> Any:
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return "Composite(" + ", ".join(f"{k}={v!r}" for k, v in self._items.items()) + ")"

    def keys(self):
        return self._items.keys()

    def values(self):
        return self._items.values()

    def items(self):
        return self._items.items()

    def get(self, name: str, default: Any = None) -> Any:
        return self._items.get(name, default)

    def _match(self, restored: Any, saved: Any = None) -> Any:
        if not isinstance(restored, dict):
            return restored
        return {name: self._items[name]._match(value, saved.item(name) if saved is not None else None)
                if isinstance(self._items.get(name), CheckpointArgs) else value
                for name, value in restored.items()}

    def _native(self) -> dict:
        items = {}
        for name, value in self._items.items():
            if value is None:
                continue
            if not isinstance(value, CheckpointArgs):
                raise TypeError(f"Composite item {name!r} must be checkpoint args (e.g. args.StandardSave(...)), "
                                f"got {type(value).__name__}")
            items[name] = value._native()
        return {"kind": "Composite", "items": items}

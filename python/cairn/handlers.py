"""The handlers: the type-specific half of a save or restore, as in Orbax.

A handler here is a description that the C++ checkpointer builds its own handler from; construct one and hand it to
a Checkpointer, an AsyncCheckpointer, a CompositeCheckpointHandler or a CheckpointManager.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional

from . import args as _args

__all__ = [
    "CheckpointHandler", "StandardCheckpointHandler", "PyTreeCheckpointHandler", "ArrayCheckpointHandler",
    "JsonCheckpointHandler", "CompositeCheckpointHandler",
]


def _ignore(handler: str, kwargs: dict) -> None:
    if kwargs:
        warnings.warn(f"{handler}: cairn ignores {sorted(kwargs)}", stacklevel=3)


class CheckpointHandler:
    """Base class. `_save_args`/`_restore_args` turn the keyword form (`save(path, item, save_args=...)`) into args."""

    _kind = ""

    def _native(self) -> dict:
        return {"kind": self._kind}

    def _save_args(self, item: Any, **kwargs: Any) -> _args.CheckpointArgs:
        raise TypeError(f"{type(self).__name__} takes args=... (no keyword form)")

    def _restore_args(self, item: Any = None, **kwargs: Any) -> Optional[_args.CheckpointArgs]:
        if item is None and not kwargs:
            return None
        raise TypeError(f"{type(self).__name__} takes args=... (no keyword form)")

    def _wrap(self, restored: Any) -> Any:
        return restored

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _ArrayTreeHandler(CheckpointHandler):
    def __init__(self, *, save_concurrent_gb: int = 96, restore_concurrent_gb: int = 96,
                 multiprocessing_options: Any = None, use_ocdbt: bool = True, use_zarr3: bool = False,
                 use_compression: bool = True, verify_checksums: bool = True, compressor: str = "zstd",
                 **kwargs: Any):
        # compressor (cairn's own): "zstd" (adaptive per chunk), "blosc-lz4" or "blosc-zstd" (byte shuffle).
        _ignore(type(self).__name__, kwargs)
        self._options = {
            "save_concurrent_gb": save_concurrent_gb, "restore_concurrent_gb": restore_concurrent_gb,
            "use_ocdbt": use_ocdbt, "use_zarr3": use_zarr3, "use_compression": use_compression,
            "verify_checksums": verify_checksums, "compressor": compressor,
        }

    def _native(self) -> dict:
        return {"kind": self._kind, **self._options}


class StandardCheckpointHandler(_ArrayTreeHandler):
    """A tree of arrays and scalars. Args: args.StandardSave / args.StandardRestore."""

    _kind = "standard"

    def _save_args(self, item: Any, save_args: Any = None, custom_metadata: Any = None) -> _args.CheckpointArgs:
        return _args.StandardSave(item, save_args=save_args, custom_metadata=custom_metadata)

    def _restore_args(self, item: Any = None, strict: bool = True) -> Optional[_args.CheckpointArgs]:
        return _args.StandardRestore(item, strict=strict)


class PyTreeCheckpointHandler(_ArrayTreeHandler):
    """A tree of arrays, scalars and strings. Args: args.PyTreeSave / args.PyTreeRestore."""

    _kind = "pytree"

    def __init__(self, aggregate_filename: Optional[str] = None, **kwargs: Any):
        if aggregate_filename is not None:
            warnings.warn("PyTreeCheckpointHandler: cairn ignores aggregate_filename", stacklevel=2)
        super().__init__(**kwargs)

    def _save_args(self, item: Any, save_args: Any = None, ocdbt_target_data_file_size: Optional[int] = None,
                   custom_metadata: Any = None) -> _args.CheckpointArgs:
        return _args.PyTreeSave(item, save_args=save_args, ocdbt_target_data_file_size=ocdbt_target_data_file_size,
                                custom_metadata=custom_metadata)

    def _restore_args(self, item: Any = None, restore_args: Any = None, partial_restore: bool = False,
                      strict: bool = True) -> Optional[_args.CheckpointArgs]:
        return _args.PyTreeRestore(item, restore_args=restore_args, partial_restore=partial_restore, strict=strict)


class ArrayCheckpointHandler(CheckpointHandler):
    """One array, saved as {checkpoint_name: array} without OCDBT. Args: args.ArraySave / args.ArrayRestore."""

    _kind = "array"

    def __init__(self, checkpoint_name: str = "checkpoint"):
        self._checkpoint_name = checkpoint_name

    def _native(self) -> dict:
        return {"kind": "array", "checkpoint_name": self._checkpoint_name}

    def _save_args(self, item: Any, save_args: Any = None) -> _args.CheckpointArgs:
        return _args.ArraySave(item, save_args=save_args)

    def _restore_args(self, item: Any = None, restore_args: Any = None, strict: bool = True):
        return _args.ArrayRestore(item, restore_args=restore_args, strict=strict)


class JsonCheckpointHandler(CheckpointHandler):
    """One JSON document in `<directory>/<filename>`. Args: args.JsonSave / args.JsonRestore."""

    _kind = "json"

    def __init__(self, filename: Optional[str] = None, multiprocessing_options: Any = None):
        self._filename = filename or "metadata"

    def _native(self) -> dict:
        return {"kind": "json", "filename": self._filename}

    def _save_args(self, item: Any) -> _args.CheckpointArgs:
        return _args.JsonSave(item)

    def _restore_args(self, item: Any = None) -> Optional[_args.CheckpointArgs]:
        return _args.JsonRestore(item)


class CompositeCheckpointHandler(CheckpointHandler):
    """Several named items, each in `<directory>/<item>/` with its own handler. Args: args.Composite.

    CompositeCheckpointHandler('state', 'meta') takes the handlers the args call for;
    CompositeCheckpointHandler(state=StandardCheckpointHandler(), meta=JsonCheckpointHandler()) names them.
    Restores return an args.Composite of the items.
    """

    _kind = "composite"

    def __init__(self, *item_names: str, composite_options: Any = None, handler_registry: Any = None,
                 **items_and_handlers: CheckpointHandler):
        if handler_registry is not None:
            raise NotImplementedError("cairn's CompositeCheckpointHandler takes no handler_registry")
        for name, handler in items_and_handlers.items():
            if not isinstance(handler, CheckpointHandler):
                raise TypeError(f"item {name!r}: expected a CheckpointHandler, got {type(handler).__name__}")
        self._item_names = list(item_names) + [n for n in items_and_handlers if n not in item_names]
        self._handlers = dict(items_and_handlers)

    def _native(self) -> dict:
        return {"kind": "composite", "item_names": self._item_names,
                "handlers": {name: h._native() for name, h in self._handlers.items()}}

    def _item_save_args(self, name: str, value: Any) -> _args.CheckpointArgs:
        if isinstance(value, _args.CheckpointArgs):
            return value
        handler = self._handlers.get(name)
        return handler._save_args(value) if handler is not None else _args.PyTreeSave(value)

    def _item_restore_args(self, name: str, value: Any) -> Optional[_args.CheckpointArgs]:
        if value is None or isinstance(value, _args.CheckpointArgs):
            return value
        handler = self._handlers.get(name)
        return handler._restore_args(value) if handler is not None else _args.PyTreeRestore(value)

    def _save_args(self, item: Any = None, **items: Any) -> _args.CheckpointArgs:
        if item is not None:
            if not isinstance(item, dict):
                raise TypeError("CompositeCheckpointHandler: save items by name (save(path, state=..., meta=...))")
            items = {**item, **items}
        return _args.Composite(**{n: self._item_save_args(n, v) for n, v in items.items()})

    def _restore_args(self, item: Any = None, **items: Any) -> Optional[_args.CheckpointArgs]:
        if item is not None:
            if not isinstance(item, dict):
                raise TypeError("CompositeCheckpointHandler: restore items by name (restore(path, state=...))")
            items = {**item, **items}
        if not items:
            return None
        return _args.Composite(**{n: self._item_restore_args(n, v) for n, v in items.items()})

    def _wrap(self, restored: Any) -> Any:
        return _args.Composite(**restored) if isinstance(restored, dict) else restored

    def __repr__(self) -> str:
        return f"CompositeCheckpointHandler({self._item_names!r})"

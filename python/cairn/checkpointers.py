"""Checkpointer, AsyncCheckpointer, StandardCheckpointer and PyTreeCheckpointer, with Orbax's signatures.

Both forms of Orbax's calls work:

    ckptr.save(path, args=cairn.args.StandardSave(state))      # args
    ckptr.save(path, state)                                    # the handler's item, positional or by keyword
    ckptr.save(path, state=state)
    composite_ckptr.save(path, state=cairn.args.StandardSave(state), meta=cairn.args.JsonSave({...}))
"""

from __future__ import annotations

import os
from typing import Any, Optional

from . import _cairn, _jax_sharding, _lifecycle, multihost
from . import args as _args
from .handlers import CheckpointHandler, CompositeCheckpointHandler, PyTreeCheckpointHandler, StandardCheckpointHandler
from .metadata import StepMetadata
from .options import AsyncOptions

__all__ = ["AbstractCheckpointer", "Checkpointer", "AsyncCheckpointer", "StandardCheckpointer", "PyTreeCheckpointer"]

# Keyword names that mean "the item" in the keyword form of a single-item handler.
_ITEM_KEYWORDS = ("item", "state", "target")


def _construct_args(handler: CheckpointHandler, positional: tuple, kwargs: dict, save: bool):
    """The args of a save or restore from Orbax's call forms (args=, positional args, or the keyword form)."""
    explicit = kwargs.pop("args", None)
    if explicit is None and len(positional) == 1 and isinstance(positional[0], _args.CheckpointArgs):
        explicit, positional = positional[0], ()
    if explicit is not None:
        if positional or kwargs:
            raise TypeError("pass either args=... or the item, not both")
        if not isinstance(explicit, _args.CheckpointArgs):
            raise TypeError(f"args must be checkpoint args (cairn.args.*), got {type(explicit).__name__}")
        return explicit
    if len(positional) > 1:
        raise TypeError("at most one positional item")
    build = handler._save_args if save else handler._restore_args
    if isinstance(handler, CompositeCheckpointHandler):
        return build(positional[0] if positional else None, **kwargs)
    item = positional[0] if positional else None
    for name in _ITEM_KEYWORDS:
        if name in kwargs:
            if item is not None:
                raise TypeError(f"the item is given twice (positional and {name}=)")
            item = kwargs.pop(name)
    if save and item is None:
        raise TypeError("save() needs an item: save(path, args=...), save(path, item) or save(path, state=item)")
    return build(item, **kwargs)


class AbstractCheckpointer:
    """The interface: save, restore, metadata, close; a context manager that closes."""

    def save(self, directory: Any, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def restore(self, directory: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def metadata(self, directory: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Checkpointer(AbstractCheckpointer):
    """Saves synchronously and atomically: when save() returns the checkpoint is complete and durable, or absent.

    save(directory, args, *, force=False, custom_metadata=None): FileExistsError (also a ValueError, as Orbax's)
    when `directory` exists, unless force. restore(directory, args=None): FileNotFoundError for a missing one.
    """

    _is_async = False

    def __init__(self, handler: CheckpointHandler, *, multiprocessing_options: Any = None, file_options: Any = None,
                 atomicity_options: Any = None, checkpoint_metadata_store: Any = None,
                 temporary_path_class: Any = None, async_options: Optional[AsyncOptions] = None):
        if not isinstance(handler, CheckpointHandler):
            raise TypeError(f"expected a cairn CheckpointHandler, got {type(handler).__name__}")
        if checkpoint_metadata_store is not None or temporary_path_class is not None:
            raise NotImplementedError("cairn takes no checkpoint_metadata_store or temporary_path_class "
                                      "(use atomicity_options)")
        self._handler = handler
        multiprocessing_options = multihost.with_default_group(multiprocessing_options)
        self._impl = _cairn._Checkpointer(handler._native(), self._is_async, async_options, multiprocessing_options,
                                          file_options, atomicity_options)
        _lifecycle.track(self)

    @property
    def handler(self) -> CheckpointHandler:
        return self._handler

    def save(self, directory: Any, *args: Any, force: bool = False, custom_metadata: Optional[dict] = None,
             delta_base: Any = None, delta_max_changed_fraction: float = 1.0, record_delta_hashes: bool = False,
             **kwargs: Any) -> None:
        """cairn additions: `delta_base`, a committed step saved earlier, makes this a delta save (chunks whose bytes
        did not change are shared with it, not written; docs/format.md "Delta steps"); `record_delta_hashes` lets a
        full save be the base of later deltas."""
        ckpt_args = _construct_args(self._handler, args, kwargs, save=True)
        self._impl.save(os.fspath(directory), ckpt_args._native(), force, custom_metadata,
                        None if delta_base is None else os.fspath(delta_base), delta_max_changed_fraction,
                        record_delta_hashes)

    def restore(self, directory: Any, *args: Any, **kwargs: Any) -> Any:
        ckpt_args = _construct_args(self._handler, args, kwargs, save=False)
        if ckpt_args is None:
            return self._handler._wrap(self._impl.restore(os.fspath(directory), None))
        restored = self._impl.restore(os.fspath(directory), ckpt_args._native())
        saved = _jax_sharding.SavedShardings(os.fspath(directory)) if _jax_sharding.jax_loaded() else None
        return self._handler._wrap(ckpt_args._match(restored, saved))

    def metadata(self, directory: Any) -> StepMetadata:
        """`_CHECKPOINT_METADATA` and the item's metadata (ArraySpecs for arrays); reads no array bytes."""
        return StepMetadata(**self._impl.metadata(os.fspath(directory)))

    def close(self) -> None:
        self._impl.close()


class AsyncCheckpointer(Checkpointer):
    """Saves in the background: save() returns once the arrays are copied (the caller may change them then).

    A second save() waits for the first; restore() and metadata() wait for a pending save; wait_until_finished()
    rethrows a background failure; close() and exiting a `with` block wait.
    """

    _is_async = True

    def __init__(self, handler: CheckpointHandler, timeout_secs: Optional[int] = None, *,
                 async_options: Optional[AsyncOptions] = None, **kwargs: Any):
        async_options = async_options or AsyncOptions()
        if timeout_secs is not None:
            async_options = AsyncOptions(timeout_secs=timeout_secs,
                                         barrier_sync_fn=async_options.barrier_sync_fn,
                                         post_finalization_callback=async_options.post_finalization_callback,
                                         create_directories_asynchronously=
                                         async_options.create_directories_asynchronously)
        super().__init__(handler, async_options=async_options, **kwargs)

    def wait_until_finished(self) -> None:
        """Blocks until the save in flight has committed or failed; raises its failure once."""
        self._impl.wait_until_finished()

    def check_for_errors(self) -> None:
        """Raises the failure of a finished background save, without waiting."""
        self._impl.check_for_errors()

    def is_saving_in_progress(self) -> bool:
        return self._impl.is_saving_in_progress()


class StandardCheckpointer(AsyncCheckpointer):
    """AsyncCheckpointer(StandardCheckpointHandler()), taking the tree directly, as Orbax's.

    save(directory, state, *, save_args=None, force=False, custom_metadata=None)
    restore(directory, target=None, *, strict=True)
    """

    def __init__(self, *, async_options: Optional[AsyncOptions] = None, multiprocessing_options: Any = None,
                 file_options: Any = None, atomicity_options: Any = None, checkpoint_metadata_store: Any = None,
                 temporary_path_class: Any = None, **handler_kwargs: Any):
        super().__init__(StandardCheckpointHandler(**handler_kwargs), async_options=async_options,
                         multiprocessing_options=multiprocessing_options, file_options=file_options,
                         atomicity_options=atomicity_options, checkpoint_metadata_store=checkpoint_metadata_store,
                         temporary_path_class=temporary_path_class)

    def save(self, directory: Any, state: Any = None, *, save_args: Any = None, force: bool = False,
             custom_metadata: Optional[dict] = None, args: Optional[_args.CheckpointArgs] = None,
             **delta_options: Any) -> None:
        if args is None:
            if state is None:
                raise TypeError("StandardCheckpointer.save(directory, state) needs a state")
            args = state if isinstance(state, _args.CheckpointArgs) else _args.StandardSave(state, save_args=save_args)
        elif state is not None:
            raise TypeError("pass either state or args=, not both")
        super().save(directory, args=args, force=force, custom_metadata=custom_metadata, **delta_options)

    def restore(self, directory: Any, target: Any = None, *, strict: bool = True,
                args: Optional[_args.CheckpointArgs] = None) -> Any:
        if args is None:
            args = target if isinstance(target, _args.CheckpointArgs) else _args.StandardRestore(target, strict=strict)
        return super().restore(directory, args=args)


class PyTreeCheckpointer(Checkpointer):
    """Checkpointer(PyTreeCheckpointHandler(...)), synchronous, as Orbax's shorthand of that name.

    save(directory, item) and restore(directory, item=None) take the tree directly, or args=.
    """

    def __init__(self, primary_host: Optional[int] = 0, use_ocdbt: bool = True, use_zarr3: bool = False,
                 use_compression: bool = True, **kwargs: Any):
        multiprocessing_options = kwargs.pop("multiprocessing_options", None)
        if multiprocessing_options is None and primary_host not in (None, 0):
            from .options import MultiprocessingOptions
            multiprocessing_options = MultiprocessingOptions(primary_host=primary_host)
        super().__init__(PyTreeCheckpointHandler(use_ocdbt=use_ocdbt, use_zarr3=use_zarr3,
                                                 use_compression=use_compression),
                         multiprocessing_options=multiprocessing_options, **kwargs)

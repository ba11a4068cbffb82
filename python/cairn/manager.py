"""CheckpointManager and CheckpointManagerOptions, with Orbax's names and defaults."""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Callable, Optional, Sequence, Union

from . import _cairn, _jax_sharding, _lifecycle, multihost
from ._tree import on_saved_shardings
from . import args as _args
from .checkpointers import Checkpointer
from .handlers import CheckpointHandler
from .metadata import RootMetadata, StepMetadata
from .options import AsyncOptions, AtomicityOptions, FileOptions, MultiprocessingOptions

__all__ = ["CheckpointManager", "CheckpointManagerOptions"]


@dataclasses.dataclass
class CheckpointManagerOptions:
    """Orbax's options. save_interval_steps/save_on_steps/should_save_fn and max_to_keep/keep_time_interval/
    keep_period/best_fn build the default policies as Orbax builds them; save_decision_policy and
    preservation_policy replace them."""

    save_interval_steps: int = 1
    max_to_keep: Optional[int] = None
    keep_time_interval: Any = None  # a datetime.timedelta or seconds
    keep_period: Optional[int] = None
    should_keep_fn: Optional[Callable[[int], bool]] = None
    best_fn: Optional[Callable[[Any], float]] = None
    best_mode: str = "max"
    keep_checkpoints_without_metrics: bool = True
    step_prefix: Optional[str] = None
    step_format_fixed_length: Optional[int] = None
    step_name_format: Any = None
    create: bool = True
    cleanup_tmp_directories: bool = False
    save_on_steps: Optional[Sequence[int]] = None
    single_host_load_and_broadcast: bool = False
    todelete_subdir: Optional[str] = None
    todelete_full_path: Optional[str] = None
    enable_hns: bool = False
    enable_background_delete: bool = False
    read_only: bool = False
    enable_async_checkpointing: bool = True
    async_options: Optional[AsyncOptions] = None
    multiprocessing_options: Optional[MultiprocessingOptions] = None
    should_save_fn: Optional[Callable[[int, Optional[int]], bool]] = None
    file_options: Optional[FileOptions] = None
    save_root_metadata: bool = True
    temporary_path_class: Any = None
    save_decision_policy: Any = None
    preservation_policy: Any = None
    prevent_write_metrics: bool = False
    enable_should_save_is_saving_in_progress_check: bool = True
    enable_per_process_directory_creation: bool = False
    lightweight_initialize: bool = False
    # cairn additions
    atomicity_options: Optional[AtomicityOptions] = None
    reached_preemption_fn: Optional[Callable[[int], bool]] = None
    # Save each step as a delta against the latest kept step (docs/manager.md); a step in which more than
    # delta_max_changed_fraction of the chunk bytes changed is written in full.
    save_deltas: bool = False
    delta_max_changed_fraction: float = 0.5

    def _check_supported(self) -> None:
        unsupported = {"should_keep_fn": None, "step_name_format": None, "todelete_full_path": None,
                       "single_host_load_and_broadcast": False, "enable_hns": False, "temporary_path_class": None,
                       "enable_per_process_directory_creation": False}
        for name, default in unsupported.items():
            if getattr(self, name) != default:
                raise NotImplementedError(f"CheckpointManagerOptions.{name} is not supported by cairn")


class CheckpointManager:
    """Orbax's CheckpointManager: steps in `<directory>/<step>/`, saved when the save-decision policy says so and
    kept as the preservation policy says.

    Items: one unnamed item (`save(step, args=args.StandardSave(state))`, in `<step>/default/`), or named items
    (`item_names=('state', 'meta')` or `item_handlers={...}`, saved with args.Composite and restored as one).
    Saves are asynchronous by default; wait_until_finished() waits and raises a background failure. Use as a
    context manager (or call close()) so the last save is waited for.
    """

    def __init__(self, directory: Any, checkpointers: Any = None, options: Optional[CheckpointManagerOptions] = None,
                 metadata: Optional[dict] = None, *, item_names: Optional[Sequence[str]] = None,
                 item_handlers: Union[CheckpointHandler, dict, None] = None, logger: Any = None,
                 handler_registry: Any = None):
        options = options or CheckpointManagerOptions()
        options._check_supported()
        if handler_registry is not None:
            raise NotImplementedError("cairn's CheckpointManager takes no handler_registry (use item_handlers)")
        if checkpointers is not None:  # Orbax's legacy form: checkpointers stand for their handlers
            if item_handlers is not None:
                raise ValueError("pass checkpointers or item_handlers, not both")
            if isinstance(checkpointers, Checkpointer):
                item_handlers = checkpointers.handler
            else:
                item_handlers = {name: c.handler for name, c in checkpointers.items()}
        self._handlers: dict = {}
        native_handlers = None
        if isinstance(item_handlers, CheckpointHandler):
            self._single_handler = item_handlers
            native_handlers = item_handlers._native()
            self._named: Optional[bool] = False
        elif item_handlers is not None:
            self._single_handler = None
            self._handlers = dict(item_handlers)
            native_handlers = {name: h._native() for name, h in self._handlers.items()}
            self._named = True
        else:
            self._single_handler = None
            self._named = True if item_names else None  # None: decided by the first save, or by the steps on disk
        self._item_names = list(item_names or []) + [n for n in self._handlers if n not in (item_names or [])]
        options = dataclasses.replace(options, multiprocessing_options=multihost.with_default_group(
            options.multiprocessing_options))
        self._options = options
        self._impl = _cairn._CheckpointManager(os.fspath(directory), options, list(item_names) if item_names else None,
                                               native_handlers, metadata)
        _lifecycle.track(self)

    # -- properties ---------------------------------------------------------------------------------------------
    @property
    def directory(self):
        # A URL (s3://, gs://) stays a string: pathlib would fold its "//" into "/".
        directory = self._impl.directory
        return directory if directory.startswith(("s3://", "gs://")) else pathlib.Path(directory)

    def all_steps(self, read: bool = False) -> list:
        if read:
            self._impl.reload()
        return list(self._impl.all_steps())

    def latest_step(self) -> Optional[int]:
        return self._impl.latest_step()

    def best_step(self) -> Optional[int]:
        return self._impl.best_step()

    def should_save(self, step: int) -> bool:
        return self._impl.should_save(step)

    def reached_preemption(self, step: int) -> bool:
        return self._impl.reached_preemption(step)

    def reload(self) -> None:
        self._impl.reload()

    def delete(self, step: int) -> None:
        self._impl.delete(step)

    # -- save and restore ---------------------------------------------------------------------------------------
    def _save_args(self, items: Any) -> _args.CheckpointArgs:
        if isinstance(items, _args.CheckpointArgs):
            return items
        if self._named:
            if not isinstance(items, dict):
                raise TypeError("this manager has named items: save(step, args=args.Composite(name=...))")
            return _args.Composite(**{name: self._item_args(name, v, save=True) for name, v in items.items()})
        if self._single_handler is not None:
            return self._single_handler._save_args(items)
        return _args.PyTreeSave(items)

    def _item_args(self, name: str, value: Any, save: bool) -> Optional[_args.CheckpointArgs]:
        if value is None or isinstance(value, _args.CheckpointArgs):
            return value
        handler = self._handlers.get(name)
        if handler is not None:
            return handler._save_args(value) if save else handler._restore_args(value)
        return _args.PyTreeSave(value) if save else _args.PyTreeRestore(value)

    def save(self, step: int, items: Any = None, save_kwargs: Optional[dict] = None, metrics: Optional[dict] = None,
             force: bool = False, args: Optional[_args.CheckpointArgs] = None,
             custom_metadata: Optional[dict] = None) -> bool:
        """Saves `step` if the policy (or force) says so; returns whether it saved. FileExistsError if it exists."""
        if save_kwargs:
            raise NotImplementedError("save_kwargs: pass args=... instead")
        if args is None and items is None:
            raise TypeError("save(step, args=...) needs args")
        if args is not None and items is not None:
            raise TypeError("pass args or items, not both")
        ckpt_args = args if args is not None else self._save_args(items)
        saved = self._impl.save(int(step), ckpt_args._native(), metrics, force, custom_metadata)
        if saved and self._named is None:
            self._named = isinstance(ckpt_args, _args.Composite)
        return saved

    def restore(self, step: Optional[int] = None, items: Any = None, restore_kwargs: Optional[dict] = None,
                directory: Any = None, args: Optional[_args.CheckpointArgs] = None) -> Any:
        """Restores `step` (default: the latest). The unnamed item itself, or an args.Composite of named items."""
        if restore_kwargs:
            raise NotImplementedError("restore_kwargs: pass args=... instead")
        if directory is not None:
            raise NotImplementedError("restore(directory=...): open a CheckpointManager on that directory")
        if args is None and items is not None:
            if isinstance(items, _args.CheckpointArgs):
                args = items
            elif self._named:
                args = _args.Composite(**{n: self._item_args(n, v, save=False) for n, v in items.items()})
            elif self._single_handler is not None:
                args = self._single_handler._restore_args(items)
            else:
                args = _args.PyTreeRestore(items)
        restored = self._impl.restore(None if step is None else int(step), None if args is None else args._native())
        if args is not None or _jax_sharding.jax_loaded():
            # Arrays restored without a target go back on their saved shardings (Orbax's behaviour under JAX).
            restored_step = step if step is not None else self.latest_step()
            saved = None
            if _jax_sharding.jax_loaded() and restored_step is not None:
                saved = _jax_sharding.SavedShardings(self._impl.step_directory(int(restored_step)))
            if args is not None:
                restored = args._match(restored, saved)
            elif saved is not None:
                restored = self._place_untargeted(step, restored, saved)
        if self._is_composite_result(step, args):
            return _args.Composite(**restored)
        return restored

    def _place_untargeted(self, step: Optional[int], restored: Any, saved: Any) -> Any:
        """A restore without args: each item's arrays on their saved shardings (the unnamed item is "default")."""
        if self._is_composite_result(step, None) and isinstance(restored, dict):
            return {name: on_saved_shardings(value, saved.item(name)) for name, value in restored.items()}
        return on_saved_shardings(restored, saved.item("default"))

    def _is_composite_result(self, step: Optional[int], args: Any) -> bool:
        if args is not None:
            return isinstance(args, _args.Composite)
        if self._named is not None:
            return self._named
        step = step if step is not None else self.latest_step()
        handlers = self._impl.step_metadata(int(step))["item_handlers"] if step is not None else None
        # The unnamed item is stored as the item "default" (next to "metrics").
        return isinstance(handlers, dict) and "default" not in handlers

    # -- metadata -----------------------------------------------------------------------------------------------
    def metrics(self, step: int) -> Optional[dict]:
        return self._impl.metrics(int(step))

    def item_metadata(self, step: int) -> Any:
        return self._impl.item_metadata(int(step))

    def metadata(self, step: Optional[int] = None) -> Union[StepMetadata, RootMetadata]:
        """With a step: its StepMetadata. Without: the RootMetadata (the constructor's `metadata` is its
        custom_metadata)."""
        if step is None:
            return RootMetadata(**self._impl.root_metadata())
        return StepMetadata(**self._impl.step_metadata(int(step)))

    # -- waiting ------------------------------------------------------------------------------------------------
    def wait_until_finished(self) -> None:
        self._impl.wait_until_finished()

    def check_for_errors(self) -> None:
        self._impl.check_for_errors()

    def is_saving_in_progress(self) -> bool:
        return self._impl.is_saving_in_progress()

    def close(self) -> None:
        self._impl.close()

    def __enter__(self) -> "CheckpointManager":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

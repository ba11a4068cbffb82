"""Orbax's option classes, with Orbax's names and defaults (`ocp.options`)."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Callable, Optional, Sequence


@dataclasses.dataclass
class AsyncOptions:
    """How an AsyncCheckpointer runs its background saves.

    timeout_secs: a background save still running after this long ends with a TimeoutError and commits nothing.
    barrier_sync_fn(key, timeout_ms) and post_finalization_callback() are called from the background thread.
    """

    timeout_secs: int = 600
    barrier_sync_fn: Optional[Callable[[str, int], None]] = None
    post_finalization_callback: Optional[Callable[[], None]] = None
    create_directories_asynchronously: bool = True


@dataclasses.dataclass
class MultiprocessingOptions:
    """Which processes take part and which one commits (one process: the defaults). `process_group` (cairn's): the
    processes saving together; None takes the JAX or torch.distributed job's (cairn.multihost)."""

    primary_host: int = 0
    active_processes: Optional[Sequence[int]] = None
    barrier_sync_key_prefix: Optional[str] = None
    barrier_timeout_secs: int = 300
    process_group: Any = None


@dataclasses.dataclass
class FileOptions:
    """path_permission_mode: permission bits for the directories a save creates (e.g. 0o750)."""

    path_permission_mode: Optional[int] = None


class AtomicityMode(enum.Enum):
    AUTO = "auto"
    ATOMIC_RENAME = "atomic_rename"
    COMMIT_FILE = "commit_file"


@dataclasses.dataclass
class AtomicityOptions:
    """ATOMIC_RENAME (the default on local disks) or COMMIT_FILE (write in place, commit with commit_success.txt)."""

    mode: AtomicityMode = AtomicityMode.AUTO
    allow_legacy_atomic_rename: bool = False

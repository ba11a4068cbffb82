"""Many processes from Python, on the runtime the program already uses (Orbax's `ocp.multihost`, in part).

A JAX job that called `jax.distributed.initialize(...)`, or a PyTorch job that called
`torch.distributed.init_process_group(...)`, needs nothing more: every checkpointer and manager of a process takes
the job's processes as its process group (`default_process_group()`), coordinating through that runtime's
key-value store (JAX's coordination service, torch.distributed's store). No MPI. Every process must create its
checkpointers and managers in the same order and make the same calls, as with Orbax.

`MultiprocessingOptions(process_group=...)` overrides that with any group, e.g. `jax_process_group()`.
"""

from __future__ import annotations

import datetime
import itertools
from typing import Any, Optional

from . import _cairn

__all__ = ["default_process_group", "jax_process_group", "torch_process_group", "process_index", "process_count",
           "is_primary_host", "sync_global_processes"]

# Each group gets its own key prefix, the same on every process since all create groups in the same order.
_group_numbers = itertools.count()


def jax_process_group() -> Any:
    """The processes of this JAX job, over its coordination service (jax.distributed must be initialized)."""
    import jax
    from jax._src import distributed

    client = distributed.global_state.client
    if client is None:
        raise RuntimeError("jax.distributed.initialize() has not been called")
    return _cairn.KeyValueProcessGroup(
        jax.process_index(), jax.process_count(),
        set=lambda key, value: client.key_value_set_bytes(key, value),
        get=lambda key, timeout_ms: client.blocking_key_value_get_bytes(key, timeout_ms),
        prefix=f"cairn/{next(_group_numbers)}")


def torch_process_group(store: Any = None) -> Any:
    """The processes of this torch.distributed job (its default store unless `store` is given)."""
    import torch.distributed as dist

    if store is None:
        store = dist.distributed_c10d._get_default_store()

    def get(key: str, timeout_ms: int) -> bytes:
        store.wait([key], datetime.timedelta(milliseconds=timeout_ms))
        return bytes(store.get(key))

    return _cairn.KeyValueProcessGroup(dist.get_rank(), dist.get_world_size(), set=store.set, get=get,
                                       prefix=f"cairn/{next(_group_numbers)}")


def _jax_processes() -> int:
    import sys
    if "jax" not in sys.modules:
        return 1
    from jax._src import distributed
    if distributed.global_state.client is None:
        return 1
    import jax
    return jax.process_count()


def _torch_processes() -> int:
    import sys
    if "torch" not in sys.modules:
        return 1
    import torch.distributed as dist
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def default_process_group() -> Optional[Any]:
    """The job's processes when JAX's or torch's distributed runtime runs more than one; None for one process."""
    if _jax_processes() > 1:
        return jax_process_group()
    if _torch_processes() > 1:
        return torch_process_group()
    return None


_default_group: Optional[Any] = None


def _shared_default_group() -> Optional[Any]:
    global _default_group
    if _default_group is None:
        _default_group = default_process_group()
    return _default_group


def with_default_group(multiprocessing_options: Any) -> Any:
    """The options with `process_group` filled in for a multi-process job (a group of its own per checkpointer)."""
    from .options import MultiprocessingOptions
    options = multiprocessing_options or MultiprocessingOptions()
    if getattr(options, "process_group", None) is not None:
        return options
    group = default_process_group()
    if group is None:
        return multiprocessing_options
    import dataclasses
    if dataclasses.is_dataclass(options):
        return dataclasses.replace(options, process_group=group)
    return MultiprocessingOptions(primary_host=getattr(options, "primary_host", 0),
                                  active_processes=getattr(options, "active_processes", None),
                                  barrier_sync_key_prefix=getattr(options, "barrier_sync_key_prefix", None),
                                  process_group=group)


def process_index() -> int:
    group = _shared_default_group()
    return group.index if group is not None else 0


def process_count() -> int:
    group = _shared_default_group()
    return group.count if group is not None else 1


def is_primary_host(primary_host: Optional[int] = 0) -> bool:
    return primary_host is None or process_index() == primary_host


def sync_global_processes(name: str, timeout: float = 300.0, processes: Any = None) -> None:
    """A barrier across the job's processes (Orbax's multihost.sync_global_processes)."""
    if processes is not None:
        raise NotImplementedError("cairn.multihost.sync_global_processes: `processes` is not supported")
    group = _shared_default_group()
    if group is not None:
        group.barrier(name, timeout)

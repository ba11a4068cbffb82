"""Per-parameter options (Orbax's SaveArgs and RestoreArgs) and ArraySpec (Orbax's jax.ShapeDtypeStruct)."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from . import _cairn

ArraySpec = _cairn.ArraySpec

# Orbax's PLACEHOLDER: a leaf of a restore target that a partial restore skips.
PLACEHOLDER = ...


@dataclasses.dataclass
class SaveArgs:
    """How to save one parameter: cast to `dtype` before writing; chunks of at most `chunk_byte_size` bytes.

    cairn addition: `frozen` declares the parameter unchanged since the base of a delta save (`delta_base`), so its
    chunks are taken from the base without being encoded or hashed."""

    dtype: Any = None
    chunk_byte_size: Optional[int] = None
    aggregate: bool = False  # Orbax: deprecated and ignored
    shard_axes: tuple = ()
    frozen: bool = False

    def _native(self) -> dict:
        return {"dtype": self.dtype, "chunk_byte_size": self.chunk_byte_size, "frozen": self.frozen}


@dataclasses.dataclass
class RestoreArgs:
    """How to restore one parameter: cast to `dtype` after reading.

    cairn addition: with `fill_target=True`, a target leaf that is a writable, C-ordered numpy array of the stored
    shape is filled in place (cast to its own dtype), and the restore returns that same numpy object: no new
    allocation. A read-only target, or one of another shape, raises ValueError before anything is read.

    cairn addition: with `lazy=True`, an array stored uncompressed as one chunk in a local file comes back as a
    read-only numpy array (`writeable=False`) over a mapping of that file, which it keeps alive; pages are read
    when touched. Other arrays are read as usual. `lazy_check` says when the checksums cairn recorded are checked:
    "on_access" (each 64 KiB block when first touched; a bad block aborts the process with a message naming it,
    since a page fault cannot raise) or "up_front" (all blocks before restore returns: CorruptionError)."""

    restore_type: Any = None
    dtype: Any = None
    fill_target: bool = False
    lazy: bool = False
    lazy_check: str = "on_access"

    def _native(self) -> dict:
        return {"dtype": self.dtype, "fill_target": self.fill_target, "lazy": self.lazy,
                "lazy_check": self.lazy_check}


@dataclasses.dataclass
class ArrayRestoreArgs(RestoreArgs):
    """RestoreArgs for an array: with `sharding` (a jax.sharding.Sharding), the array comes back as a jax.Array on
    it. `global_shape` and `strict` are Orbax's; cairn takes the shape from a target leaf when there is one."""

    sharding: Any = None
    global_shape: Optional[tuple] = None
    mesh: Any = None
    mesh_axes: Any = None
    strict: bool = True

    def __post_init__(self) -> None:
        if self.sharding is None and self.mesh is not None and self.mesh_axes is not None:
            import jax
            self.sharding = jax.sharding.NamedSharding(self.mesh, self.mesh_axes)

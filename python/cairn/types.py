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
    """How to save one parameter: cast to `dtype` before writing; chunks of at most `chunk_byte_size` bytes."""

    dtype: Any = None
    chunk_byte_size: Optional[int] = None
    aggregate: bool = False  # Orbax: deprecated and ignored
    shard_axes: tuple = ()

    def _native(self) -> dict:
        return {"dtype": self.dtype, "chunk_byte_size": self.chunk_byte_size}


@dataclasses.dataclass
class RestoreArgs:
    """How to restore one parameter: cast to `dtype` after reading."""

    restore_type: Any = None
    dtype: Any = None

    def _native(self) -> dict:
        return {"dtype": self.dtype}


ArrayRestoreArgs = RestoreArgs

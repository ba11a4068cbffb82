"""cairn: Orbax's checkpointing, native in C++, with Orbax's Python API.

    import cairn as ocp

    ckptr = ocp.StandardCheckpointer()
    ckptr.save('/ckpt/1', state)                 # returns once the arrays are copied; the write runs in the background
    ckptr.wait_until_finished()
    state = ckptr.restore('/ckpt/1')

Trees are dicts, lists, tuples and None with numpy arrays (or anything with __array__ or __dlpack__, such as torch
tensors), Python scalars and strings as leaves. Checkpoints are Orbax's format: JAX's Orbax restores them, and cairn
restores Orbax's. bfloat16 and float8 arrays restore as numpy arrays of the structured dtypes `cairn.bfloat16`,
`cairn.float8_e4m3fn`, `cairn.float8_e5m2` (the bytes, under the type's name), or cast to any numpy dtype a target
`ArraySpec(shape, dtype)` asks for; `cairn.cast()` converts between them.
"""

from . import _cairn
from . import args
from . import checkpoint_managers
from . import multihost
from . import options
from . import transform_utils
from . import utils
from . import utils as checkpoint_utils
from . import v1
from ._cairn import (AbortedError, AlreadyExistsError, CorruptionError, Error, InvalidArgumentError, IoError,
                     NotFoundError, TimeoutError, UnimplementedError, as_numpy_dtype, bfloat16, cast, dtype_name,
                     float8_e4m3fn, float8_e5m2)
from .checkpointers import (AbstractCheckpointer, AsyncCheckpointer, Checkpointer, PyTreeCheckpointer,
                           StandardCheckpointer)
from .handlers import (ArrayCheckpointHandler, CheckpointHandler, CompositeCheckpointHandler, JsonCheckpointHandler,
                       PyTreeCheckpointHandler, StandardCheckpointHandler)
from .manager import CheckpointManager, CheckpointManagerOptions
from .metadata import RootMetadata, StepMetadata
from .options import AsyncOptions, AtomicityMode, AtomicityOptions, FileOptions, MultiprocessingOptions
from .transform_utils import RestoreTransform, Transform, apply_transformations
from .types import PLACEHOLDER, ArrayRestoreArgs, ArraySpec, RestoreArgs, SaveArgs

__version__ = "0.1.0"

# `from cairn import *` leaves the builtin TimeoutError alone (cairn.TimeoutError is a subclass of it).
__all__ = [
    "AbortedError", "AbstractCheckpointer", "AlreadyExistsError", "ArrayCheckpointHandler", "ArrayRestoreArgs",
    "ArraySpec", "AsyncCheckpointer", "AsyncOptions", "AtomicityMode", "AtomicityOptions", "CheckpointHandler",
    "CheckpointManager", "CheckpointManagerOptions", "Checkpointer", "CompositeCheckpointHandler", "CorruptionError",
    "Error", "FileOptions", "InvalidArgumentError", "IoError", "JsonCheckpointHandler", "MultiprocessingOptions",
    "NotFoundError", "PLACEHOLDER", "PyTreeCheckpointHandler", "RestoreArgs", "RootMetadata", "SaveArgs",
    "PyTreeCheckpointer", "StandardCheckpointHandler", "StandardCheckpointer", "StepMetadata", "UnimplementedError",
    "args", "as_numpy_dtype", "bfloat16", "cast", "checkpoint_managers", "dtype_name", "multihost", "float8_e4m3fn",
    "float8_e5m2",
    "options", "utils", "checkpoint_utils", "RestoreTransform", "Transform", "apply_transformations", "transform_utils", "v1",
]

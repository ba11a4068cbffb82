"""Real Orbax, TensorStore and JAX beside cairn, in the interop environment (scripts/requirements-interop.txt).

Run by ctest (label `orbax`) with that environment's Python, PYTHONPATH at the build's `cairn` package and
CAIRN_ORBAX_TOOL at the C++ helper (orbax_interop_main.cc). The helpers are in interop_util.py. JAX sees 8 CPU
devices, so sharded arrays have meshes to live on. Nothing here is skipped: a missing piece is a failure.
"""

import os

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)  # int64, uint64, float64, complex128 as jax.Arrays


@pytest.fixture(scope="session")
def tool():
    path = os.environ.get("CAIRN_ORBAX_TOOL")
    if not path or not os.path.exists(path):
        pytest.fail("CAIRN_ORBAX_TOOL is not set (run through ctest)")
    return path


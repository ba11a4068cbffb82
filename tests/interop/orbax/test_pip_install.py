"""`pip install .` into the interop environment's Python (PyPI's numpy 2, ml_dtypes, JAX, Orbax), as a JAX user
installs cairn, then a JAX program imports both and hands checkpoints across. Installed with --target into a
temporary directory, so the shared environment is never changed; the ctest build directory is reused
(CAIRN_CMAKE_BUILD_DIR), so it takes seconds."""

import os
import subprocess
import sys

PROGRAM = r'''
import os, sys, tempfile
import jax, jax.numpy as jnp, ml_dtypes, numpy as np
import orbax.checkpoint as orbax
import cairn as ocp
assert ocp.__file__.startswith(sys.argv[1]), ocp.__file__
state = {"w": jnp.arange(12, dtype=jnp.float32).reshape(3, 4), "b": jnp.ones((5,), jnp.bfloat16), "step": 3}
with tempfile.TemporaryDirectory() as d:
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(os.path.join(d, "cairn"), state)
    back = orbax.StandardCheckpointer().restore(os.path.join(d, "cairn"))
    assert np.array_equal(np.asarray(back["w"]), np.asarray(state["w"])) and back["b"].dtype == jnp.bfloat16, back
    with orbax.StandardCheckpointer() as ckptr:
        ckptr.save(os.path.join(d, "orbax"), state)
    with ocp.StandardCheckpointer() as ckptr:
        back = ckptr.restore(os.path.join(d, "orbax"))
    assert back["b"].dtype == np.dtype(ml_dtypes.bfloat16), back["b"].dtype
    assert np.array_equal(back["w"], np.asarray(state["w"])) and back["step"] == 3, back
print("PIP-INSTALL PASS", np.__version__)
'''


def test_pip_install_into_a_jax_environment(tmp_path):
    source, build = os.environ["CAIRN_SOURCE_DIR"], os.environ["CAIRN_BINARY_DIR"]
    target = tmp_path / "site"
    env = dict(os.environ, CAIRN_CMAKE_BUILD_DIR=build)
    env.pop("PYTHONPATH", None)  # not the build's package: the installed one
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation",
                           "--no-cache-dir", "--quiet", "--target", str(target), source],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    env["PYTHONPATH"] = str(target)
    done = subprocess.run([sys.executable, "-c", PROGRAM, str(target)], capture_output=True, text=True, timeout=300,
                          env=env, cwd=tmp_path)
    assert done.returncode == 0 and "PIP-INSTALL PASS 2." in done.stdout, done.stdout + done.stderr

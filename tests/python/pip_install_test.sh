#!/bin/bash
# `pip install .` into a fresh virtual environment (with Debian's numpy through --system-site-packages), then import
# cairn from outside the source tree and round-trip a checkpoint. Reuses the ctest build directory
# (CAIRN_CMAKE_BUILD_DIR) so that it takes seconds instead of a full build.
#   pip_install_test.sh <source dir> <build dir> <python>
set -euo pipefail
src=$1
build=$2
python=${3:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m venv --system-site-packages "$work/venv"
CAIRN_CMAKE_BUILD_DIR="$build" "$work/venv/bin/pip" install --no-index --no-cache-dir --quiet "$src"
cd "$work"
"$work/venv/bin/python" - <<'PY'
import os, sys, tempfile
import numpy as np
import cairn as ocp
assert "site-packages" in ocp.__file__, ocp.__file__
state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "step": 3}
with tempfile.TemporaryDirectory() as d, ocp.StandardCheckpointer() as ckptr:
    ckptr.save(os.path.join(d, "1"), state)
    ckptr.wait_until_finished()
    back = ckptr.restore(os.path.join(d, "1"))
    assert np.array_equal(back["w"], state["w"]) and back["step"] == 3, back
print("pip install: imported", ocp.__file__)
PY
"$work/venv/bin/pip" uninstall --yes --quiet cairn
echo "PASS"

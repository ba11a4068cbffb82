"""s3:// and gs:// from Python and from the `cairn` command, against moto and fake-gcs-server on loopback
(started here by tests/objstore/servers.py with the interop environment's Python), and the cross-checks with the
real TensorStore and Orbax (tests/objstore/interop_check.py, run by that same Python)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import cairn as ocp
from conftest import assert_tree_equal

SOURCE_DIR = os.environ.get("CAIRN_SOURCE_DIR", "")
INTEROP_PYTHON = os.environ.get("CAIRN_INTEROP_PYTHON", "")
CLI = os.environ.get("CAIRN_CLI", "")
BUCKET = "cairn-py"


class Server:
    def __init__(self, kind):
        if not (INTEROP_PYTHON and os.access(INTEROP_PYTHON, os.X_OK)):
            pytest.fail(f"the interop environment's Python ({INTEROP_PYTHON!r}) is missing: run scripts/install-deps.sh")
        self.proc = subprocess.Popen([INTEROP_PYTHON, os.path.join(SOURCE_DIR, "tests/objstore/servers.py"), kind,
                                      "--bucket", BUCKET], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        words = self.proc.stdout.readline().split()
        if not words or words[0] != "READY":
            self.proc.kill()
            pytest.fail(f"the {kind} test server did not start")
        self.url = words[2]

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def servers():
    s3, gcs = Server("s3"), Server("gcs")
    # What a user would set; cairn reads them when it first meets an s3:// or gs:// path.
    os.environ.update({"AWS_ENDPOINT_URL": s3.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_REGION": "us-east-1", "STORAGE_EMULATOR_HOST": gcs.url})
    yield {"s3": s3, "gs": gcs}
    s3.stop()
    gcs.stop()


def tree(seed=0):
    return {"params": {"w": np.arange(24, dtype=np.float32).reshape(4, 6) + seed,
                       "b": np.full((3,), seed, np.int64)},
            "step": 7 + seed}


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_checkpointer_round_trip(servers, scheme, request):
    url = f"{scheme}://{BUCKET}/{request.node.name}/ckpt"
    ckptr = ocp.Checkpointer(ocp.StandardCheckpointHandler())
    ckptr.save(url, args=ocp.args.StandardSave(tree()))
    assert_tree_equal(ckptr.restore(url), tree())
    with pytest.raises(ValueError):
        ckptr.save(url, args=ocp.args.StandardSave(tree()))
    ckptr.save(url, args=ocp.args.StandardSave(tree(1)), force=True)
    assert_tree_equal(ckptr.restore(url), tree(1))
    with pytest.raises(FileNotFoundError):
        ckptr.restore(f"{scheme}://{BUCKET}/{request.node.name}/missing")


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_manager_on_a_bucket(servers, scheme, request):
    root = f"{scheme}://{BUCKET}/{request.node.name}/run"
    options = ocp.CheckpointManagerOptions(max_to_keep=2)
    with ocp.CheckpointManager(root, options=options) as mngr:
        for step in range(4):
            mngr.save(step, args=ocp.args.StandardSave(tree(step)), metrics={"loss": 1.0 / (step + 1)})
        mngr.wait_until_finished()
        assert mngr.all_steps() == [2, 3]
        assert mngr.directory == root
    with ocp.CheckpointManager(root, options=options) as mngr:
        assert mngr.latest_step() == 3
        assert_tree_equal(mngr.restore(3), tree(3))


def cli(*args):
    if not CLI:
        pytest.fail("CAIRN_CLI is not set (run through ctest)")
    return subprocess.run([CLI, *args], capture_output=True, text=True)


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_cli_on_urls(servers, scheme, request, tmp_path):
    base = f"{scheme}://{BUCKET}/{request.node.name}"
    with ocp.CheckpointManager(base + "/run") as mngr:
        mngr.save(1000, args=ocp.args.StandardSave(tree()))
    step = base + "/run/1000"
    info = cli("info", step, "--json")
    assert info.returncode == 0, info.stderr
    assert "params" in info.stdout
    verify = cli("verify", step)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    cat = cli("cat", step, "params.w", "--json")
    assert cat.returncode == 0, cat.stderr
    assert json.loads(cat.stdout)["values"] == tree()["params"]["w"].tolist()
    # Out of the bucket into a local file, and from a local checkpoint into the bucket.
    local = tmp_path / "w.safetensors"
    out = cli("convert", step, str(local))
    assert out.returncode == 0, out.stderr
    back = cli("convert", str(local), base + "/converted")
    assert back.returncode == 0, back.stderr
    assert cli("verify", base + "/converted").returncode == 0
    assert cli("info", base + "/nothing").returncode != 0


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_tensorstore_reads_what_cairn_wrote(servers, scheme, request):
    url = f"{scheme}://{BUCKET}/{request.node.name}/ckpt"
    ckptr = ocp.Checkpointer(ocp.StandardCheckpointHandler())
    ckptr.save(url, args=ocp.args.StandardSave(tree(3)))
    check = subprocess.run([INTEROP_PYTHON, os.path.join(SOURCE_DIR, "tests/objstore/interop_check.py"),
                            "tensorstore-read", url, "params.w"], capture_output=True, text=True,
                           env=dict(os.environ))
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads(check.stdout.strip().splitlines()[-1]) == tree(3)["params"]["w"].tolist()


def test_orbax_writes_to_the_emulator_and_cairn_restores(servers, request):
    url = f"gs://{BUCKET}/{request.node.name}/ckpt"
    check = subprocess.run([INTEROP_PYTHON, os.path.join(SOURCE_DIR, "tests/objstore/interop_check.py"),
                            "orbax-save", url], capture_output=True, text=True, env=dict(os.environ))
    assert check.returncode == 0, check.stdout + check.stderr
    restored = ocp.Checkpointer(ocp.StandardCheckpointHandler()).restore(url)
    np.testing.assert_array_equal(restored["w"], np.arange(12, dtype=np.float32).reshape(3, 4))
    assert restored["n"] == 5


def interop(*args):
    check = subprocess.run([INTEROP_PYTHON, os.path.join(SOURCE_DIR, "tests/objstore/interop_check.py"), *args],
                           capture_output=True, text=True, env=dict(os.environ))
    assert check.returncode == 0, check.stdout + check.stderr
    return json.loads(check.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_delta_steps_on_a_bucket(servers, scheme, request):
    """Delta saves on an object store (docs/storage.md): step 2 gets server-side copies of step 1's data files
    and writes only the adapter. With step 1 deleted by retention, cairn, TensorStore's own ocdbt + s3/gcs drivers
    and (on gs://, where Orbax reaches the emulator) Orbax itself restore step 2 exactly."""
    root = f"{scheme}://{BUCKET}/{request.node.name}/run"
    frozen = np.random.default_rng(3).standard_normal((128, 256)).astype(np.float32)  # 128 KiB, out of line

    def state(step):
        return {"frozen": frozen, "adapter": np.arange(64, dtype=np.float32).reshape(8, 8) + step}

    options = ocp.CheckpointManagerOptions(max_to_keep=1, save_deltas=True, enable_async_checkpointing=False)
    with ocp.CheckpointManager(root, options=options) as mngr:
        mngr.save(1, args=ocp.args.StandardSave(state(1)))
        mngr.save(2, args=ocp.args.StandardSave(state(2)))
        assert mngr.all_steps() == [2]
        assert_tree_equal(mngr.restore(2), state(2))
    step = root + "/2/default"
    info = cli("info", root + "/2", "--json")
    assert info.returncode == 0, info.stderr
    delta = json.loads(info.stdout)["items"][0]["delta"]
    assert delta["bytes_shared"] >= frozen.nbytes > 100 * delta["bytes_written"], delta
    assert cli("verify", root + "/2").returncode == 0
    assert interop("tensorstore-read", step, "frozen") == frozen.tolist()
    assert interop("tensorstore-read", step, "adapter") == state(2)["adapter"].tolist()
    if scheme == "gs":
        restored = interop("orbax-restore", root, "2")
        assert restored["frozen"] == frozen.tolist()
        assert restored["adapter"] == state(2)["adapter"].tolist()

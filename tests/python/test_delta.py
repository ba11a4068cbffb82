"""Delta steps from Python (docs/format.md "Delta steps"): Checkpointer.save(..., delta_base=...) and
CheckpointManagerOptions(save_deltas=True) share unchanged chunks with an earlier step, every step restores exactly,
and deleting the step shared with harms nothing."""

import json
import shutil

import numpy as np
import pytest

import cairn as ocp


def state(step):
    rng = np.random.default_rng(0)
    return {"base": rng.integers(0, 2**31, size=(256, 256), dtype=np.int64),
            "adapter": np.arange(4096, dtype=np.float32) + step}


def delta_record(item_dir):
    with open(item_dir / "cairn_delta" / "process_0") as f:
        return json.load(f)


def assert_state(restored, expected):
    assert set(restored) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(np.asarray(restored[key]), value)


def test_checkpointer_delta_base(tmp_path):
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "1", state(1), record_delta_hashes=True)
        ckptr.wait_until_finished()
        frozen = {"base": ocp.SaveArgs(frozen=True), "adapter": ocp.SaveArgs()}
        ckptr.save(tmp_path / "2", state(2), save_args=frozen, delta_base=tmp_path / "1")
        ckptr.wait_until_finished()
        record = delta_record(tmp_path / "2")
        assert record["bytes_shared"] > 10 * record["bytes_written"] > 0
        shutil.rmtree(tmp_path / "1")
        assert_state(ckptr.restore(tmp_path / "2"), state(2))
        with pytest.raises(FileNotFoundError):
            ckptr.save(tmp_path / "3", state(3), delta_base=tmp_path / "1")
            ckptr.wait_until_finished()
        assert not (tmp_path / "3").exists()


def test_manager_save_deltas(tmp_path):
    options = ocp.CheckpointManagerOptions(save_deltas=True, max_to_keep=2, delta_max_changed_fraction=0.5)
    with ocp.CheckpointManager(tmp_path / "run", options=options) as mngr:
        for step in range(4):
            mngr.save(step, args=ocp.args.StandardSave(state(step)))
        mngr.wait_until_finished()
        assert mngr.all_steps() == [2, 3]
        for step in mngr.all_steps():
            assert_state(mngr.restore(step), state(step))
            record = delta_record(tmp_path / "run" / str(step) / "default")
            assert record["bytes_shared"] > 10 * record["bytes_written"], record

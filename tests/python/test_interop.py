"""Checkpoints cross between Python and C++ and come from Orbax itself.

The C++ side is tests/python/interop_helper.cc (built as cairn_py_interop); its known tree is built here too.
"""

import os
import subprocess

import numpy as np
import pytest

import cairn as ocp
from conftest import ALL_DTYPES, assert_tree_equal


def known_tree():
    """The tree interop_helper.cc saves and checks: every dtype as a (2, 3) array of float32(i * 0.5 - 1) cast to it
    (bool: i % 2), nested containers, Python scalars."""
    f = (np.arange(6, dtype=np.float32) * 0.5 - 1).reshape(2, 3)
    arrays = {name: ((np.arange(6) % 2).astype(bool).reshape(2, 3) if name == "bool" else ocp.cast(f, name))
              for name in ALL_DTYPES}
    return {
        "arrays": arrays,
        "nested": {"layers": [np.arange(4, dtype=np.int32), {"w": np.array([[1, 2], [3, 4]], dtype=np.float32)}],
                   "empty": None},
        "step": 42,
        "lr": 0.125,
    }


def _helper(helper, mode, directory):
    run = subprocess.run([helper, mode, str(directory)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and f"CAIRN-PY-INTEROP PASS {mode}" in run.stdout, run.stdout + run.stderr


def test_cpp_saves_python_restores(tmp_path, interop_helper):
    _helper(interop_helper, "save", tmp_path / "from_cpp")
    with ocp.StandardCheckpointer() as ckptr:
        back = ckptr.restore(tmp_path / "from_cpp")
        assert_tree_equal(back, known_tree())
        assert ckptr.metadata(tmp_path / "from_cpp").custom_metadata == {"from": "c++"}
        # Spot-check values against numpy's own conversions, not only cairn.cast.
        np.testing.assert_array_equal(back["arrays"]["float16"], (np.arange(6) * 0.5 - 1).reshape(2, 3))
        np.testing.assert_array_equal(back["arrays"]["int32"], np.array([[-1, 0, 0], [0, 1, 1]]))
        bits = back["arrays"]["bfloat16"].view(np.uint16)
        np.testing.assert_array_equal(bits, (f32 := (np.arange(6, dtype=np.float32) * 0.5 - 1)).view(np.uint32)
                                      .reshape(2, 3) >> 16)
        assert f32.dtype == np.float32


def test_python_saves_cpp_restores(tmp_path, interop_helper):
    for i, ckptr in enumerate([ocp.StandardCheckpointer(), ocp.Checkpointer(ocp.StandardCheckpointHandler())]):
        with ckptr:
            ckptr.save(tmp_path / str(i), known_tree(), custom_metadata={"from": "python"})
        _helper(interop_helper, "check", tmp_path / str(i))


def test_python_saves_with_manager_cpp_restores_step(tmp_path, interop_helper):
    with ocp.CheckpointManager(tmp_path / "run") as mngr:
        mngr.save(3, args=ocp.args.StandardSave(known_tree()), custom_metadata={"from": "python"})
        assert mngr.metadata(3).custom_metadata == {"from": "python"}
    # The unnamed item of a step is a Standard item directory (its step metadata is one level up).
    _helper(interop_helper, "check-tree", tmp_path / "run" / "3" / "default")


ORBAX_TREE = {"a": np.arange(8, dtype=np.int32), "b": {"c": np.array([1, 2, 3], dtype=np.int32)}}


def _fixture_cases(fixtures_dir, layout, variants):
    cases = []
    for variant in variants:
        base = os.path.join(fixtures_dir, "v0_checkpoints", layout, variant)
        cases += [os.path.join(base, case) for case in sorted(os.listdir(base))]
    assert cases
    return cases


def test_orbax_direct_checkpoints(fixtures_dir):
    cases = _fixture_cases(fixtures_dir, "direct_checkpoint", ["checkpoint_metadata_present",
                                                               "checkpoint_metadata_missing",
                                                               "non_critical_metadata_alterations"])
    with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as ckptr:
        for case in cases:
            assert_tree_equal(ckptr.restore(case), ORBAX_TREE)
            target = {"a": ocp.ArraySpec((8,), np.float32), "b": {"c": ocp.ArraySpec((3,), np.int64)}}
            cast = ckptr.restore(case, args=ocp.args.StandardRestore(target))
            assert cast["a"].dtype == np.float32 and cast["b"]["c"].dtype == np.int64
            np.testing.assert_array_equal(cast["a"], np.arange(8))
            meta = ckptr.metadata(case)
            assert meta.item_metadata["a"] == ocp.ArraySpec((8,), np.int32)


def test_orbax_composite_checkpoints(fixtures_dir):
    cases = _fixture_cases(fixtures_dir, "composite_checkpoint", ["checkpoint_metadata_present",
                                                                  "non_critical_metadata_alterations"])
    cases.append(os.path.join(fixtures_dir, "v1_checkpoints", "composite_checkpoint", "checkpoint_metadata_present",
                              "pytree_checkpointable_has_metadata"))
    for case in cases:
        with ocp.Checkpointer(ocp.CompositeCheckpointHandler(state=ocp.PyTreeCheckpointHandler(),
                                                             metadata=ocp.JsonCheckpointHandler())) as ckptr:
            back = ckptr.restore(case)
            assert_tree_equal(back.state, ORBAX_TREE)
        with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
            back = ckptr.restore(case, args=ocp.args.Composite(state=ocp.args.PyTreeRestore()))
            assert_tree_equal(back.state, ORBAX_TREE)


def test_orbax_damaged_checkpoints_fail_clearly(fixtures_dir):
    cases = _fixture_cases(fixtures_dir, "direct_checkpoint", ["critical_metadata_alterations"])
    with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as ckptr:
        for case in cases:
            with pytest.raises(ocp.Error) as info:
                ckptr.restore(case)
            assert isinstance(info.value, (FileNotFoundError, ValueError)), info.value


def test_orbax_legacy_zarr_checkpoints(fixtures_dir):
    expected = {"a": np.arange(8, dtype=np.int64), "b": np.arange(0, 32, 2, dtype=np.int64),
                "c": {"a": np.arange(0, 24, 3, dtype=np.int64).reshape(2, 4),
                      "e": np.arange(0, 64, 4, dtype=np.int64).reshape(4, 4)}}
    with ocp.Checkpointer(ocp.PyTreeCheckpointHandler()) as ckptr:
        for case in ["aggregate_some.checkpoint", "aggregate_all.checkpoint"]:
            assert_tree_equal(ckptr.restore(os.path.join(fixtures_dir, "zarr_v2", case)), expected)

"""CheckpointManager: round trips of every dtype, named items, policies, metrics, restarts."""

import datetime
import os

import numpy as np
import pytest

import cairn as ocp
from cairn.checkpoint_managers import preservation_policy as pp
from cairn.checkpoint_managers import save_decision_policy as sdp
from conftest import as_saved, assert_tree_equal, every_dtype_tree


@pytest.mark.parametrize("async_save", [True, False])
def test_every_dtype_round_trip(tmp_path, async_save):
    options = ocp.CheckpointManagerOptions(enable_async_checkpointing=async_save)
    trees = {step: every_dtype_tree(seed=step) for step in range(3)}
    with ocp.CheckpointManager(tmp_path / "run", options=options) as mngr:
        for step, tree in trees.items():
            assert mngr.save(step, args=ocp.args.StandardSave(tree))
        mngr.wait_until_finished()
        assert mngr.all_steps() == [0, 1, 2] and mngr.latest_step() == 2
        for step, tree in trees.items():
            assert_tree_equal(mngr.restore(step), as_saved(tree))
            assert_tree_equal(mngr.restore(step, args=ocp.args.StandardRestore(tree)), tree)
        assert_tree_equal(mngr.restore(), as_saved(trees[2]))
    # A new manager on the same root finds the steps (a restart), and restores without being told the handler.
    with ocp.CheckpointManager(tmp_path / "run") as mngr:
        assert mngr.all_steps() == [0, 1, 2]
        assert_tree_equal(mngr.restore(1), as_saved(trees[1]))


def test_named_items_and_metrics(tmp_path):
    tree = every_dtype_tree(strings=True)
    options = ocp.CheckpointManagerOptions(max_to_keep=2, best_fn=lambda m: m["loss"], best_mode="min")
    with ocp.CheckpointManager(tmp_path / "run", options=options, item_names=("state", "extra"),
                               metadata={"model": "mlp"}) as mngr:
        for step, loss in enumerate([0.5, 0.1, 0.9, 0.3]):
            mngr.save(step, args=ocp.args.Composite(state=ocp.args.PyTreeSave(tree),
                                                    extra=ocp.args.JsonSave({"step": step})),
                      metrics={"loss": np.float32(loss)}, custom_metadata={"step": step})
        mngr.wait_until_finished()
        assert mngr.all_steps() == [1, 3]  # the two lowest losses
        assert mngr.best_step() == 1
        assert mngr.metrics(3) == {"loss": pytest.approx(0.3)}
        back = mngr.restore(3)
        assert isinstance(back, ocp.args.Composite)
        assert_tree_equal(back.state, as_saved(tree))
        assert back.extra == {"step": 3}
        meta = mngr.metadata(3)
        assert meta.custom_metadata == {"step": 3} and meta.metrics["loss"] == pytest.approx(0.3)
        assert mngr.metadata().custom_metadata == {"model": "mlp"}
        only_extra = mngr.restore(1, args=ocp.args.Composite(extra=ocp.args.JsonRestore()))
        assert only_extra.extra == {"step": 1}
    with ocp.CheckpointManager(tmp_path / "run") as mngr:  # reopened without item names
        assert isinstance(mngr.restore(3), ocp.args.Composite)


def test_item_handlers_and_legacy_items(tmp_path):
    tree = every_dtype_tree()
    handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
    with ocp.CheckpointManager(tmp_path / "run", item_handlers=handlers) as mngr:
        mngr.save(0, items={"state": tree, "meta": {"lr": 0.1}})
        mngr.wait_until_finished()
        back = mngr.restore(0)
        assert_tree_equal(back.state, as_saved(tree))
        assert back.meta == {"lr": 0.1}
        targeted = mngr.restore(0, items={"state": tree})
        assert_tree_equal(targeted.state, tree)
    with ocp.CheckpointManager(tmp_path / "single", item_handlers=ocp.StandardCheckpointHandler()) as mngr:
        mngr.save(5, items=tree)
        mngr.wait_until_finished()
        assert_tree_equal(mngr.restore(5), as_saved(tree))
        assert_tree_equal(mngr.item_metadata(5)["arrays"]["bfloat16"], ocp.ArraySpec((2, 3), ocp.bfloat16))
    # Orbax's legacy form: checkpointers instead of handlers.
    with ocp.CheckpointManager(tmp_path / "legacy", ocp.Checkpointer(ocp.PyTreeCheckpointHandler())) as mngr:
        mngr.save(1, items=tree)
        mngr.wait_until_finished()
        assert_tree_equal(mngr.restore(1), as_saved(tree))


def test_save_decisions_and_preservation(tmp_path):
    state = {"x": np.arange(4, dtype=np.float32)}
    options = ocp.CheckpointManagerOptions(save_interval_steps=2, max_to_keep=3, keep_period=4,
                                           step_prefix="ckpt", step_format_fixed_length=4)
    with ocp.CheckpointManager(tmp_path / "run", options=options) as mngr:
        saved = [step for step in range(13) if mngr.save(step, args=ocp.args.StandardSave(state))]
        mngr.wait_until_finished()
        assert saved == [0, 2, 4, 6, 8, 10, 12]
        assert mngr.all_steps() == [0, 4, 8, 10, 12]  # the latest 3, plus every multiple of 4
        assert (tmp_path / "run" / "ckpt_0012").is_dir()
        assert not mngr.should_save(13) and mngr.should_save(14)
        assert mngr.save(13, args=ocp.args.StandardSave(state), force=True)
        with pytest.raises(FileExistsError):
            mngr.save(13, args=ocp.args.StandardSave(state), force=True)
        mngr.delete(0)
        assert 0 not in mngr.all_steps()
        with pytest.raises(FileNotFoundError):
            mngr.restore(99)

    policies = ocp.CheckpointManagerOptions(
        save_decision_policy=sdp.AnySavePolicy([sdp.SpecificStepsPolicy([1, 3]), sdp.FixedIntervalPolicy(5)]),
        preservation_policy=pp.AnyPreservationPolicy([pp.LatestN(1), pp.CustomSteps([1])]))
    with ocp.CheckpointManager(tmp_path / "policies", options=policies) as mngr:
        saved = [step for step in range(11) if mngr.save(step, args=ocp.args.StandardSave(state))]
        mngr.wait_until_finished()
        assert saved == [0, 1, 3, 5, 10]
        assert mngr.all_steps() == [1, 10]

    custom = ocp.CheckpointManagerOptions(should_save_fn=lambda step, last: step in (2, 7),
                                          preservation_policy=pp.BestN(lambda m: m["acc"], n=1),
                                          keep_time_interval=datetime.timedelta(hours=1))
    with pytest.raises(ValueError):  # keep_time_interval may not be combined with a preservation policy
        ocp.CheckpointManager(tmp_path / "bad", options=custom)
    custom.keep_time_interval = None
    with ocp.CheckpointManager(tmp_path / "custom", options=custom) as mngr:
        for step in range(9):
            mngr.save(step, args=ocp.args.StandardSave(state), metrics={"acc": float(step % 3)})
        mngr.wait_until_finished()
        assert mngr.all_steps() == [2]  # acc 2 beats acc 1 (step 7)


def test_read_only_and_tmp_cleanup(tmp_path):
    state = {"x": np.zeros(3)}
    with ocp.CheckpointManager(tmp_path / "run") as mngr:
        mngr.save(0, args=ocp.args.StandardSave(state))
    os.makedirs(tmp_path / "run" / "1.orbax-checkpoint-tmp")
    with ocp.CheckpointManager(tmp_path / "run", options=ocp.CheckpointManagerOptions(read_only=True)) as mngr:
        assert mngr.all_steps() == [0]
        assert not mngr.save(1, args=ocp.args.StandardSave(state))
    options = ocp.CheckpointManagerOptions(cleanup_tmp_directories=True)
    with ocp.CheckpointManager(tmp_path / "run", options=options) as mngr:
        assert mngr.all_steps() == [0]
    assert not (tmp_path / "run" / "1.orbax-checkpoint-tmp").exists()


def test_unsupported_options_are_refused(tmp_path):
    with pytest.raises(NotImplementedError):
        ocp.CheckpointManager(tmp_path / "run", options=ocp.CheckpointManagerOptions(should_keep_fn=lambda s: True))
    with pytest.raises(NotImplementedError):
        class Mine(sdp.SaveDecisionPolicy):
            pass
        ocp.CheckpointManager(tmp_path / "run2", options=ocp.CheckpointManagerOptions(save_decision_policy=Mine()))


def test_failed_background_save_is_raised(tmp_path):
    def fail():
        raise RuntimeError("finalize failed")

    options = ocp.CheckpointManagerOptions(async_options=ocp.AsyncOptions(post_finalization_callback=fail))
    mngr = ocp.CheckpointManager(tmp_path / "run", options=options)
    mngr.save(0, args=ocp.args.StandardSave({"x": np.zeros(2)}))
    with pytest.raises(RuntimeError, match="finalize failed"):
        mngr.wait_until_finished()
    assert mngr.all_steps() == []
    mngr.close()


@pytest.mark.parametrize("async_save", [True, False])
def test_one_manager_from_two_threads(tmp_path, async_save):
    """A training thread saves while another lists the steps and restores the latest (issue 13): no hang, no error,
    every restore whole."""
    import threading

    options = ocp.CheckpointManagerOptions(max_to_keep=3, enable_async_checkpointing=async_save)
    errors = []
    restored = []
    with ocp.CheckpointManager(tmp_path / "run", options=options) as mngr:
        saving = threading.Event()
        saving.set()

        def reader():
            try:
                while saving.is_set():
                    steps = mngr.all_steps()
                    assert steps == sorted(steps) and len(steps) <= 4
                    mngr.latest_step()
                    mngr.is_saving_in_progress()
                    if steps:
                        tree = mngr.restore()
                        assert tree["x"].shape == (64,) and np.all(tree["x"] == tree["x"][0])
                        restored.append(int(tree["x"][0]))
                    mngr.wait_until_finished()
            except Exception as e:  # reported on the main thread
                errors.append(e)

        thread = threading.Thread(target=reader)
        thread.start()
        for step in range(30):
            mngr.save(step, args=ocp.args.StandardSave({"x": np.full(64, step, np.int32)}))
        mngr.wait_until_finished()
        saving.clear()
        thread.join(timeout=120)
        assert not thread.is_alive(), "the reader thread hung"
        assert not errors, errors
        assert mngr.all_steps() == [27, 28, 29]
    assert restored

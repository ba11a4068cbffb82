"""CheckpointManager roots cross both ways: a run managed by Orbax is listed and restored by cairn's manager, and a
run managed by cairn by Orbax's: steps, metrics, best step, named items, step prefixes and fixed-length names."""

import numpy as np
import orbax.checkpoint as orbax
import pytest

import cairn
from interop_util import assert_same_tree, pattern


def state(step):
    return {"params": {"w": pattern("float32", (8, 16)) + np.float32(step), "b": pattern("bfloat16", (16,))},
            "step": step}


def loss(step):
    return {"loss": abs(step - 5.5)}  # best at step 6, then 4


# (Orbax's and cairn's CheckpointManagerOptions keyword arguments, the steps saved, the steps kept)
RUNS = {
    "max_to_keep": ({"max_to_keep": 3}, [0, 2, 4, 6, 8], [4, 6, 8]),
    "best_fn": ({"max_to_keep": 2, "best_fn": lambda m: m["loss"], "best_mode": "min"}, [0, 2, 4, 6, 8], [4, 6]),
    "step_prefix": ({"step_prefix": "ckpt", "max_to_keep": 5}, [1, 3], [1, 3]),
    "fixed_length": ({"step_format_fixed_length": 6}, [10, 20], [10, 20]),
    "save_interval": ({"save_interval_steps": 3}, [0, 1, 2, 3, 4, 5, 6], [0, 3, 6]),
}


def run_with(library, root, options, steps, items):
    """Saves `steps` with `library`'s manager, asynchronously, as named items ("state" always, "extra" JSON when
    `items`) or as one unnamed item."""
    with library.CheckpointManager(root, options=library.CheckpointManagerOptions(**options),
                                   item_names=("state", "extra") if items else None) as mngr:
        for step in steps:
            if items:
                args = library.args.Composite(state=library.args.StandardSave(state(step)),
                                              extra=library.args.JsonSave({"step": step}))
            else:
                args = library.args.StandardSave(state(step))
            mngr.save(step, args=args, metrics=loss(step))
        mngr.wait_until_finished()


def check_reads(library, root, options, kept, items):
    with library.CheckpointManager(root, options=library.CheckpointManagerOptions(**options),
                                   item_names=("state", "extra") if items else None) as mngr:
        assert list(mngr.all_steps()) == kept
        assert mngr.latest_step() == kept[-1]
        if "best_fn" in options:
            assert mngr.best_step() == 6
        for step in kept:
            if items:
                restored = mngr.restore(step, args=library.args.Composite(state=library.args.StandardRestore(),
                                                                          extra=library.args.JsonRestore()))
                assert_same_tree(restored["state"], state(step))
                assert restored["extra"] == {"step": step}
            else:
                assert_same_tree(mngr.restore(step, args=library.args.StandardRestore()), state(step))


@pytest.mark.parametrize("items", [False, True], ids=["one_item", "named_items"])
@pytest.mark.parametrize("name", sorted(RUNS))
def test_orbax_run_read_by_cairn(name, items, tmp_path):
    options, steps, kept = RUNS[name]
    run_with(orbax, tmp_path / "run", options, steps, items)
    check_reads(cairn, tmp_path / "run", options, kept, items)


@pytest.mark.parametrize("items", [False, True], ids=["one_item", "named_items"])
@pytest.mark.parametrize("name", sorted(RUNS))
def test_cairn_run_read_by_orbax(name, items, tmp_path):
    options, steps, kept = RUNS[name]
    run_with(cairn, tmp_path / "run", options, steps, items)
    check_reads(orbax, tmp_path / "run", options, kept, items)


def test_runs_continue_across_libraries(tmp_path):
    """Orbax saves steps 0-2, cairn continues the same run with 3-4 and retention, Orbax lists and restores them."""
    options = {"max_to_keep": 4}
    run_with(orbax, tmp_path / "run", options, [0, 1, 2], False)
    run_with(cairn, tmp_path / "run", options, [3, 4], False)
    check_reads(orbax, tmp_path / "run", options, [1, 2, 3, 4], False)

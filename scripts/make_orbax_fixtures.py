#!/usr/bin/env python3
"""Writes tests/fixtures/orbax/: checkpoints written by the real Orbax pinned in scripts/requirements-interop.txt.

Run it with the interop environment's Python (`make orbax-fixtures` does):
    $(bash scripts/install-deps.sh --print-venv)/bin/python scripts/make_orbax_fixtures.py tests/fixtures/orbax

The cases follow Orbax's own compatibility suite (orbax/checkpoint/experimental/v1/_src/testing/compatibility): one
small tree, `{'a': int32[8] = 0..7, 'b': {'c': int32[3] = 1, 2, 3}}`, saved as a direct StandardCheckpointer item and
as a Composite (PyTree item `state` + JSON item `metadata`) with Orbax's classic API (v0_checkpoints/), and with its
newer API (v1_checkpoints/, zarr3 inside OCDBT); then altered the ways Orbax's suite alters them (a metadata file or a
field of `_CHECKPOINT_METADATA` removed: restores must still work; a data directory or `manifest.ocdbt` removed:
restores must fail naming it).

`zarr_v2/` is not written here: it holds the legacy layout (per-parameter zarr directories beside a msgpack
`checkpoint` file with the aggregated values) that older Orbax wrote and the pinned one reads but no longer writes
(`SaveArgs(aggregate=True)` is ignored). Those two checkpoints are Orbax's own test data, kept as they were written;
see tests/fixtures/orbax/README.md.

What wrote the files is recorded in VERSIONS (library versions, nothing time-dependent), so a changed pin shows in the
diff. Timestamps inside `_CHECKPOINT_METADATA` and data file names are random per run: regenerating rewrites them.
"""
import argparse
import importlib.metadata
import itertools
import json
import os
import shutil
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import orbax.checkpoint as ocp  # noqa: E402

CUSTOM_METADATA = {"custom": "meta"}
CHECKPOINT_METADATA_FIELDS = ["item_handlers", "metrics", "performance_metrics", "init_timestamp_nsecs",
                              "commit_timestamp_nsecs", "custom_metadata"]


def make_tree():
    return {"a": jnp.array([0, 1, 2, 3, 4, 5, 6, 7], dtype=jnp.int32),
            "b": {"c": jnp.array([1, 2, 3], dtype=jnp.int32)}}


def make_json_object():
    return {"metadata": "json_data"}


def save_direct(path):
    """A StandardCheckpointer item: the tree's files directly in `path`."""
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, make_tree(), custom_metadata=CUSTOM_METADATA)


def save_composite(path):
    """Checkpointer(CompositeCheckpointHandler): items `state` (PyTree) and `metadata` (JSON)."""
    args = ocp.args.Composite(state=ocp.args.PyTreeSave(make_tree()), metadata=ocp.args.JsonSave(make_json_object()))
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
        checkpointer.save(path, args, custom_metadata=CUSTOM_METADATA)


def save_composite_v1(path):
    """Orbax's newer API (orbax.checkpoint.experimental.v1): save_checkpointables with a PyTree and a JSON handler."""
    import orbax.checkpoint.experimental.v1 as ocp_v1
    from orbax.checkpoint.experimental.v1._src.handlers import registration

    registry = registration.local_registry(include_global_registry=False)
    registry.add(ocp_v1.handlers.PyTreeHandler, checkpointable_name="state")
    registry.add(ocp_v1.handlers.JsonHandler, checkpointable_name="metadata")
    context = ocp_v1.Context()
    context.checkpointables.registry = registry
    with context:
        ocp_v1.save_checkpointables(path, {"state": make_tree(), "metadata": make_json_object()},
                                    custom_metadata=CUSTOM_METADATA)


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def remove_checkpoint_metadata_field(path, field):
    metadata_path = os.path.join(path, "_CHECKPOINT_METADATA")
    with open(metadata_path) as f:
        data = json.load(f)
    del data[field]
    with open(metadata_path, "w") as f:
        json.dump(data, f)


def generate(root):
    savers = {("v0_checkpoints", "direct_checkpoint"): save_direct,
              ("v0_checkpoints", "composite_checkpoint"): save_composite,
              ("v1_checkpoints", "composite_checkpoint"): save_composite_v1}

    def case(api, kind, variant, name):
        path = os.path.join(root, api, kind, variant, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        savers[(api, kind)](path)
        # commit_success.txt is Orbax's marker for file systems without atomic rename; on a local disk Orbax writes
        # it too. Kept: it is part of what Orbax writes.
        item = path if kind == "direct_checkpoint" else os.path.join(path, "state")
        return path, item

    for kind in ["direct_checkpoint", "composite_checkpoint"]:
        for has_checkpoint_metadata, has_tree_metadata in itertools.product([True, False], repeat=2):
            variant = "checkpoint_metadata_present" if has_checkpoint_metadata else "checkpoint_metadata_missing"
            name = "pytree_checkpointable_has_metadata" if has_tree_metadata else \
                "pytree_checkpointable_missing_metadata"
            path, item = case("v0_checkpoints", kind, variant, name)
            if not has_checkpoint_metadata:
                remove(os.path.join(path, "_CHECKPOINT_METADATA"))
            if not has_tree_metadata:
                remove(os.path.join(item, "_METADATA"))
        for field in CHECKPOINT_METADATA_FIELDS:
            path, _ = case("v0_checkpoints", kind, "non_critical_metadata_alterations", f"missing_{field}_metadata")
            remove_checkpoint_metadata_field(path, field)
        # Not needed to restore when a target is given (_sharding) or at all (array_metadatas).
        for name, prefix in [("_sharding", "file"), ("array_metadatas", "dir")]:
            _, item = case("v0_checkpoints", kind, "non_critical_metadata_alterations",
                           f"missing_pytree_data_{prefix}_{name}")
            remove(os.path.join(item, name))
        # Needed: a restore must fail and say what is missing.
        for name, prefix in [("d", "dir"), ("manifest.ocdbt", "file")]:
            _, item = case("v0_checkpoints", kind, "critical_metadata_alterations",
                           f"missing_pytree_data_{prefix}_{name}")
            remove(os.path.join(item, name))

    case("v1_checkpoints", "composite_checkpoint", "checkpoint_metadata_present", "pytree_checkpointable_has_metadata")


def check(root):
    """Orbax itself restores every intact case: the fixtures are what Orbax reads, not only what it wrote."""
    for kind in ["direct_checkpoint", "composite_checkpoint"]:
        path = os.path.join(root, "v0_checkpoints", kind, "checkpoint_metadata_present",
                            "pytree_checkpointable_has_metadata")
        with ocp.PyTreeCheckpointer() as checkpointer:
            restored = checkpointer.restore(path if kind == "direct_checkpoint" else os.path.join(path, "state"))
        np.testing.assert_array_equal(np.asarray(restored["a"]), np.arange(8, dtype=np.int32))
        np.testing.assert_array_equal(np.asarray(restored["b"]["c"]), np.array([1, 2, 3], dtype=np.int32))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="the fixtures directory, e.g. tests/fixtures/orbax")
    out = os.path.abspath(parser.parse_args().out)
    # Regenerate the generated part only; zarr_v2/ and README.md are kept.
    for api in ["v0_checkpoints", "v1_checkpoints"]:
        shutil.rmtree(os.path.join(out, api), ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    generate(out)
    check(out)
    with open(os.path.join(out, "VERSIONS"), "w") as f:
        f.write("# What wrote v0_checkpoints/ and v1_checkpoints/ (scripts/make_orbax_fixtures.py)\n")
        for package in ["orbax-checkpoint", "tensorstore", "jax", "jaxlib", "numpy"]:
            f.write(f"{package}=={importlib.metadata.version(package)}\n")
        f.write(f"python=={sys.version_info.major}.{sys.version_info.minor}\n")
    print(f"make_orbax_fixtures: wrote {out} with orbax-checkpoint {ocp.__version__}")


if __name__ == "__main__":
    main()

"""Orbax writes, cairn reads: checkpoints written by the real Orbax here, at test time, restored by cairn's Python
module and by its C++ API (cairn_orbax_interop dump) bit for bit, with metadata() reporting the same tree."""

import json
import os

import jax
import numpy as np
import orbax.checkpoint as orbax
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import cairn
from interop_util import (DTYPES, LAYOUTS, MORE_DTYPES, assert_same_tree, flatten, matrix_tree, numpy_dtype, pattern,
                      run, tool_dump)


def orbax_save(path, tree, handler="pytree", save_args=None, target_file_size=None, **options):
    if handler == "standard":
        with orbax.Checkpointer(orbax.StandardCheckpointHandler(**options)) as ckptr:
            ckptr.save(path, args=orbax.args.StandardSave(tree, save_args=save_args), custom_metadata={"by": "orbax"})
    else:
        with orbax.Checkpointer(orbax.PyTreeCheckpointHandler(**options)) as ckptr:
            ckptr.save(path, args=orbax.args.PyTreeSave(tree, save_args=save_args,
                                                         ocdbt_target_data_file_size=target_file_size),
                       custom_metadata={"by": "orbax"})


def check_cairn_reads(path, expected, tool, tmp_path, item_dir=None):
    """cairn (Python and C++) restores `expected` from `path` exactly; metadata() lists every array's dtype and
    shape."""
    with cairn.PyTreeCheckpointer() as ckptr:
        restored = ckptr.restore(path)
        assert_same_tree(restored, expected)
        metadata = ckptr.metadata(path)
    meta_leaves = flatten(metadata.item_metadata.tree)
    for param, leaf in flatten(expected).items():
        if hasattr(leaf, "shape") and hasattr(leaf, "dtype") and np.ndim(leaf) >= 0 and not np.isscalar(leaf):
            meta = meta_leaves[param]
            assert tuple(meta.shape) == tuple(np.shape(leaf)), f"metadata {param}: {meta.shape}"
            assert cairn.dtype_name(meta.dtype) == np.dtype(leaf.dtype).name, f"metadata {param}: {meta.dtype}"
    leaves, cpp_meta = tool_dump(tool, path, tmp_path / "dump")
    expected_flat = flatten(expected)
    for param, leaf in expected_flat.items():
        assert param in leaves, f"C++ restore lacks {param}: {sorted(leaves)}"
        if isinstance(leaf, (dict, list)) and not leaf:
            continue
        assert_same_tree(leaves[param], leaf, f"C++ {param}")
        if hasattr(leaf, "dtype") and np.ndim(leaf) >= 0 and not isinstance(leaf, (int, float)):
            assert cpp_meta[param]["shape"] == list(np.shape(leaf)), f"C++ metadata {param}"


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_pytree_numpy_every_layout(layout, tmp_path, tool):
    options, _ = LAYOUTS[layout]
    tree = matrix_tree(empty=False)
    orbax_save(tmp_path / "ckpt", tree, **options)
    check_cairn_reads(tmp_path / "ckpt", tree, tool, tmp_path)


@pytest.mark.parametrize("layout", ["ocdbt_zarr2", "ocdbt_zarr3", "zarr2", "zarr3"])
def test_jax_arrays(layout, tmp_path, tool):
    """jax.Arrays (every dtype, jax_enable_x64) through StandardCheckpointHandler, which takes only use_ocdbt, and
    through PyTreeCheckpointHandler for zarr3."""
    options, _ = LAYOUTS[layout]
    tree = matrix_tree(standard=True, jax_arrays=True, empty=False)
    orbax_save(tmp_path / "ckpt", tree, handler="pytree" if options.get("use_zarr3") else "standard", **options)
    check_cairn_reads(tmp_path / "ckpt", tree, tool, tmp_path)
    with cairn.StandardCheckpointer() as ckptr:
        assert_same_tree(ckptr.restore(tmp_path / "ckpt"), tree)
        assert ckptr.metadata(tmp_path / "ckpt").custom_metadata == {"by": "orbax"}


@pytest.mark.parametrize("layout", ["ocdbt_zarr2", "ocdbt_zarr3", "zarr2", "zarr3"])
def test_small_chunks_and_many_data_files(layout, tmp_path, tool):
    """chunk_byte_size far below the arrays (many chunks, zarr3 shards with several inner chunks), and a small
    ocdbt_target_data_file_size (several data files)."""
    options, _ = LAYOUTS[layout]
    tree = {"big": pattern("float32", (256, 1024)), "odd": pattern("int16", (37, 61)), "b": pattern("bfloat16", (500,))}
    save_args = jax.tree.map(lambda _: orbax.SaveArgs(chunk_byte_size=4096), tree)
    orbax_save(tmp_path / "ckpt", tree, save_args=save_args,
               target_file_size=64 * 1024 if options.get("use_ocdbt", True) else None, **options)
    if options.get("use_ocdbt", True):
        data_files = os.listdir(tmp_path / "ckpt" / "ocdbt.process_0" / "d")
        assert len(data_files) > 1, data_files
    check_cairn_reads(tmp_path / "ckpt", tree, tool, tmp_path)


@pytest.mark.parametrize("layout", ["ocdbt_zarr2", "zarr3"])
def test_more_dtypes(layout, tmp_path, tool):
    """Types beyond cairn's first 17 that Orbax writes (int4, int2, the other float8s, float4): read exactly."""
    options, _ = LAYOUTS[layout]
    tree = {name: pattern(name, (4, 6)) for name in MORE_DTYPES}
    orbax_save(tmp_path / "ckpt", tree, **options)
    check_cairn_reads(tmp_path / "ckpt", tree, tool, tmp_path)


def mesh(shape, names):
    return Mesh(np.array(jax.devices()[: int(np.prod(shape))]).reshape(shape), names)


SHARDINGS = {
    "replicated": lambda: NamedSharding(mesh((8,), ("x",)), PartitionSpec()),
    "rows_1d": lambda: NamedSharding(mesh((8,), ("x",)), PartitionSpec("x")),
    "mesh_2d": lambda: NamedSharding(mesh((4, 2), ("x", "y")), PartitionSpec("x", "y")),
    "partially_replicated": lambda: NamedSharding(mesh((4, 2), ("x", "y")), PartitionSpec(None, "x")),
    "single_device": lambda: jax.sharding.SingleDeviceSharding(jax.devices()[3]),
}


@pytest.mark.parametrize("sharding", sorted(SHARDINGS))
def test_sharded_jax_arrays(sharding, tmp_path, tool):
    assert len(jax.devices()) == 8
    s = SHARDINGS[sharding]()
    values = {"w": pattern("float32", (16, 24)), "b": pattern("bfloat16", (16, 8)), "i": pattern("int64", (8, 4))}
    tree = {k: jax.device_put(v, s) for k, v in values.items()}
    with orbax.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "ckpt", tree)
    check_cairn_reads(tmp_path / "ckpt", values, tool, tmp_path)


def test_array_json_and_composite_handlers(tmp_path, tool):
    array = pattern("complex64", (5, 3))
    with orbax.Checkpointer(orbax.ArrayCheckpointHandler()) as ckptr:
        ckptr.save(tmp_path / "array", args=orbax.args.ArraySave(array))
    with cairn.Checkpointer(cairn.ArrayCheckpointHandler()) as ckptr:
        assert_same_tree(ckptr.restore(tmp_path / "array", args=cairn.args.ArrayRestore()), array)

    document = {"lr": 0.001, "schedule": [1, 2, 3], "name": "adam", "nested": {"on": True, "none": None}}
    with orbax.Checkpointer(orbax.JsonCheckpointHandler()) as ckptr:
        ckptr.save(tmp_path / "json", args=orbax.args.JsonSave(document))
    with cairn.Checkpointer(cairn.JsonCheckpointHandler()) as ckptr:
        assert ckptr.restore(tmp_path / "json", args=cairn.args.JsonRestore()) == document

    state = matrix_tree(empty=False)
    with orbax.Checkpointer(orbax.CompositeCheckpointHandler()) as ckptr:
        ckptr.save(tmp_path / "composite", args=orbax.args.Composite(
            state=orbax.args.PyTreeSave(state), extra=orbax.args.StandardSave({"x": pattern("int8", (9,))}),
            config=orbax.args.JsonSave(document)))
    with cairn.Checkpointer(cairn.CompositeCheckpointHandler()) as ckptr:
        restored = ckptr.restore(tmp_path / "composite")
        assert sorted(restored.keys()) == ["config", "extra", "state"]
        assert_same_tree(restored["state"], state)
        assert_same_tree(restored["extra"], {"x": pattern("int8", (9,))})
        assert restored["config"] == document
        restored = ckptr.restore(tmp_path / "composite", args=cairn.args.Composite(state=cairn.args.PyTreeRestore()))
        assert_same_tree(restored["state"], state)
    leaves, _ = tool_dump(tool, tmp_path / "composite", tmp_path / "dump", item="state")
    assert_same_tree(leaves["dtypes.bfloat16"], state["dtypes"]["bfloat16"])


def test_newer_api(tmp_path, tool):
    """Orbax's newer API (orbax.checkpoint.v1 in the pinned version): save_pytree / save_checkpointables."""
    from orbax.checkpoint import v1 as orbax_v1
    tree = matrix_tree(standard=True, empty=False)
    orbax_v1.save_pytree(tmp_path / "v1", tree)
    entries = sorted(os.listdir(tmp_path / "v1"))
    item = [e for e in entries if os.path.isdir(tmp_path / "v1" / e)]
    assert item, entries
    with cairn.Checkpointer(cairn.CompositeCheckpointHandler()) as ckptr:
        restored = ckptr.restore(tmp_path / "v1")
    (name, state), = restored.items()
    assert_same_tree(state, tree)
    check_cairn_reads(tmp_path / "v1" / name, tree, tool, tmp_path)


def test_partial_restore_with_placeholder(tmp_path):
    tree = matrix_tree(empty=False)
    orbax_save(tmp_path / "ckpt", tree)
    target = {"dtypes": {"float32": cairn.ArraySpec((3, 5), np.float32), "int8": cairn.PLACEHOLDER},
              "shapes": {"big": cairn.ArraySpec((256, 1024), np.float32)}}
    with cairn.PyTreeCheckpointer() as ckptr:
        restored = ckptr.restore(tmp_path / "ckpt", args=cairn.args.PyTreeRestore(target, partial_restore=True))
    assert_same_tree(restored["dtypes"]["float32"], tree["dtypes"]["float32"])
    assert_same_tree(restored["shapes"]["big"], tree["shapes"]["big"])
    assert "int8" not in restored["dtypes"] or restored["dtypes"]["int8"] is cairn.PLACEHOLDER


def test_unrepresentable_value_is_a_clear_error(tmp_path):
    """A value written by a custom Orbax type handler: cairn names the parameter and the type, and returns nothing
    partial."""
    import dataclasses

    from orbax.checkpoint import type_handlers

    @dataclasses.dataclass
    class Fancy:
        payload: str

    class FancyHandler(type_handlers.TypeHandler):
        def typestr(self):
            return "Fancy"

        async def metadata(self, infos):
            return [type_handlers.ValueMetadataEntry(value_type="Fancy") for _ in infos] if hasattr(
                type_handlers, "ValueMetadataEntry") else [None for _ in infos]

        async def serialize(self, values, infos, args=None):
            for value, info in zip(values, infos):
                os.makedirs(info.path, exist_ok=True)
                with open(os.path.join(info.path, "fancy.txt"), "w") as f:
                    f.write(value.payload)
            return []

        async def deserialize(self, infos, args=None):
            out = []
            for info in infos:
                with open(os.path.join(info.path, "fancy.txt")) as f:
                    out.append(Fancy(f.read()))
            return out

    type_handlers.register_type_handler(Fancy, FancyHandler(), override=True)
    orbax_save(tmp_path / "ckpt", {"fancy": Fancy("x"), "w": pattern("float32", (2,))}, use_ocdbt=False)
    with cairn.PyTreeCheckpointer() as ckptr:
        with pytest.raises(cairn.UnimplementedError, match=r"fancy.*Fancy|Fancy.*fancy"):
            ckptr.restore(tmp_path / "ckpt")


def test_every_dtype_name_matches_numpy():
    for name in DTYPES + MORE_DTYPES:
        assert numpy_dtype(name).name == name


# Issue 15: checkpoints Orbax writes with a blosc compressor (older Orbax versions left TensorStore's default, blosc
# lz4; TensorStore users choose it). Orbax 0.12 always asks for zstd, so its metadata builders are patched to ask
# for blosc instead: the rest is Orbax and TensorStore writing as they do.
BLOSC_V2 = {"lz4": {"id": "blosc"},  # TensorStore's defaults: lz4, clevel 5, shuffle -1 (auto)
            "zstd": {"id": "blosc", "cname": "zstd", "clevel": 3, "shuffle": 1}}
BLOSC_V3 = {"lz4": {"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5, "shuffle": "shuffle"}},
            "zstd": {"name": "blosc", "configuration": {"cname": "zstd", "clevel": 1, "shuffle": "bitshuffle"}}}


@pytest.mark.parametrize("cname", ["lz4", "zstd"])
@pytest.mark.parametrize("layout", ["ocdbt_zarr2", "ocdbt_zarr3", "zarr2", "zarr3"])
def test_blosc_written_by_orbax(layout, cname, tmp_path, tool, monkeypatch):
    from orbax.checkpoint._src.serialization import tensorstore_utils

    build_v2, build_v3 = tensorstore_utils._build_zarr2_metadata, tensorstore_utils._build_zarr3_metadata

    def blosc_v2(*a, **k):
        return dict(build_v2(*a, **k), compressor=BLOSC_V2[cname])

    def blosc_v3(*a, **k):
        metadata = build_v3(*a, **k)
        inner = metadata["codecs"][0]["configuration"]["codecs"]
        inner[:] = [c for c in inner if c["name"] != "zstd"] + [BLOSC_V3[cname]]
        return metadata

    monkeypatch.setattr(tensorstore_utils, "_build_zarr2_metadata", blosc_v2)
    monkeypatch.setattr(tensorstore_utils, "_build_zarr3_metadata", blosc_v3)
    options, _ = LAYOUTS[layout]
    rng = np.random.default_rng(5)
    tree = matrix_tree(empty=False)
    tree["weights"] = (0.02 * rng.standard_normal((256, 384))).astype(numpy_dtype("bfloat16"))
    tree["moments"] = (1e-3 * rng.standard_normal((300, 7))).astype(np.float32)
    orbax_save(tmp_path / "ckpt", tree, **options)
    # The metadata says blosc (so the patch took; `cairn info` reads it from OCDBT too), then cairn reads the
    # arrays bit for bit.
    done = run([os.environ["CAIRN_CLI"], "info", "--json", tmp_path / "ckpt"])
    leaves = {leaf["name"]: leaf for leaf in json.loads(done.stdout)["items"][0]["tree"]}
    assert leaves["weights"]["compression"].startswith(f"blosc({cname}, "), leaves["weights"]
    check_cairn_reads(tmp_path / "ckpt", tree, tool, tmp_path)

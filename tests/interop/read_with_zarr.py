"""Opens every parameter of a cairn checkpoint (per-parameter zarr v2 layout) with python3-zarr and checks it
against the values the C++ side wrote: arange(n).reshape(shape).astype(dtype). Exit status 0 when all match."""
import json
import pathlib
import sys

import numpy as np
import zarr


def main(directory: str) -> int:
    root = pathlib.Path(directory)
    tree = json.loads((root / "_METADATA").read_text())["tree_metadata"]
    checked = 0
    for entry in tree.values():
        if entry["value_metadata"]["value_type"] != "jax.Array":
            continue
        name = ".".join(k["key"] for k in entry["key_metadata"])
        array = zarr.open_array(str(root / name), mode="r")
        expected = np.arange(np.prod(array.shape), dtype=np.float64).reshape(array.shape).astype(array.dtype)
        if array.dtype != np.dtype(name.split("_")[0]):
            print(f"{name}: dtype {array.dtype}")
            return 1
        if not np.array_equal(array[...], expected):
            print(f"{name}: values differ:\n{array[...]}\nexpected\n{expected}")
            return 1
        checked += 1
    print(f"zarr read {checked} arrays")
    return 0 if checked else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

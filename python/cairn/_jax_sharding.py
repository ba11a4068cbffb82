"""JAX shardings and the `_sharding` entries Orbax records for them.

Orbax writes, for each jax.Array, a JSON object naming its sharding (NamedSharding: mesh shape, axis names and
types, partition spec, the device ids of the mesh; SingleDeviceSharding: the device). A restore without a target
puts each array back on that sharding when the devices exist. This module converts both ways; jax is imported only
when a jax.Array or a sharding is actually met, so numpy- and torch-only programs never load it.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any, Optional


def is_jax_array(x: Any) -> bool:
    """A jax.Array (without importing jax: an object of jax's with a `.sharding` and data)."""
    return type(x).__module__.startswith(("jax", "jaxlib")) and hasattr(x, "sharding") and hasattr(x, "__array__")


def jax_loaded() -> bool:
    """Whether the program imported jax (then a restore without a target gives jax.Arrays, as Orbax does)."""
    return "jax" in sys.modules


def _device_str(device: Any) -> str:
    # JAX 0.10 prints CPU devices as TFRT_CPU_<id> or cpu:<id> depending on the version; Orbax stores str(device)
    # and compares after making them cpu:<id>.
    return str(device).replace("TFRT_CPU_", "cpu:")


def to_orbax_json(sharding: Any) -> Optional[str]:
    """The `_sharding` entry Orbax writes for `sharding`, as text; None for a kind Orbax records nothing for."""
    import jax
    if isinstance(sharding, jax.sharding.NamedSharding):
        mesh = sharding.mesh
        data = {
            "sharding_type": "NamedSharding",
            "shape": [int(n) for n in mesh.devices.shape],
            "axis_names": list(mesh.axis_names),
        }
        if getattr(mesh, "axis_types", None) is not None:
            data["axis_types"] = [str(t) for t in mesh.axis_types]
        data["partition_spec"] = [list(p) if isinstance(p, tuple) else p for p in sharding.spec]
        data["device_mesh"] = {"mesh": _device_ids(mesh.devices.tolist())}
        return json.dumps(data)
    if isinstance(sharding, jax.sharding.SingleDeviceSharding):
        return json.dumps({"sharding_type": "SingleDeviceSharding",
                           "device_str": str(next(iter(sharding.device_set)))})
    return None


def _device_ids(nested: Any) -> Any:
    if isinstance(nested, list):
        return [_device_ids(x) for x in nested]
    return {"id": int(nested.id)}


def from_orbax_json(entry: dict, param: str) -> Optional[Any]:
    """The jax sharding an `_sharding` entry describes, on this process's devices; None (with Orbax's warning)
    when it names devices this process does not have, or a kind cairn cannot rebuild."""
    import jax
    import numpy as np
    kind = entry.get("sharding_type")
    try:
        if kind == "NamedSharding":
            by_id = {d.id: d for d in jax.devices()}
            mesh_ids = entry.get("device_mesh", {}).get("mesh")
            if mesh_ids is None:
                devices = np.asarray(jax.devices()[: int(np.prod(entry["shape"]))])
            else:
                devices = np.vectorize(lambda d: by_id[d["id"]], otypes=[object])(np.asarray(mesh_ids, dtype=object))
            devices = devices.reshape(entry["shape"])
            axis_types = None
            if entry.get("axis_types"):
                axis_types = tuple(getattr(jax.sharding.AxisType, t.split(".")[-1]) for t in entry["axis_types"])
            mesh = jax.sharding.Mesh(devices, tuple(entry["axis_names"]), axis_types=axis_types)
            spec = jax.sharding.PartitionSpec(*[tuple(p) if isinstance(p, list) else p
                                                for p in entry["partition_spec"]])
            return jax.sharding.NamedSharding(mesh, spec)
        if kind == "SingleDeviceSharding":
            wanted = entry["device_str"].replace("TFRT_CPU_", "cpu:")
            for device in jax.local_devices():
                if _device_str(device) == wanted:
                    return jax.sharding.SingleDeviceSharding(device)
            raise KeyError(wanted)
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        warnings.warn(f"{param}: its saved sharding ({kind}) names devices this process does not have ({e}); "
                      "restored as a numpy array. Pass a target with shardings to place it.")
        return None
    warnings.warn(f"{param}: cairn cannot rebuild a saved {kind}; restored as a numpy array")
    return None


class SavedShardings:
    """The `_sharding` entries of a checkpoint's items, read (through `cairn info`'s description, so from any
    storage cairn reads) only when a restore without a target needs them."""

    def __init__(self, path: str, item_name: str = "", _description: Optional[dict] = None):
        self._path = path
        self._item_name = item_name
        # Shared by the items of one checkpoint, so that it is described (its metadata read) once.
        self._description = _description if _description is not None else {}

    def item(self, name: str) -> "SavedShardings":
        return SavedShardings(self._path, name, self._description)

    def entries(self) -> dict:
        """{parameter name: Orbax's sharding object} of the item."""
        if not self._description:
            from . import _cairn
            self._description.update(json.loads(_cairn._describe(self._path)))
        for item in self._description.get("items", []):
            if item.get("name", "") == self._item_name:
                return {leaf["name"]: leaf["sharding"] for leaf in item.get("tree", []) if "sharding" in leaf}
        return {}

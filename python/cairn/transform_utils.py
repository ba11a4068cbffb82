"""Orbax's key transformations: restore a checkpoint into a tree whose keys or values differ from the saved ones.

    restored = ckptr.restore(path, args=ocp.args.PyTreeRestore(
        item={'encoder': {'w': ...}, 'head': np.zeros(3)},
        transforms={r'encoder/(.*)': ocp.Transform(original_key=r'params/enc/\\1'),
                    'head': ocp.Transform(use_fallback=True)}))

Keys are '/'-joined paths of the new tree, matched as regular expressions (the whole key); `original_key` may use
the match's groups. Semantics follow Orbax's `apply_transformations`, which this module also provides.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Optional

__all__ = ["Transform", "RestoreTransform", "apply_transformations"]


@dataclasses.dataclass
class Transform:
    """How one key of the new tree is made from the original (saved) tree.

    original_key: the saved key ('/'-joined; regex backreferences such as \\1 allowed); default: the same key.
    use_fallback: take the value from the fallback tree (the new tree's own value when defaulting to the original,
      the original's otherwise).
    value_fn: applied to the original value. multi_value_fn(key, original_tree): computes the value from anything.
    """

    original_key: Optional[str] = None
    use_fallback: bool = False
    value_fn: Optional[Callable[[Any], Any]] = None
    multi_value_fn: Optional[Callable[[str, Any], Any]] = None


@dataclasses.dataclass
class RestoreTransform(Transform):
    """Transform for restores. A restore's multi_value_fn is called as fn(key, original_tree, restore_args of key);
    `multi_value_fn_input_args` ({saved key regex: RestoreArgs}) names the saved keys it reads."""

    multi_value_fn_input_args: Optional[dict] = None


def check_restore_transforms(transforms: Any) -> None:
    """Orbax's rule for restores: a multi_value_fn only in a RestoreTransform that names its inputs."""
    for key, transform in _flatten(transforms, is_leaf=lambda x: isinstance(x, Transform)).items():
        if getattr(transform, "multi_value_fn", None) is None:
            continue
        if not isinstance(transform, RestoreTransform):
            raise ValueError(f"{key}: use RestoreTransform for a multi_value_fn during restore")
        if transform.multi_value_fn_input_args is None:
            raise ValueError(f"{key}: a multi_value_fn needs multi_value_fn_input_args naming the keys it reads")


def with_restore_args(transforms: Any, restore_args: Any) -> Any:
    """`transforms` with each RestoreTransform's multi_value_fn given the restore args of its key (a restore calls
    it with three arguments)."""
    flat_args = _flatten(restore_args, is_leaf=lambda x: not isinstance(x, (dict, list, tuple)))

    def wrap(value: Any, key: str) -> Any:
        if isinstance(value, Transform):
            if isinstance(value, RestoreTransform) and value.multi_value_fn is not None:
                fn = value.multi_value_fn
                return Transform(multi_value_fn=lambda k, tree: fn(k, tree, flat_args.get(k)))
            return value
        if isinstance(value, dict):
            return {k: wrap(v, f"{key}/{k}" if key else str(k)) for k, v in value.items()}
        return value

    return wrap(transforms, "")


def _flatten(tree: Any, prefix: str = "", is_leaf: Callable[[Any], bool] = lambda x: False) -> dict[str, Any]:
    """{'a/b/0': leaf}: dicts by key, lists and tuples by index; empty containers and None are dropped."""
    if is_leaf(tree):
        return {prefix: tree}
    if isinstance(tree, dict):
        items = ((str(k), v) for k, v in tree.items())
    elif isinstance(tree, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(tree))
    elif tree is None:
        return {}
    else:
        return {prefix: tree}
    out = {}
    for key, value in items:
        out.update(_flatten(value, f"{prefix}/{key}" if prefix else key, is_leaf))
    return out


def _rebuild(target: Any, flat: dict[str, Any], prefix: str = "") -> Any:
    """`target`'s structure with each leaf taken from `flat` (by its '/'-joined key)."""
    if isinstance(target, dict):
        return {k: _rebuild(v, flat, f"{prefix}/{k}" if prefix else str(k)) for k, v in target.items()}
    if isinstance(target, (list, tuple)):
        values = [_rebuild(v, flat, f"{prefix}/{i}" if prefix else str(i)) for i, v in enumerate(target)]
        if isinstance(target, tuple):
            return type(target)(*values) if hasattr(target, "_fields") else tuple(values)
        return values
    return flat.get(prefix, target)


def apply_transformations(original_tree: Any, transformations: Any, new_tree: Any,
                          default_to_original: Optional[bool] = True) -> Any:
    """A tree with the structure of `new_tree`, each leaf made by the first transformation whose key (a regex)
    matches its key in full (every matching one is applied in order, so the last wins, as in Orbax); a leaf no
    transformation matches is the original's value under the same key when
    `default_to_original` (else the new tree's own value). ValueError names a key that the original lacks."""
    if not new_tree and not _flatten(new_tree):
        return {}
    original = _flatten(original_tree)
    new = _flatten(new_tree)
    transforms = _flatten(transformations, is_leaf=lambda x: isinstance(x, Transform))
    for key in list(new):
        found = False
        for pattern, transform in transforms.items():
            match = re.fullmatch(pattern, key)
            if not match:
                continue
            found = True
            if transform.use_fallback:
                if not default_to_original:
                    if key not in original:
                        raise ValueError(f"{key} not found in the original tree (use_fallback requested)")
                    new[key] = original[key]
            elif transform.multi_value_fn is not None:
                if transform.value_fn is not None:
                    raise ValueError(f"{key}: a Transform takes value_fn or multi_value_fn, not both")
                new[key] = transform.multi_value_fn(key, original_tree)
            else:
                original_key = key if transform.original_key is None else match.expand(transform.original_key)
                if original_key not in original:
                    raise ValueError(f'Transformation key "{original_key}" (for {key}) not found in the original tree')
                value = original[original_key]
                new[key] = transform.value_fn(value) if transform.value_fn is not None else value
        if not found and key in original and default_to_original:
            new[key] = original[key]
    return _rebuild(new_tree, new)

"""Server-side apply for the local store: a small "managedFields" that a controller can rely on.

Kubernetes tracks, per field manager, the set of fields it applied; an apply replaces the
manager's whole intent: fields it owned and now omits are removed, fields of other managers are
kept, and contested fields either conflict or (with force) change owner. We keep that model with
three simplifications, all harmless for how kaito writes objects:

* ownership is tracked per *leaf path through nested dicts*; every list is one atomic value
  (Kubernetes merges some lists by key, e.g. containers by name) — except
  `metadata.finalizers`, which is a set owned item by item, because the controller and the local
  provisioner add and remove their own finalizers on the same object;
* an empty dict (`emptyDir: {}`) is a leaf that is only created, never used to wipe others' keys;
* the bookkeeping lives beside the object (a hidden column), not in `metadata.managedFields`.

Everything here is pure: the store calls `compute_apply` inside its transaction.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from kaito.cluster.errors import Conflict

FieldPath = tuple[str, ...]
Managed = dict[str, list[list[str]]]  # manager -> list of paths, JSON-friendly

_FINALIZER_ITEM = "finalizers[]"
# Metadata the server owns or that identifies the object; never part of a manager's intent.
_SYSTEM_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)


def compute_leaf_paths(obj: dict[str, Any], *, status: bool) -> set[FieldPath]:
    """The field paths an applied object sets: under `status` only, or everything else."""
    paths: set[FieldPath] = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if status != (key == "status"):
            continue
        if key == "metadata" and isinstance(value, dict):
            for mkey, mval in value.items():
                if mkey in _SYSTEM_METADATA:
                    continue
                if mkey == "finalizers" and isinstance(mval, list):
                    paths.update(("metadata", _FINALIZER_ITEM, str(f)) for f in mval)
                else:
                    _collect(mval, ("metadata", mkey), paths)
            continue
        _collect(value, (key,), paths)
    return paths


def _collect(value: Any, prefix: FieldPath, out: set[FieldPath]) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            _collect(sub, (*prefix, str(key)), out)
    else:
        out.add(prefix)


def _overlaps(a: FieldPath, b: FieldPath) -> bool:
    short = min(len(a), len(b))
    return a[:short] == b[:short]


def _read(obj: dict[str, Any], path: FieldPath) -> tuple[bool, Any]:
    if len(path) == 3 and path[1] == _FINALIZER_ITEM:
        return path[2] in (obj.get("metadata", {}).get("finalizers") or []), path[2]
    node: Any = obj
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _write(obj: dict[str, Any], path: FieldPath, value: Any) -> None:
    if len(path) == 3 and path[1] == _FINALIZER_ITEM:
        finalizers = obj.setdefault("metadata", {}).setdefault("finalizers", [])
        if path[2] not in finalizers:
            finalizers.append(path[2])
        return
    node = obj
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    last = path[-1]
    if value == {} and isinstance(node.get(last), dict):
        return  # an empty-dict leaf never wipes other managers' keys below it
    node[last] = copy.deepcopy(value)


def _remove(obj: dict[str, Any], path: FieldPath) -> None:
    if len(path) == 3 and path[1] == _FINALIZER_ITEM:
        meta = obj.get("metadata", {})
        finalizers = [f for f in meta.get("finalizers") or [] if f != path[2]]
        if finalizers:
            meta["finalizers"] = finalizers
        else:
            meta.pop("finalizers", None)
        return
    trail: list[tuple[dict[str, Any], str]] = []
    node: Any = obj
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return
        trail.append((node, key))
        node = node[key]
    parent, key = trail.pop()
    del parent[key]
    # Prune parents emptied by the removal, but never the top-level sections themselves.
    while len(trail) > 1 and not trail[-1][0][trail[-1][1]]:
        parent, key = trail.pop()
        del parent[key]


def compute_apply(
    current: dict[str, Any],
    managed: Managed,
    applied: dict[str, Any],
    manager: str,
    *,
    force: bool,
    status: bool,
) -> tuple[dict[str, Any], Managed]:
    """Merge `applied` into `current` as `manager`'s whole intent (for `status` or the rest).

    Returns the new object and the new ownership map; neither input is mutated. Raises
    `Conflict` when `force` is False and another manager owns a field set to a different value.
    """
    result = copy.deepcopy(current)
    new_paths = compute_leaf_paths(applied, status=status)
    owned = {m: {tuple(p) for p in paths} for m, paths in managed.items()}
    mine_before = {p for p in owned.get(manager, set()) if (p[0] == "status") == status}

    for other, paths in owned.items():
        if other == manager:
            continue
        for path in list(paths):
            contested = [p for p in new_paths if _overlaps(p, path)]
            if not contested:
                continue
            same_value = path in new_paths and _read(current, path) == _read(applied, path)
            if same_value:
                continue  # shared ownership, as Kubernetes does for equal values
            if not force:
                raise Conflict(f"field {'.'.join(path)} is owned by field manager {other!r}")
            paths.discard(path)

    still_owned = set().union(*(p for m, p in owned.items() if m != manager)) if owned else set()
    for path in mine_before - new_paths:
        if path not in still_owned:
            _remove(result, path)
    for path in sorted(new_paths):
        _, value = _read(applied, path)
        _write(result, path, value)

    keep_mine = {p for p in owned.get(manager, set()) if (p[0] == "status") != status}
    owned[manager] = keep_mine | new_paths
    return result, _to_json(owned)


def _to_json(owned: dict[str, Iterable[FieldPath]]) -> Managed:
    return {m: sorted(list(p) for p in paths) for m, paths in sorted(owned.items()) if paths}

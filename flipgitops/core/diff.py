"""Desired vs observed as identity-keyed `Change` records, read off the facts table's views.

deepdiff is used here and nowhere else, and only over the views of `core/facts.py`, so the
changes a reviewer reads and the actions the planner derives come from the same values.
Equal branches are dropped before deepdiff sees them: its per-node cost is high and in a large
environment almost everything is equal.
"""

from __future__ import annotations

import re
from typing import Any

from deepdiff import DeepDiff

from flipgitops.core.facts import views
from flipgitops.core.world import World
from flipgitops.model.plan import Change

View = dict[str, Any]
_MISSING = object()
_OPS: dict[str, Any] = {
    "values_changed": "change",
    "type_changes": "change",
    "dictionary_item_added": "add",
    "dictionary_item_removed": "remove",
    "iterable_item_added": "change",
    "iterable_item_removed": "change",
}


def diff(world: World) -> tuple[Change, ...]:
    """Every difference, observed (before) → desired (after), sorted by path."""
    want, have = views(world)
    have, want = _differing(have, want)
    tree = DeepDiff(have, want, view="tree", verbose_level=2, threshold_to_diff_deeper=0,
                    ignore_order=False)
    changes: list[Change] = []
    for report, levels in tree.items():
        op = _OPS.get(report)
        if op is None:
            raise ValueError(f"unexpected deepdiff report {report!r} over normalised views")
        for level in levels:
            parts = level.path(output_format="list")
            if report.startswith("iterable_item"):
                parts = parts[:-1]  # report the whole list as one change
                before, after = _at(have, parts), _at(want, parts)
            else:
                before = None if op == "add" else level.t1
                after = None if op == "remove" else level.t2
            changes.append(Change(op=op, path=".".join(str(p) for p in parts),
                                  before=shorten(before), after=shorten(after)))
    unique = {(c.path, c.op): c for c in changes}
    return tuple(sorted(unique.values(), key=lambda c: c.path))


_HEX64 = re.compile(r"[0-9a-f]{64}")


def shorten(value: Any) -> Any:
    """A full sha256 anywhere in a change value becomes ``sha256:<12 hex>``: a plan file
    holds no more of a key's hash than that (and round-trips exactly)."""
    if isinstance(value, str):
        return f"sha256:{value[:12]}" if _HEX64.fullmatch(value) else value
    if isinstance(value, dict):
        return {k: shorten(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [shorten(v) for v in value]
    return value


def _at(tree: Any, parts: list[Any]) -> Any:
    for part in parts:
        tree = tree[part]
    return tree


def _differing(have: View, want: View) -> tuple[View, View]:
    h: View = {}
    w: View = {}
    for key in have.keys() | want.keys():
        a, b = have.get(key, _MISSING), want.get(key, _MISSING)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            a, b = _differing(a, b)
        if a is not _MISSING:
            h[key] = a
        if b is not _MISSING:
            w[key] = b
    return h, w

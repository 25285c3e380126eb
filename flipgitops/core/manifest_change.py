"""The reviewed change itself: manifest at a base revision vs the working tree, as Changes.

``plan --base`` shows this above the plan so a reviewer sees "Trust_2.public_ip moved" next to
the actions it causes. Trusts are keyed by name (not list index) so inserting one trust in
the middle of the list reads as one addition, not a cascade of edits.
"""

from __future__ import annotations

from typing import Any

from flipgitops.model.manifest import Manifest
from flipgitops.model.plan import Change


def _normalise(manifest: Manifest) -> dict[str, Any]:
    data = manifest.model_dump(mode="json")
    data["trusts"] = {t["name"]: t for t in data["trusts"]}
    return data


def _walk(before: Any, after: Any, path: str, out: list[Change]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in after:
                out.append(Change(op="remove", path=sub, before=before[key]))
            elif key not in before:
                out.append(Change(op="add", path=sub, after=after[key]))
            else:
                _walk(before[key], after[key], sub, out)
    elif before != after:
        out.append(Change(op="change", path=path, before=before, after=after))


def manifest_change(old: Manifest | None, new: Manifest) -> tuple[Change, ...]:
    """Changes from ``old`` to ``new``; a missing ``old`` is a new environment (one add)."""
    if old is None:
        return (Change(op="add", path="environment", after=new.environment),)
    out: list[Change] = []
    _walk(_normalise(old), _normalise(new), "", out)
    return tuple(out)

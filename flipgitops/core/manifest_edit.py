"""Edit a manifest's YAML text in place: comments, key order and quoting survive.

`flipgitops adopt --write` writes the manifest that describes what runs, and a reviewer must
see only what changed, so the file is edited with ruamel.yaml's round-trip loader rather
than regenerated: values are replaced where they stand, a new key is inserted where the
manifest models declare it (after its nearest preceding sibling), a removed key takes its
comment with it, and a mapping value (a trust's `settings`) is merged key by key. The
indentation of sequences is detected from the file, so a `  - name:` file stays one.

Pure: text in, text out (the caller validates the result with `core/parse.py`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from flipgitops.core.adopt import REMOVE, Edit
from flipgitops.model import manifest as models

# Which model a mapping at a path holds, for the order of keys (None: sorted keys).
_MODELS: dict[tuple[str, ...], type[BaseModel] | None] = {
    (): models.Manifest, ("aws",): models.AwsConfig, ("state",): models.StateConfig,
    ("flip",): models.FlipRelease, ("hub",): models.Hub, ("hub", "images"): models.Images,
    ("hub", "ecs"): models.Ecs, ("hub", "fl_server"): models.FlServer,
    ("hub", "fl_kits"): models.FlKits, ("hub", "database"): models.Database,
    ("hub", "cognito"): models.Cognito, ("trusts", "*"): models.Trust,
    ("trusts", "*", "host"): models.Host, ("trusts", "*", "settings"): None,
}


class EditError(ValueError):
    """An edit that does not fit the file (a path that is not a mapping there)."""


def _yaml(text: str) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    # ruamel folds long plain scalars at `width`: the file's own longest line keeps a file
    # written at 80 columns folded as it was and a wider one unfolded.
    yaml.width = max([80, *(len(line) for line in text.splitlines())])
    mapping, sequence, offset = detect_indent(text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def detect_indent(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) as ruamel names them, from the first nested key and the
    first sequence item under a key."""
    lines = text.splitlines()
    mapping = 2
    for line in lines:
        m = re.match(r"^( +)[A-Za-z_][\w-]*:", line)
        if m:
            mapping = len(m.group(1))
            break
    for i, line in enumerate(lines):
        m = re.match(r"^( *)- ", line)
        if not m or i == 0:
            continue
        parent = next((p for p in reversed(lines[:i]) if p.strip() and not
                       p.lstrip().startswith("#")), "")
        pm = re.match(r"^( *)[A-Za-z_][\w-]*:\s*$", parent)
        if pm:
            offset = len(m.group(1)) - len(pm.group(1))
            return mapping, offset + 2, offset
    return mapping, mapping, 0


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """``text`` with ``edits`` applied; unchanged text when there are none."""
    if not edits:
        return text
    yaml = _yaml(text)
    head, body = _split_header(text)
    doc = yaml.load(body)
    if not isinstance(doc, CommentedMap):
        raise EditError("the manifest is not a YAML mapping")
    for e in edits:
        _apply(doc, e.path, e.value)
    out = io.StringIO()
    yaml.dump(doc, out)
    return head + out.getvalue()


def _split_header(text: str) -> tuple[str, str]:
    """Leading comment lines (the schema comment) kept byte for byte."""
    lines = text.splitlines(keepends=True)
    n = 0
    while n < len(lines) and (lines[n].startswith("#") or not lines[n].strip()):
        n += 1
    return "".join(lines[:n]), "".join(lines[n:])


def _model_path(path: Sequence[str | int]) -> tuple[str, ...]:
    return tuple("*" if isinstance(p, int) else p for p in path)


def _order(path: Sequence[str | int]) -> list[str] | None:
    model = _MODELS.get(_model_path(path))
    return list(model.model_fields) if model is not None else None


def _apply(doc: CommentedMap, path: Sequence[str | int], value: Any) -> None:
    node: Any = doc
    for depth, part in enumerate(path[:-1]):
        if isinstance(part, int):
            if not isinstance(node, CommentedSeq) or part >= len(node):
                raise EditError(f"{_dotted(path[:depth + 1])} is not in the file")
            node = node[part]
            continue
        if not isinstance(node, CommentedMap):
            raise EditError(f"{_dotted(path[:depth])} is not a mapping")
        if part not in node or node[part] is None:
            if value is REMOVE:
                return
            _insert(node, part, CommentedMap(), _order(path[:depth]))
        node = node[part]
    key = path[-1]
    if not isinstance(key, str) or not isinstance(node, CommentedMap):
        raise EditError(f"{_dotted(path[:-1])} is not a mapping")
    if value is REMOVE:
        if key in node:
            del node[key]
        return
    if isinstance(value, Mapping):
        current = node.get(key)
        if isinstance(current, CommentedMap):
            _merge(current, value)
            return
        fresh = CommentedMap()
        for k in sorted(value):
            fresh[k] = value[k]
        value = fresh
    if key in node:
        node[key] = value
    else:
        _insert(node, key, value, _order(path[:-1]))


def _merge(current: CommentedMap, value: Mapping[str, Any]) -> None:
    for k in [k for k in current if k not in value]:
        del current[k]
    for k in sorted(value):
        if k in current:
            if current[k] != value[k]:
                current[k] = value[k]
        else:
            _insert(current, k, value[k], None)


def _insert(node: CommentedMap, key: str, value: Any, order: list[str] | None) -> None:
    """Insert after the last existing key that the model declares before ``key`` (sorted
    keys when there is no model); at the start when none does."""
    keys = list(node)
    if order is None:
        position = sum(1 for k in keys if str(k) < key)
    elif key in order:
        before = set(order[:order.index(key)])
        position = max((i + 1 for i, k in enumerate(keys) if k in before), default=0)
    else:
        position = len(keys)
    node.insert(position, key, value)


def _dotted(path: Sequence[str | int]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else p for p in path) or "(top)"

"""parse_manifest never raises anything but ManifestError, whatever text it is given.

Four sources of input: arbitrary text, YAML-ish documents generated as data and dumped,
structural mutations of a valid manifest (keys deleted, values replaced by random types), and
character-level mutations of a valid manifest's text. Every failure must be a ManifestError
whose problems all point at a real position (line >= 1, col >= 1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from flipgitops.core.parse import parse_manifest
from flipgitops.errors import ManifestError
from flipgitops.model.manifest import Manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
FILENAME = "environments/dev.yaml"
VALID_TEXT = (REPO_ROOT / "environments" / "dev.yaml").read_text()
# The structural mutations start from a small manifest: each example costs a dump and a
# parse, and a short document keeps the ci profile's 2000 examples around a minute.
BASE_DATA: dict[str, Any] = {
    "version": 1,
    "environment": "dev",
    "aws": {"account_id": "123456789012", "region": "eu-west-2"},
    "state": {"bucket": "flip-gitops-state-dev"},
    "hub": {"domain": "dev.example.org", "images": {"hub_tag": "v2.3.0", "fl_tag": "v2.3.0"},
            "database": {"deletion_protection": False}},
    "trusts": [{"name": "Trust_1", "kind": "on-prem", "public_ip": "203.0.113.10",
                "fl_kit_slot": "Trust_1",
                "host": {"connection": "local", "ssh_key": "env:K", "flip_root": "/tmp/t1"}},
               {"name": "Trust_2", "kind": "tre", "public_ip": "198.51.100.2",
                "fl_kit_slot": "Trust_2"}],
    "policy": {"immutable_tags": True},
}
KEYS = sorted({"version", "environment", "aws", "hub", "trusts", "name", "public_ip",
               "host", "policy", "immutable_tags", "deletion_protection", "<<"})


def check(text: str) -> None:
    try:
        result = parse_manifest(text, FILENAME)
    except ManifestError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.line >= 1 and problem.col >= 1, problem
            assert problem.file == FILENAME
            str(problem).encode("utf-8", "backslashreplace")
        return
    assert isinstance(result, Manifest)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**40, max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["latest", "v2.3.0", "10.1.2.3", "203.0.113.10", "prod", "yes", "~",
                     "-----BEGIN " + "RSA PRIVATE KEY-----", "env:X", "on-prem", "tre", ""]),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=12), st.integers(), st.booleans())
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)
small_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=6,
)


def dump(data: Any, style: str) -> str:
    """Serialise with libyaml (PyYAML's C dumper, fast) so examples are cheap to make."""
    if style == "json":
        return json.dumps(data, default=str)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(data, Dumper=dumper, default_flow_style=style == "flow"))


@given(st.text())
def test_arbitrary_text(text: str) -> None:
    check(text)


@given(documents, st.sampled_from(["block", "flow", "json"]))
def test_generated_documents(data: Any, style: str) -> None:
    try:
        text = dump(data, style)
    except Exception:  # the dumper refuses some generated keys; that is not our parser
        return
    check(text)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


PATHS = _paths(BASE_DATA)


@given(st.data(), st.sampled_from(["block", "flow", "json"]))
def test_mutated_valid_manifest(data: st.DataObject, style: str) -> None:
    doc = json.loads(json.dumps(BASE_DATA))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4), label="mutations")):
        paths = _paths(doc)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        if data.draw(st.booleans(), label="delete"):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(small_values, label="value")
        if data.draw(st.booleans(), label="add key") and isinstance(parent, dict):
            parent[data.draw(keys, label="new key")] = data.draw(scalars, label="new value")
    try:
        text = dump(doc, style)
    except Exception:
        return
    check(text)


TOKENS = st.sampled_from(
    [*" \t\n:-[]{}&*!|>'\"#,?%@`", "a", "1", "\x00", "é", "<<: ", "!!python/name:x ", "&a ",
     "*a", "0x", "2001-02-30", "9" * 50])


BASE_TEXT = "# yaml-language-server: $schema=../schemas/x.json\n" + dump(BASE_DATA, "block")


@given(st.data())
def test_mutated_valid_text(data: st.DataObject) -> None:
    text = BASE_TEXT
    for _ in range(data.draw(st.integers(min_value=1, max_value=5), label="edits")):
        at = data.draw(st.integers(min_value=0, max_value=len(text)), label="at")
        cut = data.draw(st.integers(min_value=0, max_value=20), label="cut")
        insert = "".join(data.draw(st.lists(TOKENS, max_size=4), label="insert"))
        text = text[:at] + insert + text[at + cut:]
    check(text)


def test_the_unmutated_base_is_valid() -> None:
    assert isinstance(parse_manifest(VALID_TEXT, FILENAME), Manifest)
    for style in ("block", "flow", "json"):
        assert isinstance(parse_manifest(dump(BASE_DATA, style), FILENAME), Manifest)
    assert PATHS, "the base manifest has paths to mutate"

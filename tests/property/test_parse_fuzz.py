"""parse_manifest never raises anything but ManifestError, whatever text it is given.

One property (docs/architecture.md §8), fed from every kind of input a manifest can arrive as:
- arbitrary text, and YAML-ish documents generated as data and dumped (block, flow, JSON);
- structural mutations of a small valid manifest (keys deleted, values replaced by random
  types) and character-level edits of its text (YAML punctuation, tags, anchors, NULs);
- damage to the development manifest ``tests/fixtures/manifests/dev.yaml``, the way an
  editor, a bad merge or a careless hand produce it: keys removed, added or renamed to near
  misses, values replaced, keys duplicated, odd unicode (line and paragraph separators,
  BOMs, bidi overrides, surrogate escapes), indentation damage, lines dropped, doubled,
  swapped, truncation;
- hostile text: template syntax, alias bombs and self-referencing aliases, deep nesting,
  huge numbers, lone surrogates, raw or escaped.

Every failure must be a ManifestError whose problems all carry the file name, a position
inside the text and a message, and whose text can be printed as UTF-8. The number of
examples comes from the hypothesis profile in tests/conftest.py (`dev` locally, `ci` in CI);
nothing here overrides it. The generated-input tests are marked slow (see FUZZ), so the
PR lane keeps the arbitrary-text test and the pinned cases at the end, which hold one
example of each damage kind to the exact problem it must produce.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event, given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from flipgitops.core.parse import parse_manifest
from flipgitops.errors import ManifestError
from flipgitops.model.manifest import Manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
FILENAME = "environments/dev.yaml"
# A development manifest kept with the tests (environments/ holds real environments only).
VALID_TEXT = (REPO_ROOT / "tests" / "fixtures" / "manifests" / "dev.yaml").read_text(
    encoding="utf-8")
SCHEMA_LINE = VALID_TEXT.splitlines()[0]
# Under the ci profile (2,000 examples) each generated-input test below takes 10-60 s on
# one core, so they leave the PR lane (`-m "not slow"`); the full suite runs them.
FUZZ = pytest.mark.slow


def check(text: str) -> Manifest | ManifestError:
    """The property itself; returns what happened so callers can assert more."""
    try:
        result = parse_manifest(text, FILENAME)
    except ManifestError as exc:
        assert exc.problems, "a ManifestError without problems"
        # YAML breaks lines on fewer characters than str.splitlines (a superset), so no
        # real position can lie beyond one line past the last splitlines line.
        last_line = len(text.splitlines()) + 1
        for problem in exc.problems:
            assert problem.file == FILENAME, problem
            assert problem.line >= 1 and problem.col >= 1, problem
            assert problem.line <= last_line, (problem, last_line)
            assert problem.message.strip(), problem
        str(exc).encode("utf-8")  # printable as it is: no lone surrogate reaches a message
        return exc
    assert isinstance(result, Manifest), type(result)
    return result


# -- small manifest: generated documents, structural and character mutations ----------------

# The structural mutations start from a small manifest: each example costs a dump and a
# parse, and a short document keeps the ci profile's examples around a minute.
BASE_DATA: dict[str, Any] = {
    "version": 1,
    "environment": "dev",
    "aws": {"account_id": "123456789012", "region": "eu-west-2"},
    "state": {"bucket": "flip-gitops-state-dev"},
    "flip": {"checkout": "../FLIP", "ref": "v2.3.0"},
    "hub": {"domain": "dev.example.org", "images": {"hub_tag": "v2.3.0", "fl_tag": "v2.3.0"},
            "fl_kits": {"bucket": "flipdev-aicentre", "date": "2025-06-01"},
            "database": {"deletion_protection": False}},
    "trusts": [{"name": "Trust_1", "code": "GSTT", "kind": "on-prem",
                "public_ip": "203.0.113.10", "fl_kit_slot": "Trust_1",
                "host": {"connection": "local", "ssh_key": "env:K", "flip_root": "/tmp/t1"},
                "settings": {"NUM_AVAILABLE_GPUS": "1"}},
               {"name": "Trust_2", "code": "KCH", "kind": "tre", "public_ip": "198.51.100.2",
                "fl_kit_slot": "Trust_2"}],
    "policy": {"immutable_tags": True},
}
KEYS = sorted({"version", "environment", "aws", "flip", "hub", "trusts", "name", "code",
               "public_ip", "host", "policy", "immutable_tags", "deletion_protection",
               "settings", "credentials", "flip_root", "<<"})
HOSTILE = ["{{ lookup('pipe', 'id') }}", "{% raw %}", "{#", "\u202e", "\u200b", "\x00",
           "Trust_1\n", "v2.3.0\n", " 203.0.113.10", "/", "../../etc", "/opt/../etc",
           "-oProxyCommand=x", "--upload-pack=x"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**40, max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["latest", "v2.3.0", "10.1.2.3", "203.0.113.10", "prod", "yes", "~",
                     "-----BEGIN " + "RSA PRIVATE KEY-----", "env:X", "on-prem", "tre", "",
                     "no", "1", "secret", "database", *HOSTILE]),
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


def dump_fast(data: Any, style: str) -> str:
    """Serialise with libyaml (PyYAML's C dumper, fast) so examples are cheap to make."""
    if style == "json":
        return json.dumps(data, default=str)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(data, Dumper=dumper, default_flow_style=style == "flow"))


@given(st.text())
def test_arbitrary_text(text: str) -> None:
    check(text)


@FUZZ
@given(st.text(alphabet=st.characters(categories=["Cs", "Cc", "Cf", "Zl", "Zp", "Ll"])))
def test_arbitrary_text_with_surrogates_and_controls(text: str) -> None:
    check(text)


@FUZZ
@given(documents, st.sampled_from(["block", "flow", "json"]))
def test_generated_documents(data: Any, style: str) -> None:
    try:
        text = dump_fast(data, style)
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


@FUZZ
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
        text = dump_fast(doc, style)
    except Exception:
        return
    check(text)


TOKENS = st.sampled_from(
    [*" \t\n:-[]{}&*!|>'\"#,?%@`", "a", "1", "\x00", "é", "<<: ", "!!python/name:x ", "&a ",
     "*a", "0x", "2001-02-30", "9" * 50, '"\\ud800"', "\\udc80", "{{", "{%", "{#", "&b [*b]",
     "\ufeff", "\u2028"])


BASE_TEXT = "# yaml-language-server: $schema=../schemas/x.json\n" + dump_fast(BASE_DATA, "block")


@FUZZ
@given(st.data())
def test_mutated_valid_text(data: st.DataObject) -> None:
    text = BASE_TEXT
    for _ in range(data.draw(st.integers(min_value=1, max_value=5), label="edits")):
        at = data.draw(st.integers(min_value=0, max_value=len(text)), label="at")
        cut = data.draw(st.integers(min_value=0, max_value=20), label="cut")
        insert = "".join(data.draw(st.lists(TOKENS, max_size=4), label="insert"))
        text = text[:at] + insert + text[at + cut:]
    check(text)


def _load(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


# A tiny block-style emitter: ruamel's dumper costs more than the parse under test, and the
# 2,000-example run must stay around a minute. Strings that YAML would read as something
# else (yes, 1e3, ~, "a: b", ...) are double-quoted (JSON strings are YAML strings).
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@+-]*|\d+(\.\d+){2,}")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text, ensure_ascii=False)


def _emit(prefix: str, value: Any, indent: int) -> list[str]:
    """Lines for ``value`` placed after ``prefix`` (a ``key:`` or ``-`` at ``indent``)."""
    inner = " " * (indent + 2)
    if isinstance(value, dict) and value:
        out = [prefix]
        for key, item in value.items():
            out += _emit(f"{inner}{_scalar(key)}:", item, indent + 2)
        return out
    if isinstance(value, list) and value:
        out = [prefix]
        for item in value:
            if isinstance(item, dict) and item:
                lines = _emit("", item, indent + 2)[1:]  # the mapping at indent + 4
                lines[0] = f"{inner}- " + lines[0].lstrip(" ")
                out += lines
            else:
                out += _emit(f"{inner}-", item, indent + 2)
        return out
    empty = "{}" if isinstance(value, dict) else "[]" if isinstance(value, list) else None
    return [f"{prefix} {empty if empty is not None else _scalar(value)}"]


def dump(data: Any) -> str:
    """``data`` as block YAML under the schema comment line, like a hand-written manifest."""
    if isinstance(data, dict) and data:
        lines = []
        for key, value in data.items():
            lines += _emit(f"{_scalar(key)}:", value, 0)
        body = "\n".join(lines)
    else:
        body = "\n".join(_emit("---", data, -2))
    return SCHEMA_LINE + "\n" + body + "\n"


DEV_DATA: dict[str, Any] = _load(VALID_TEXT)


def _key_names(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            found.add(str(key))
            found |= _key_names(value)
    elif isinstance(node, list):
        for value in node:
            found |= _key_names(value)
    return found


FIELD_NAMES = sorted(_key_names(DEV_DATA))


# -- the dev fixture: data-level damage --------------------------------------------------------

yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**30, max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from([
        "", "~", "null", "yes", "no", "on", "off", "0x1F", "0o17", "1_000", ".inf", "-.nan",
        "2001-02-30", "2026-11-22T04:50:00Z", "latest", "prod", "v2.3", "v2.3.0", "sha-abc1234",
        "10.0.0.1", "100.64.1.1", "0.0.0.0", "203.0.113.300", "203.0.113.10",
        "env:TRUST_1_SSH_KEY", "ssm:/x", "-----BEGIN " + "OPENSSH PRIVATE KEY-----",
        "AKIA" + "IOSFODNN7EXAMPLE", "x" * 300, "Trust_1", "on-prem", "tre", "local", "ssh",
        "aws-api", "terraform", "nvflare", "flower", "required", "decommissioned",
    ]),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8)), inner,
                      max_size=3),
    max_leaves=8,
)


def _containers(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every mapping and list in ``node`` (the root included)."""
    found = [path] if isinstance(node, dict | list) else []
    children = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for key, value in children:
        found += _containers(value, (*path, key))
    return found


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def _near_miss(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from([
        name.upper(), name.capitalize(), name + "s", name[:-1] or "x", name.replace("_", "-"),
        name.replace("_", ""), f" {name}", f"{name} ", name + "\u200b", "_" + name,
    ])


@st.composite
def damaged_data(draw: st.DrawFn) -> Any:
    doc = json.loads(json.dumps(DEV_DATA))
    for _ in range(draw(st.integers(min_value=1, max_value=4), label="data edits")):
        path = draw(st.sampled_from(_containers(doc)), label="container")
        node = _at(doc, path)
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        op = draw(st.sampled_from(["remove", "add", "rename", "replace"]), label="op")
        if op == "add" or not keys:
            if isinstance(node, dict):
                key = draw(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=10)))
                node[key] = draw(yaml_values, label="added value")
            else:
                node.append(draw(yaml_values, label="appended item"))
            continue
        key = draw(st.sampled_from(keys), label="key")
        if op == "remove":
            del node[key]
        elif op == "rename" and isinstance(node, dict):
            new = draw(st.one_of(_near_miss(str(key)), st.sampled_from(FIELD_NAMES)))
            node[new] = node.pop(key)
        else:
            node[key] = draw(yaml_values, label="replacement")
    return doc


# -- text-level damage -----------------------------------------------------------------------

KEY_LINE = re.compile(r"^(\s*)(- )?([^\s#:][^:#]*):(\s|$)")
odd_chars = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(["\t", "\r", "\r\n", "\x00", "\x85", "\u2028", "\u2029", "\ufeff",
                     "\u200b", "\u202e", "\x1b", "\x7f", "\ud7ff", "\U0001f600", "é", ":",
                     "- ", "{", "}", "[", "]", "&a ", "*a", "!!binary ", "<<: *a", "? ",
                     "|", ">", "'", '"', "#", "%YAML 1.1\n", "---\n", "...\n"]),
)


@st.composite
def damaged_text(draw: st.DrawFn, text: str) -> str:
    lines = text.split("\n")
    for _ in range(draw(st.integers(min_value=0, max_value=4), label="text edits")):
        if not lines:
            break
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1), label="line")
        op = draw(st.sampled_from(
            ["duplicate_key", "duplicate_key", "unicode", "indent", "tabs", "drop_line",
             "double_line", "swap_lines", "truncate"]), label="text op")
        line = lines[i]
        if op == "duplicate_key":
            keyed = [j for j, ln in enumerate(lines) if KEY_LINE.match(ln)]
            if not keyed:
                continue
            j = draw(st.sampled_from(keyed), label="keyed line")
            m = KEY_LINE.match(lines[j])
            assert m is not None
            indent = m.group(1) + ("  " if m.group(2) else "")
            value = draw(st.sampled_from(["", " 1", " dup", " {}", " []", " null"]))
            # The copy goes after the line's own block, so it lands in the same mapping.
            k = j + 1
            while k < len(lines) and (not lines[k].strip()
                                      or len(lines[k]) - len(lines[k].lstrip()) > len(indent)):
                k += 1
            lines.insert(k, f"{indent}{m.group(3)}:{value}")
        elif op == "unicode":
            at = draw(st.integers(min_value=0, max_value=len(line)), label="column")
            insert = "".join(draw(st.lists(odd_chars, min_size=1, max_size=3)))
            lines[i] = line[:at] + insert + line[at:]
        elif op == "indent":
            delta = draw(st.sampled_from([-4, -3, -2, -1, 1, 2, 3, 4]), label="delta")
            lines[i] = " " * delta + line if delta > 0 else line[min(-delta, len(line)
                                                                    - len(line.lstrip())):]
        elif op == "tabs":
            stripped = line.lstrip(" ")
            lines[i] = "\t" * ((len(line) - len(stripped)) // 2 or 1) + stripped
        elif op == "drop_line":
            del lines[i]
        elif op == "double_line":
            lines.insert(i, line)
        elif op == "swap_lines":
            j = draw(st.integers(min_value=0, max_value=len(lines) - 1), label="other line")
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines = lines[:i]
    return "\n".join(lines)


@st.composite
def damaged_manifests(draw: st.DrawFn) -> str:
    """Data damage (or none), dumped as YAML, then text damage (or none)."""
    data = draw(damaged_data(), label="data") if draw(st.booleans(), label="damage data") \
        else DEV_DATA
    try:
        text = dump(data)
    except Exception:  # the dumper refuses some generated keys; that is not our parser
        text = VALID_TEXT
    if draw(st.booleans(), label="original text") and data is DEV_DATA:
        text = VALID_TEXT  # keep the comments and flow mappings of the real file
    return draw(damaged_text(text), label="text")


@FUZZ
@given(damaged_manifests())
def test_damaged_manifests_parse_or_fail_with_located_problems(text: str) -> None:
    outcome = check(text)
    event("valid" if isinstance(outcome, Manifest) else "rejected")


# -- one pinned example per damage kind ------------------------------------------------------


def problems_of(text: str) -> list[tuple[int, int, str, str]]:
    outcome = check(text)
    assert isinstance(outcome, ManifestError), "this damage must be rejected"
    return [(p.line, p.col, p.location, p.message) for p in outcome.problems]


def line_of(text: str, needle: str, start: int = 0) -> int:
    return text.count("\n", 0, text.index(needle, start)) + 1


def test_the_undamaged_bases_are_valid() -> None:
    for style in ("block", "flow", "json"):
        assert isinstance(parse_manifest(dump_fast(BASE_DATA, style), FILENAME), Manifest)
    assert isinstance(check(BASE_TEXT), Manifest)
    assert _paths(BASE_DATA), "the small manifest has paths to mutate"
    assert isinstance(check(VALID_TEXT), Manifest)
    assert _load(dump(DEV_DATA)) == DEV_DATA, "the emitter must round-trip"
    assert isinstance(check(dump(DEV_DATA)), Manifest)
    assert len(FIELD_NAMES) > 30, FIELD_NAMES


def test_duplicated_key_is_reported_at_the_duplicate() -> None:
    text = VALID_TEXT.replace("  fl_backend: nvflare\n",
                              "  fl_backend: nvflare\n  fl_backend: flower\n")
    found = problems_of(text)
    dup_line = line_of(text, "  fl_backend: flower")
    assert any(line == dup_line and "duplicate" in msg.lower() for line, _, _, msg in found), \
        found


def test_renamed_key_is_reported_where_it_is() -> None:
    text = VALID_TEXT.replace("    instance_class:", "    instanceClass:")
    found = problems_of(text)
    assert any(line == line_of(text, "instanceClass") and col == 5
               for line, col, _, _ in found), found


def test_replaced_value_is_reported_at_the_value() -> None:
    text = VALID_TEXT.replace("    port: 8002", "    port: [1, 2]")
    found = problems_of(text)
    assert any(line == line_of(text, "port: [1, 2]") and "port" in loc
               for line, _, loc, _ in found), found


def test_indentation_damage_is_reported_inside_the_file() -> None:
    text = VALID_TEXT.replace("    region: eu-west-2", "      region: eu-west-2", 1)
    text = text.replace("  region: eu-west-2", "   region: eu-west-2", 1)
    found = problems_of(text)
    assert all(1 <= line <= len(text.splitlines()) + 1 for line, *_ in found), found


def test_unicode_damage_is_located() -> None:
    text = VALID_TEXT.replace("environment: dev", "environment: dev\u202e\x00")
    found = problems_of(text)
    assert any(line == line_of(text, "environment: dev") for line, *_ in found), found


def test_hostile_text_in_the_real_manifest_is_located() -> None:
    text = VALID_TEXT.replace("region: London", "region: \"{{ lookup('pipe', 'id') }}\"")
    text = text.replace("flip_root: /tmp/flipgitops-dev/Trust_2", "flip_root: /tmp/../etc")
    found = problems_of(text)
    assert [(line, loc) for line, _, loc, _ in found] == [
        (line_of(text, "region: \"{{"), "trusts[0].region"),
        (line_of(text, "flip_root: /tmp/../etc"), "trusts[1].host.flip_root")]
    assert "Jinja2" in found[0][3] and "'..'" in found[1][3]


def test_an_alias_bomb_appended_to_the_real_manifest_is_refused() -> None:
    bomb = "\n".join(["b0: &b0 [x, x, x, x, x, x, x, x, x, x]"] + [
        f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 10)}]" for i in range(1, 7)])
    found = problems_of(VALID_TEXT + bomb + "\n")
    assert len(found) == 1 and "alias bomb" in found[0][3]

"""Manifest fuzzing: damaged but plausible manifests are parsed or rejected with locations.

What a reviewer's editor, a bad merge or a careless hand produce is close to a valid file:
so every example starts from the real ``environments/dev.yaml`` and damages it, first as data
(keys removed, added, renamed to near-misses, values replaced by random YAML scalars, lists
and maps), then as text (duplicated keys, random unicode including line-break and control
characters, indentation damage, lines dropped, doubled or swapped, truncation). For every
example `parse_manifest` must return a `Manifest` or raise `ManifestError` whose problems
all carry the file name and a position inside the text, never any other exception.

HYPOTHESIS_PROFILE=ci runs 2,000 examples (the profile in conftest.py); the deterministic
cases at the end pin one example of each damage kind to the exact problem it must produce.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from flipgitops.core.parse import parse_manifest
from flipgitops.errors import ManifestError
from flipgitops.model.manifest import Manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
FILENAME = "environments/dev.yaml"
VALID_TEXT = (REPO_ROOT / "environments" / "dev.yaml").read_text(encoding="utf-8")
SCHEMA_LINE = VALID_TEXT.splitlines()[0]


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


BASE_DATA: dict[str, Any] = _load(VALID_TEXT)


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


FIELD_NAMES = sorted(_key_names(BASE_DATA))


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
        str(exc).encode("utf-8", "backslashreplace")
        return exc
    assert isinstance(result, Manifest), type(result)
    return result


# -- data-level damage -----------------------------------------------------------------------

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
    doc = json.loads(json.dumps(BASE_DATA))
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
        else BASE_DATA
    try:
        text = dump(data)
    except Exception:  # the dumper refuses some generated keys; that is not our parser
        text = VALID_TEXT
    if draw(st.booleans(), label="original text") and data is BASE_DATA:
        text = VALID_TEXT  # keep the comments and flow mappings of the real file
    return draw(damaged_text(text), label="text")


@settings(print_blob=True)
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


def test_the_undamaged_base_is_valid() -> None:
    assert isinstance(check(VALID_TEXT), Manifest)
    assert _load(dump(BASE_DATA)) == BASE_DATA, "the emitter must round-trip"
    assert isinstance(check(dump(BASE_DATA)), Manifest)
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

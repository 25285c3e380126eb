"""Manifest text -> `Manifest`, or one `ManifestError` carrying every located problem.

A reviewer fixing a manifest wants all its problems at once, each pointing at a line, so the
parser never stops at the first one: duplicate keys, pydantic errors and the document rules
of `core/validate.py` are collected together, each mapped back to the YAML it is about. Only
text that is not YAML at all (a syntax error) ends the run early, because nothing after it
has a reliable shape. YAML is read by `core/yamlpos.py`, which builds plain data only.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from flipgitops.core.validate import LocPath, check_document, dotted, manifest_stem
from flipgitops.core.yamlpos import Positioned, YamlSyntaxError, load_positioned, yaml_type
from flipgitops.errors import ManifestError, Problem
from flipgitops.model.manifest import Manifest

# A real manifest is a few hundred kilobytes even with a thousand trusts; anything far
# larger is the wrong file, and reading it would only be slow.
MAX_MANIFEST_BYTES = 1024 * 1024

_TOP_KEYS = ", ".join(Manifest.model_fields)


def size_problem(filename: str, size: int) -> Problem | None:
    """The one size rule, for text in memory (characters) and files on disk (bytes)."""
    if size <= MAX_MANIFEST_BYTES:
        return None
    return Problem(filename, 1, 1, "",
                   f"the manifest is {size / (1024 * 1024):.1f} MiB, larger than the 1 MiB "
                   "flipgitops reads; a manifest is a few hundred kilobytes at most, is this "
                   "the right file?")


def parse_manifest(text: str, filename: str) -> Manifest:
    """Parse and validate one manifest; raise `ManifestError` with every problem found."""
    too_big = size_problem(filename, len(text))
    if too_big is not None:
        raise ManifestError([too_big])
    try:
        doc = load_positioned(text)
    except YamlSyntaxError as exc:
        raise ManifestError([Problem(filename, *exc.pos, "", exc.message)]) from None
    problems = [Problem(filename, *pos, dotted(path), message)
                for path, pos, message in doc.problems]
    if not isinstance(doc.data, dict):
        found = "an empty file" if doc.data is None else _article(yaml_type(doc.data))
        problems.append(Problem(filename, 1, 1, "",
                                f"a manifest is a YAML mapping ({_TOP_KEYS}); found {found}"))
        raise ManifestError(problems)
    manifest: Manifest | None = None
    errors: list[Any] = []
    try:
        manifest = Manifest.model_validate(doc.data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=True)
    checked = manifest.model_dump(mode="python") if manifest is not None else doc.data
    issues = check_document(checked, stem=manifest_stem(filename),
                            where=lambda p: locate(doc, p).line)
    # One problem per mistake: what the YAML reader or a text rule (secret, template,
    # invisible character) said about a path is more to the point than pydantic's view.
    read = {path for path, _, _ in doc.problems}
    reported = read | {issue.path for issue in issues if issue.kind != "rule"}
    for error in errors:
        if tuple(error["loc"]) not in reported:
            problems.append(_pydantic_problem(doc, filename, error))
    for issue in issues:
        if issue.path in read:
            continue
        where = locate(doc, issue.path, issue.anchor)
        problems.append(Problem(filename, where.line, where.col, dotted(issue.path),
                                issue.message))
    if problems or manifest is None:
        raise ManifestError(problems)
    return manifest


# -- locations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Located:
    """1-based position for a path; `exact` is False when only an ancestor was found."""

    line: int
    col: int
    exact: bool

    @property
    def position(self) -> tuple[int, int]:
        return self.line, self.col


def locate(doc: Positioned, path: LocPath, anchor: str = "value") -> Located:
    """Where `path` is: its value (or key), else the nearest ancestor that exists.

    Scalars are reported at their value; mappings, lists and empty values at the key that
    introduces them (that is the line a user reads); a missing key at the mapping that
    should hold it, which is where it has to be added.
    """
    for depth in range(len(path), -1, -1):
        sub = path[:depth]
        exact = depth == len(path)
        key_pos = doc.keys.get(sub)
        if exact and anchor == "key" and key_pos is not None:
            return Located(*key_pos, exact=True)
        value_pos = doc.values.get(sub)
        if value_pos is not None and (key_pos is None or _is_scalar(doc.data, sub)):
            return Located(*value_pos, exact=exact)
        if key_pos is not None:
            return Located(*key_pos, exact=exact)
    return Located(1, 1, exact=False)


def _is_scalar(data: Any, path: LocPath) -> bool:
    for part in path:
        in_map = isinstance(data, dict) and isinstance(part, str) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_map or in_list):
            return False
        data = data[part]
    return data is not None and not isinstance(data, dict | list)


# -- pydantic errors -------------------------------------------------------------------------


def _pydantic_problem(doc: Positioned, filename: str, error: Any) -> Problem:
    loc: LocPath = tuple(p for p in error["loc"] if isinstance(p, str | int))
    kind = str(error["type"])
    if kind == "missing" and loc:
        at = locate(doc, loc[:-1])
        message = f"required key {_short(loc[-1])} is missing; add it"
    elif kind == "extra_forbidden" and loc:
        at = locate(doc, loc, anchor="key")
        message = _unknown_key_message(loc)
    else:
        at = locate(doc, loc)
        message = _pydantic_message(error)
    return Problem(filename, at.line, at.col, dotted(loc), message)


def _unknown_key_message(loc: LocPath) -> str:
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    valid = sorted(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"unknown key {_short(key)}; did you mean {close[0]!r}?"
    if valid:
        return f"unknown key {_short(key)}; valid keys here: {', '.join(valid)}"
    return f"unknown key {_short(key)}; remove it"


def _model_at(path: LocPath) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at `path` (for key suggestions)."""
    current: Any = Manifest
    for part in path:
        current = _unwrap(current)
        if isinstance(part, int):
            args = get_args(current)
            if get_origin(current) is not list or not args:
                return None
            current = args[0]
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(part)
        if info is None:
            return None
        current = info.annotation
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X; anything else unchanged."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) not in (list, dict, None) and len(args) == 1:
        return args[0]
    return annotation


_TYPE_MESSAGES = {
    "model_type": "must be a mapping (key: value lines)",
    "model_attributes_type": "must be a mapping (key: value lines)",
    "dict_type": "must be a mapping (key: value lines)",
    "list_type": "must be a list (lines starting with '- ')",
    "bool_type": "must be true or false (unquoted)",
    "bool_parsing": "must be true or false (unquoted)",
    "int_type": "must be a whole number (unquoted)",
    "int_parsing": "must be a whole number (unquoted)",
    "int_from_float": "must be a whole number (unquoted)",
}
_YES = frozenset({"true", "yes", "y", "on"})
_NO = frozenset({"false", "no", "n", "off"})
# What a field's pattern means, for the fields the model gives a pattern.
_PATTERN_HINTS = {
    "account_id": 'must be the 12-digit AWS account id, quoted (e.g. "123456789012")',
    "region": "must be an AWS region such as eu-west-2",
    "date": 'must be a date written YYYY-MM-DD and quoted, e.g. "2025-06-01"',
}


def _pydantic_message(error: Any) -> str:
    """pydantic's wording, made YAML-flavoured; the input is shown only when it is harmless.

    The model is strict (a quoted "no" is not false, "1" is not 1), so the messages say
    how to write the value rather than what Python type was expected.
    """
    kind = str(error["type"])
    got = error.get("input")
    loc = tuple(error.get("loc") or ())
    if loc == ("version",) and kind == "literal_error":
        quoted = ", without quotes" if isinstance(got, str) else ""
        return f"version must be the number 1 (write `version: 1`{quoted})"
    if kind in ("bool_type", "bool_parsing") and isinstance(got, str):
        word = got.strip().lower()
        if word in _YES | _NO:
            fix = "true" if word in _YES else "false"
            return (f"must be true or false (unquoted), found the string {_short(got)}; "
                    f"write {fix}")
        return "must be true or false (unquoted), found a string"
    if kind in ("int_type", "int_parsing") and isinstance(got, str):
        digits = got.strip()
        if digits.isascii() and digits.lstrip("-").isdigit() and len(digits) <= 12:
            return (f"must be a whole number (unquoted), found the string {_short(got)}; "
                    f"write {digits}")
        return "must be a whole number (unquoted), found a string"
    if kind in _TYPE_MESSAGES:
        return f"{_TYPE_MESSAGES[kind]}, found {_article(yaml_type(got))}"
    if kind == "string_type":
        quote = got is not None and not isinstance(got, dict | list)
        hint = "; quote the value in YAML" if quote else ""
        return f"must be a string, found {_article(yaml_type(got))}{hint}"
    if kind == "string_pattern_mismatch":
        field = str(loc[-1]) if loc else ""
        if field in _PATTERN_HINTS:
            return _PATTERN_HINTS[field]
    if kind == "literal_error" and isinstance(got, str | int | bool):
        return f"{error['msg']}, found {_short(got)}"
    return str(error["msg"])


def _article(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def _short(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")

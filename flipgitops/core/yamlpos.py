"""YAML text -> plain data plus the position of every key and value, from the event stream.

Why not ruamel's round-trip loader: it is seven times slower (a 1,000-trust manifest must
validate in well under a second), it stops at the first duplicate key, and its recursive
composer can be driven into a RecursionError (the C one into a crash) by nesting. Building
the tree here from libyaml's events with an explicit stack gives all positions, records
every duplicate key, caps the depth, and never constructs anything but plain data: unknown
tags are reported, not instantiated.

Aliases share the anchored value instead of copying it, and the builder counts what they
would expand to: an alias bomb (a few lines that expand to billions of values) and a node
that contains an alias to itself are refused before anything walks them. A lone surrogate
escape (`"\\ud800"`) is not a character, cannot be printed or encoded, and is reported
where it is and replaced by its escaped spelling so no later step meets it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from ruamel.yaml.nodes import ScalarNode

LocPath = tuple[str | int, ...]
Pos = tuple[int, int]  # 1-based line, column

MAX_DEPTH = 64
# Values aliases may expand to in one document. A manifest that reuses a host block with
# `<<: *host` in every one of 1,000 trusts uses ~10,000; a bomb needs billions.
MAX_ALIAS_EXPANSION = 100_000

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null",
                                             "timestamp", "merge"))
_MAP_TAGS = frozenset({_CORE + "map"})
_SEQ_TAGS = frozenset({_CORE + "seq"})


class YamlSyntaxError(Exception):
    """The text is not YAML (or not one readable document); nothing else can be said."""

    def __init__(self, message: str, pos: Pos) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


@dataclass
class Positioned:
    """The document as plain data, where each path's key and value start, and YAML-level
    problems (duplicate keys, non-string keys, tags) found while building it."""

    data: Any
    keys: dict[LocPath, Pos] = field(default_factory=dict)
    values: dict[LocPath, Pos] = field(default_factory=dict)
    problems: list[tuple[LocPath, Pos, str]] = field(default_factory=list)


@dataclass
class _Frame:
    """A mapping or sequence being filled, with the key awaiting its value."""

    container: dict[str, Any] | list[Any]
    path: LocPath
    pos: Pos
    pending_key: Any = None
    pending_pos: Pos = (1, 1)
    has_key: bool = False
    skip: bool = False  # the pending key is unusable (non-string, duplicate)
    merge_key: bool = False  # the pending key is `<<`: its value is merged at the end
    merges: list[Any] = field(default_factory=list)
    size: int = 1  # values in this container once aliases are expanded (itself included)


def _pos(mark: Any) -> Pos:
    return (int(getattr(mark, "line", 0)) + 1, int(getattr(mark, "column", 0)) + 1)


def yaml_type(value: Any) -> str:
    """The YAML word for a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if isinstance(value, date):
        return "date"
    return type(value).__name__.lower()


def _short(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


class _Builder:
    def __init__(self, yaml: YAML) -> None:
        self.resolver = yaml.resolver
        self.constructor = yaml.constructor
        self.out = Positioned(data=None)
        self.stack: list[_Frame] = []
        self.anchors: dict[str, Any] = {}
        self.anchored: set[int] = set()  # ids of anchored containers
        self.sizes: dict[int, int] = {}  # id of a finished anchored container -> its size
        self.expanded = 0
        self.resolved: dict[tuple[str, tuple[bool, ...]], str] = {}

    # -- placing a finished value -------------------------------------------------------

    def child_path(self) -> LocPath:
        top = self.stack[-1]
        if isinstance(top.container, list):
            return (*top.path, len(top.container))
        return (*top.path, str(top.pending_key))

    def value_path(self, pos: Pos) -> LocPath:
        """The path of the value about to be placed, recording where it starts.

        The value of a rejected key (duplicate, non-string) is built but not indexed, so
        it cannot move the position recorded for the first occurrence.
        """
        if not self.stack:
            self.out.values[()] = pos
            return ()
        top = self.stack[-1]
        path = self.child_path()
        if not (isinstance(top.container, dict) and top.skip):
            self.out.values.setdefault(path, pos)
        return path

    def place(self, value: Any, pos: Pos, is_key_candidate: bool, size: int = 1) -> bool:
        """Put `value` into the open container; return True if it was consumed as a key."""
        if not self.stack:
            self.out.data = value
            return False
        top = self.stack[-1]
        top.size += size
        if isinstance(top.container, list):
            top.container.append(value)
            return False
        if not top.has_key:
            self.take_key(top, value, pos, is_key_candidate)
            return True
        if top.merge_key and not top.skip:
            top.merges.append((value, top.pending_pos))
        elif not top.skip:
            top.container[str(top.pending_key)] = value
        top.has_key = False
        return False

    def take_key(self, top: _Frame, key: Any, pos: Pos, scalar: bool) -> None:
        top.has_key, top.pending_pos, top.skip, top.merge_key = True, pos, False, False
        if not isinstance(key, str) or not scalar:
            kind = yaml_type(key)
            article = "an" if kind[0] in "aeiou" else "a"
            self.out.problems.append((top.path, pos, f"keys must be strings, found {article} "
                                      f"{kind} key; quote it or remove it"))
            top.pending_key, top.skip = "?", True
            return
        top.pending_key = key
        assert isinstance(top.container, dict)
        path = (*top.path, key)
        if key in top.container or path in self.out.keys:
            first = self.out.keys.get(path)
            origin = f" (first at line {first[0]})" if first else ""
            self.out.problems.append((path, pos, f"duplicate key {_short(key)}{origin}; YAML "
                                      "would silently keep only one value, remove one of them"))
            top.skip = True
            return
        self.out.keys[path] = pos

    # -- events -------------------------------------------------------------------------

    def start(self, event: Any, container: dict[str, Any] | list[Any]) -> None:
        pos = _pos(event.start_mark)
        if self.stack and isinstance(self.stack[-1].container, dict) \
                and not self.stack[-1].has_key:
            # a mapping or list used as a key: build it, then report it as a bad key
            path: LocPath = (*self.stack[-1].path, "?")
        else:
            path = self.value_path(pos)
        if len(self.stack) >= MAX_DEPTH:
            raise YamlSyntaxError(f"more than {MAX_DEPTH} levels of nesting; a manifest is "
                                  "never nested this deeply", pos)
        tags = _MAP_TAGS if isinstance(container, dict) else _SEQ_TAGS
        self.check_tag(event.tag, tags, path, pos)
        if event.anchor:
            self.anchors[event.anchor] = container
            self.anchored.add(id(container))
        self.stack.append(_Frame(container, path, pos))

    def end(self) -> None:
        frame = self.stack.pop()
        if isinstance(frame.container, dict):
            self.apply_merges(frame)
        if id(frame.container) in self.anchored:
            self.sizes[id(frame.container)] = frame.size
        self.place(frame.container, frame.pos, is_key_candidate=False, size=frame.size)

    def apply_merges(self, frame: _Frame) -> None:
        assert isinstance(frame.container, dict)
        for source, pos in frame.merges:
            sources = source if isinstance(source, list) else [source]
            for item in sources:
                if not isinstance(item, dict):
                    self.out.problems.append((frame.path, pos, "'<<' merges mappings only; "
                                              "give it a mapping or a list of mappings"))
                    continue
                for key, value in item.items():
                    if key not in frame.container:
                        frame.container[key] = value
                        self.out.keys.setdefault((*frame.path, key), pos)

    def scalar(self, event: Any) -> None:
        pos = _pos(event.start_mark)
        top = self.stack[-1] if self.stack else None
        as_key = top is not None and isinstance(top.container, dict) and not top.has_key
        tag = event.tag
        if tag is None or tag == "!":
            implicit = tuple(event.implicit) if tag is None else (False, False)
            tag = self.resolve(str(event.value), implicit)
        else:
            tag = str(tag)
        raw = str(event.value)
        surrogate = _has_surrogate(raw)
        if as_key and top is not None:
            path: LocPath = (*top.path, _escaped(raw) if surrogate else "?")
        else:
            path = self.value_path(pos)
        if surrogate:
            self.out.problems.append((path, pos, _SURROGATE_MESSAGE))
            value: Any = _escaped(raw)
        else:
            value = self.construct(tag, event, path, pos)
        if event.anchor:
            self.anchors[event.anchor] = value
        consumed = self.place(value, pos, is_key_candidate=True)
        if consumed and top is not None and tag == _CORE + "merge":
            top.merge_key = True

    def resolve(self, value: str, implicit: tuple[bool, ...]) -> str:
        """The implicit tag of a plain scalar; cached, because a manifest repeats the same
        keys and values thousands of times and ruamel's resolver is the parser's hot spot."""
        key = (value, implicit)
        tag = self.resolved.get(key)
        if tag is None:
            tag = str(self.resolver.resolve(ScalarNode, value, implicit))
            if len(self.resolved) < 4096:
                self.resolved[key] = tag
        return tag

    def construct(self, tag: str, event: Any, path: LocPath, pos: Pos) -> Any:
        if tag not in _SCALAR_TAGS:
            self.check_tag(tag, _SCALAR_TAGS, path, pos)
            return str(event.value)
        if tag in (_CORE + "str", _CORE + "merge"):
            return str(event.value)
        node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = self.constructor.construct_object(node, deep=True)
        except Exception as exc:  # bad dates, ints past Python's digit limit, ...
            reason = "it has too many digits" if "digits" in str(exc) else \
                str(exc).splitlines()[0][:80] if str(exc).strip() else type(exc).__name__
            self.out.problems.append((path, pos, f"cannot read this value: {reason}"))
            return str(event.value)
        return value

    def check_tag(self, tag: Any, allowed: frozenset[str], path: LocPath, pos: Pos) -> None:
        if tag is None or tag == "!" or str(tag) in allowed:
            return
        shown = str(tag).replace(_CORE, "!!", 1)
        self.out.problems.append((path, pos, f"YAML tag {_short(shown)} is not allowed in a "
                                  "manifest; remove it"))

    def alias(self, event: Any) -> None:
        pos = _pos(event.start_mark)
        if event.anchor not in self.anchors:
            raise YamlSyntaxError(f"found undefined alias {_short(event.anchor)}", pos)
        value = self.anchors[event.anchor]
        size = 1
        if isinstance(value, dict | list):
            if id(value) not in self.sizes:
                raise YamlSyntaxError(f"alias {_short(event.anchor)} is used inside the value "
                                      "it names, which would make the manifest infinitely "
                                      "deep; write the value out", pos)
            size = self.sizes[id(value)]
        self.expanded += size
        if self.expanded > MAX_ALIAS_EXPANSION:
            raise YamlSyntaxError(f"aliases expand to more than {MAX_ALIAS_EXPANSION:,} values "
                                  "(an alias bomb?); a manifest never needs this many, write "
                                  "the values out", pos)
        top = self.stack[-1] if self.stack else None
        as_key = top is not None and isinstance(top.container, dict) and not top.has_key
        if not as_key:
            self.value_path(pos)
        self.place(value, pos, is_key_candidate=not isinstance(value, dict | list), size=size)


_SURROGATE_MESSAGE = ("contains a lone surrogate escape (such as \\ud800), which is not a "
                      "character and cannot be written anywhere; remove it")


def _has_surrogate(text: str) -> bool:
    return not text.isprintable() and any("\ud800" <= c <= "\udfff" for c in text)


def _escaped(text: str) -> str:
    """`text` with each surrogate spelled as its escape: safe to print, store and compare."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def load_positioned(text: str) -> Positioned:
    """Build plain data and positions; raise `YamlSyntaxError` when the text is not YAML.

    libyaml (C) reads first because it is fast; it implements YAML 1.1 syntax and refuses
    some valid 1.2 documents (`{ssh_key: env:KEY}`), so anything it rejects is read again
    by ruamel's pure-Python 1.2 parser, whose verdict and messages are the ones reported.
    """
    try:
        return _build(text, YAML(typ="safe"))
    except YamlSyntaxError:
        raise
    except Exception:  # the second parser below decides
        pass
    try:
        return _build(text, YAML(typ="safe", pure=True))
    except YamlSyntaxError:
        raise
    except Exception as exc:
        raise _syntax_error(exc, text) from None


def _build(text: str, yaml: YAML) -> Positioned:
    builder = _Builder(yaml)
    documents = 0
    for event in yaml.parse(text):
        if isinstance(event, ScalarEvent):
            builder.scalar(event)
        elif isinstance(event, MappingStartEvent):
            builder.start(event, {})
        elif isinstance(event, SequenceStartEvent):
            builder.start(event, [])
        elif isinstance(event, MappingEndEvent | SequenceEndEvent):
            builder.end()
        elif isinstance(event, AliasEvent):
            builder.alias(event)
        elif isinstance(event, DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise YamlSyntaxError("more than one YAML document (---); a manifest is "
                                      "exactly one", _pos(event.start_mark))
        elif isinstance(event, StreamEndEvent):
            break
    return builder.out


def _syntax_error(exc: Exception, text: str) -> YamlSyntaxError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    what = getattr(exc, "problem", None) or getattr(exc, "context", None)
    if mark is not None and what:
        return YamlSyntaxError(f"YAML syntax error: {what}", _pos(mark))
    if isinstance(exc, UnicodeError):
        return YamlSyntaxError("the text contains characters that are not valid Unicode; "
                               "save the file as UTF-8", (1, 1))
    position = getattr(exc, "position", None)
    if isinstance(position, int) and position >= 0:
        line = text.count("\n", 0, position) + 1
        col = position - (text.rfind("\n", 0, position) + 1) + 1
        return YamlSyntaxError(f"unreadable character; {str(exc).splitlines()[0][:100]}",
                               (line, col))
    reason = str(exc).splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
    return YamlSyntaxError(f"cannot read the YAML: {reason}", (1, 1))

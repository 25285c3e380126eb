"""Markdown that data cannot restructure (issue 19), and documents that fit GitHub's limit.

A PR comment or a drift issue mixes our structure (headings, tables, lists, `<details>`, a
Mermaid graph) with text that is not ours: manifest values quoted in descriptions, AWS rule
descriptions and names, the admin API's trust names, Terraform addresses, error messages.
Every such value goes through exactly one of these, chosen by where it lands:

- `text`: running text, list items and table cells. Markdown's inline syntax is
  backslash-escaped; ``& < > @ #`` become entities (``$`` a `<span>$</span>`, as GitHub
  advises), so no raw HTML, no entity, no math;
  a zero-width space follows ``@``, ``#<alnum>``, ``scheme:`` and ``www`` in what GitHub
  sees after decoding, so no ``@team`` mention, no issue reference and no autolink forms;
  a value that would begin a block (``- x``, ``1. x``, ``+ x``) is escaped at its start.
- `code` / `code_cell`: a code span whose fence is longer than any backtick run in the
  value, so the value cannot close it (in a table cell its pipes are escaped too).
- `html`: text inside raw HTML (a `<summary>`), entity-escaped (markdown's punctuation too).
- `fence`: a fenced block whose fence is longer than any backtick run in its lines.
- `mermaid_label`: a Mermaid node label reduced to letters, digits and plain punctuation
  (no quotes, brackets, ``-->``, ``%%``, HTML or newlines).

All of them first `clean` the value (control characters and line breaks gone, hashes
shortened), so nothing a value holds can start a new line of markdown.

`Block` and `fit` keep a document under a character limit by dropping optional blocks and
capping lists; a block is emitted whole or not at all, so a fence or a `<details>` is never
cut open.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from flipgitops.core.render._common import clean, clip

_ZWSP = "\u200b"  # `clean` strips it from data, so every one left after `_breaks` is ours
# ``$`` opens GitHub's math; GitHub's own advice for a literal dollar is `<span>$</span>`.
_ENTITY = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "@": "&#64;", "#": "&#35;",
           "$": "<span>&#36;</span>", _ZWSP: "&#8203;"}
_BACKSLASH = frozenset("\\`*_[]|~")
_BLOCK_START = re.compile(r"^(?:[-+=]|[0-9]+[.)])")
# Inside raw HTML markdown is not read, but its punctuation is entity-encoded too, so the
# text stays inert even where a renderer reads markdown inside a <summary>.
_HTML = {**{ch: f"&#{ord(ch)};" for ch in "\\`*_[]()|~!$:'\"@#"},
         "&": "&amp;", "<": "&lt;", ">": "&gt;", _ZWSP: "&#8203;"}
_LABEL_DROP = re.compile(r"[^A-Za-z0-9 _.,/+=-]+")
_BACKTICKS = re.compile(r"`+")
DATA_LIMIT = 300  # characters of one data value shown in markdown (the JSON has it whole)


def _breaks(text: str) -> str:
    """Zero-width spaces where GitHub would otherwise link or notify from decoded text."""
    text = text.replace("@", "@" + _ZWSP)
    text = re.sub(r"#(?=[0-9A-Za-z])", "#" + _ZWSP, text)
    text = re.sub(r"(?<=:)(?=//)", _ZWSP, text)
    return re.sub(r"(?i)\b(www)(?=\.)", "\\1" + _ZWSP, text)


def text(value: object, limit: int = DATA_LIMIT) -> str:
    """``value`` as inline markdown that renders as exactly its characters."""
    raw = " ".join(clip(clean(value), limit).split())
    out = []
    for ch in _breaks(raw):
        if ch in _ENTITY:
            out.append(_ENTITY[ch])
        elif ch in _BACKSLASH:
            out.append("\\" + ch)
        else:
            out.append(ch)
    escaped = "".join(out)
    if match := _BLOCK_START.match(escaped):
        end = match.end()
        escaped = escaped[: end - 1] + "\\" + escaped[end - 1:]
    return escaped


def _span(raw: str) -> str:
    if not raw:
        return "(empty)"
    longest = max((len(m) for m in _BACKTICKS.findall(raw)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if raw[0] in "` " or raw[-1] in "` " else ""
    return f"{ticks}{pad}{raw}{pad}{ticks}"


def code(value: object, limit: int = DATA_LIMIT) -> str:
    """``value`` in a code span it cannot close (outside tables)."""
    return _span(clip(clean(value), limit))


def code_cell(value: object, limit: int = DATA_LIMIT) -> str:
    """A code span for a table cell: its pipes escaped so the row keeps its columns."""
    return _span(clip(clean(value), limit)).replace("|", "\\|")


def html(value: object, limit: int = DATA_LIMIT) -> str:
    """``value`` inside raw HTML (a `<summary>`): entities only, no markdown applies there."""
    raw = " ".join(clip(clean(value), limit).split())
    return "".join(_HTML.get(ch, ch) for ch in _breaks(raw))


def fence(lines: Sequence[str], info: str = "") -> list[str]:
    """A fenced block around already-clean lines, fenced longer than any backtick run."""
    longest = max((len(m) for line in lines for m in _BACKTICKS.findall(line)), default=0)
    ticks = "`" * max(3, longest + 1)
    return [ticks + info, *lines, ticks]


def mermaid_label(value: object, limit: int = 60) -> str:
    label = _LABEL_DROP.sub(" ", clean(value))
    label = re.sub(r"-{2,}", "-", label)
    return clip(" ".join(label.split()), limit) or "_"


def row(*cells: str) -> str:
    """A table row of cells already escaped with `text` or `code_cell`."""
    return "| " + " | ".join(cells) + " |"


def table_head(*columns: str) -> list[str]:
    return [row(*columns), "|" + "---|" * len(columns)]


# --- documents under a limit ---------------------------------------------------------------


@dataclass
class Block:
    """Lines emitted whole: ``head``, then up to ``cap`` of ``items`` (with ``more(n)``
    saying how many were left out), then ``tail``. ``optional`` names blocks `fit` may drop
    (e.g. "per-trust details", "the action graph"), in the order of ``Doc.drop_order``."""

    head: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)
    more: Callable[[int], list[str]] | None = None
    optional: str = ""
    kind: str = "entries"  # what the items are, for the truncation note ("actions", ...)

    def render(self, cap: int | None) -> tuple[list[str], int]:
        shown = self.items if cap is None else self.items[:cap]
        hidden = len(self.items) - len(shown)
        extra = self.more(hidden) if hidden and self.more is not None else []
        return [*self.head, *shown, *extra, *self.tail], hidden


def list_more(n: int) -> list[str]:
    return [f"- … and {n} more: see the JSON output"]


def after_more(n: int) -> list[str]:
    """For tables: a blank line ends the table before the note."""
    return ["", f"_… and {n} more {'row' if n == 1 else 'rows'}: see the JSON output._"]


def fence_more(n: int) -> list[str]:
    return [f"… and {n} more (see the JSON output)"]


Note = Callable[[dict[str, int], list[str], int], list[str]]


def fit(blocks: list[Block], limit: int, note: Note, drop_order: Sequence[str] = ()) -> str:
    """The document within ``limit`` characters: whole if it fits; else without the optional
    blocks (in ``drop_order``); else with every capped list cut to the largest common length
    that fits. ``note(hidden per kind, dropped, limit)`` gives the lines that say what was
    left out (placed before the last block, the footer)."""

    def build(cap: int | None, dropped: Sequence[str]) -> str:
        lines: list[str] = []
        hidden: dict[str, int] = {}
        for block in blocks[:-1]:
            if block.optional and block.optional in dropped:
                continue
            part, n = block.render(cap)
            lines += part
            if n:
                hidden[block.kind] = hidden.get(block.kind, 0) + n
        if hidden or dropped:
            lines += note(hidden, list(dict.fromkeys(dropped)), limit)
        if blocks:
            lines += blocks[-1].render(None)[0]
        return "\n".join(lines)

    doc = build(None, ())
    if len(doc) <= limit:
        return doc
    present = [name for name in drop_order if any(b.optional == name for b in blocks)]
    for n in range(1, len(present) + 1):
        doc = build(None, present[:n])
        if len(doc) <= limit:
            return doc
    lo, hi = 0, max((len(b.items) for b in blocks), default=0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(build(mid, present)) <= limit:
            lo = mid
        else:
            hi = mid - 1
    doc = build(lo, present)
    if len(doc) <= limit:
        return doc
    # Even the fixed parts overflow (impossible with our clipped values; kept as a floor):
    # the first block (the title) and the note alone.
    floor = [*blocks[0].render(0)[0], *note({"entries": sum(len(b.items) for b in blocks)},
                                            ["everything else"], limit)]
    return "\n".join(floor)[:limit]

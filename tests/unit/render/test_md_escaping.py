"""The escaping primitives (`core/render/md.py`) over arbitrary text (hypothesis), read back
by a CommonMark parser (markdown-it, which rich brings): `text` renders as exactly the
characters it was given (cleaned), inside one list item or one table cell, with no other
structure; `code` is one code span holding them; a `<summary>` holds no other tag; a Mermaid
label holds nothing Mermaid reads as syntax."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from flipgitops.core.render import md
from flipgitops.core.render._common import clean, clip

PARSER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
# Text made of markdown's own syntax, so the examples hit it densely (plus any text at all).
PIECES = ["*", "**", "_", "__", "`", "``", "```", "~~~", "#", "# ", "## ", "- ", "+ ", "1. ",
          "2) ", "> ", "|", "| x |", "[", "]", "](", "(", ")", "![", "<", ">", "<img src=x>",
          "<details>", "</details>", "<summary>", "<!--", "-->", "<https://e.example>", "@",
          "@team", "a@b.example", "$", "$x$", "&", "&#64;", "&amp;", "\\", "\\`", "~~", "~",
          "www.", "https://", "http://e.example", ":", "\n", "\r\n", "\t", "    ", " ", "a",
          "PWN", "0", "12", ".", "---", "===", "%%", "{", "}", "!", "=", "\x1b[2J", "\u2028",
          "\u202e", "\u200b", "#12", "^"]
SYNTAX = (st.lists(st.sampled_from(PIECES), max_size=12).map("".join)
          | st.text(max_size=40))

def _inline(doc: str) -> list[Token]:
    tokens = PARSER.parse(doc)
    inline = [t for t in tokens if t.type == "inline"]
    assert len(inline) == 1, [t.type for t in tokens]
    return inline[0].children or []


def _rendered(children: list[Token]) -> str:
    allowed = {"text", "html_inline"}
    assert {c.type for c in children} <= allowed, [c.type for c in children]
    assert all(c.content in ("<span>", "</span>") for c in children if c.type == "html_inline")
    return "".join(c.content for c in children if c.type == "text").replace("\u200b", "")


def _expected(value: str, limit: int = md.DATA_LIMIT) -> str:
    return " ".join(clip(clean(value), limit).split())


@given(SYNTAX)
def test_text_in_a_list_item_renders_as_its_characters(value: str) -> None:
    expected = _expected(value)
    if not expected:
        return
    tokens = PARSER.parse(f"- {md.text(value)}\n")
    assert [t.type for t in tokens] == ["bullet_list_open", "list_item_open", "paragraph_open",
                                        "inline", "paragraph_close", "list_item_close",
                                        "bullet_list_close"]
    assert _rendered(tokens[3].children or []) == expected
    assert "@" not in md.text(value)


@given(SYNTAX, SYNTAX)
def test_text_and_code_in_table_cells_keep_the_columns(a: str, b: str) -> None:
    doc = "\n".join([*md.table_head("A", "B", "C"),
                     md.row(md.text(a) or "-", md.code_cell(b), "end"), ""])
    tokens = PARSER.parse(doc)
    cells = [t for t in tokens if t.type == "td_open"]
    assert len(cells) == 3, doc
    inlines = [t for t in tokens if t.type == "inline"][3:]
    assert inlines[2].content == "end"
    if _expected(a):
        assert _rendered(inlines[0].children or []) == _expected(a)
    code = [c for c in inlines[1].children or [] if c.type == "code_inline"]
    assert len(code) == 1 or not clean(b)


@given(SYNTAX)
def test_code_is_one_span_holding_the_value(value: str) -> None:
    raw = clip(clean(value), md.DATA_LIMIT)
    children = _inline(f"x {md.code(value)} y\n")
    spans = [c for c in children if c.type == "code_inline"]
    if not raw:
        assert md.code(value) == "(empty)"
        return
    assert len(spans) == 1
    # CommonMark turns line endings into spaces and strips one padding space each side
    assert spans[0].content == raw if raw.strip() else spans[0].content.strip() == ""


@given(SYNTAX)
def test_html_summary_holds_no_tag_of_the_data(value: str) -> None:
    line = f"<details><summary>{md.html(value)}</summary>"
    assert re.findall(r"<[^>]*>", line) == ["<details>", "<summary>", "</summary>"]
    assert "@" not in line and "\n" not in line


@given(SYNTAX)
def test_mermaid_labels_hold_no_syntax(value: str) -> None:
    label = md.mermaid_label(value)
    assert re.fullmatch(r"[A-Za-z0-9 _.,/+=…-]+", label)
    assert "--" not in label and "%%" not in label


@given(st.lists(SYNTAX, max_size=6))
def test_fences_are_longer_than_any_backtick_run(lines: list[str]) -> None:
    cleaned = [clean(x) for x in lines]
    block = md.fence(cleaned, "diff")
    tokens = PARSER.parse("\n".join(block) + "\n")
    assert [t.type for t in tokens] == ["fence"]
    assert tokens[0].content == "".join(f"{x}\n" for x in cleaned)


@given(st.text(max_size=20), st.text(alphabet="0123456789abcdefABCDEF", min_size=64,
                                     max_size=80), st.text(max_size=20))
def test_no_full_hash_survives_cleaning_wherever_it_sits(before: str, digest: str,
                                                         after: str) -> None:
    out = clean(before + digest + after)
    assert not re.search(r"[0-9a-fA-F]{64}", out)
    assert not re.search(r"[0-9a-fA-F]{64}", md.text(before + digest + after, 10_000))

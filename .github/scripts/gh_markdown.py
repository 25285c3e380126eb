"""What the workflow scripts add around flipgitops' rendered markdown, safe by construction.

flipgitops escapes every value it renders; these scripts add a marker, a title, a status
line, an artifact name and a run link around that body, and may have to shorten it. None of
that may restructure the comment either: environment names are checked (they also name the
hidden marker, which a ``-->`` would close), names are put in code spans they cannot close,
links are only http(s) URLs, percent-encoded, and a body is cut at a line boundary with any
open code fence and `<details>` closed. Text printed as a workflow command (``::error::``)
is encoded the way GitHub's toolkit does, so a message cannot start a command of its own.
Standard library only (the scripts run before anything is installed).
"""

from __future__ import annotations

import re
import urllib.parse

from env_matrix import NAME as ENV_NAME

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BACKTICKS = re.compile(r"`+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class UnsafeInput(ValueError):
    """A value the scripts will not put into a comment (the message says which and why)."""


def env_name(value: str) -> str:
    """An environment name as `env_matrix` allows it: letters, digits and underscores."""
    if not ENV_NAME.fullmatch(value):
        raise UnsafeInput(f"--env must match {ENV_NAME.pattern}, got {value!r}")
    return value


def code(value: str) -> str:
    """``value`` on one line in a code span whose fence no backtick run in it can close."""
    raw = " ".join(_CONTROL.sub(" ", value).split()) or "-"
    longest = max((len(m) for m in _BACKTICKS.findall(raw)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if raw[0] == "`" or raw[-1] == "`" else ""
    return f"{ticks}{pad}{raw}{pad}{ticks}"


def url(value: str) -> str | None:
    """``value`` as a link target when it is an http(s) URL without credentials, with every
    character markdown or HTML could read percent-encoded; otherwise None."""
    value = value.strip()
    if not value or _CONTROL.search(value):
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    return urllib.parse.quote(value, safe=":/?=&%#-._~,+")


def link(label: str, target: str) -> str:
    """``[label](target)`` with our own label, or the label alone when the URL is unsafe."""
    safe = url(target)
    return f"[{label}]({safe})" if safe else label


def command_data(value: object) -> str:
    """Text for a workflow command (``::error::…``), encoded like @actions/core does."""
    return str(value).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def fit(body: str, limit: int, note: str) -> str:
    """``body`` within ``limit`` characters and balanced, whatever it holds: whole when it
    fits, else its longest prefix of whole lines that fits with ``note`` after it; either
    way any code fence or `<details>` left open is closed, so what follows stays outside."""
    lines = body.rstrip("\n").split("\n")
    fence: tuple[str, int] | None = None
    depth = 0
    size = 0  # characters of lines[:n] with their newlines
    states: list[tuple[int, tuple[str, int] | None, int]] = [(0, None, 0)]
    for line in lines:
        size += len(line) + 1
        m = _FENCE.match(line)
        if fence is None and m:
            fence = (m.group(1)[0], len(m.group(1)))
        elif fence is not None and m and m.group(1)[0] == fence[0] \
                and len(m.group(1)) >= fence[1] and not line.strip()[len(m.group(1)):]:
            fence = None
        elif fence is None:
            depth = max(depth + line.count("<details") - line.count("</details>"), 0)
        states.append((size, fence, depth))
    end, fence, depth = states[-1]
    if end + len(_closers(fence, depth, "")) <= limit:
        return "\n".join(lines) + "\n" + _closers(fence, depth, "")
    n = max(i for i, (size, f, d) in enumerate(states)
            if size + len(_closers(f, d, note)) <= limit or i == 0)
    _, fence, depth = states[n]
    return "".join(line + "\n" for line in lines[:n]) + _closers(fence, depth, note)


def _closers(fence: tuple[str, int] | None, depth: int, note: str) -> str:
    """What closes an open fence and open `<details>` (each after a blank line, so no
    list or paragraph swallows it), then ``note``."""
    out = f"{fence[0] * fence[1]}\n" if fence is not None else ""
    out += "".join("\n</details>\n" for _ in range(depth))
    return out + (f"\n{note}" if note else "")

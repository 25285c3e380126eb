"""How compose v2 names a project, and what compose itself refuses (ComposeError).

Apart from compose.py (the file reader) because most stand-in commands (`compose ps`,
`logs`, `stop`, `down`) act on a project by name only and need no more of compose than
this: each command is a process start on the host, and the reader's imports are most of
one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

_PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


class ComposeError(Exception):
    """What compose itself would reject; the message is shown to the operator as is."""


def project_name(explicit: str | None, environ: Mapping[str, str], directory: Path) -> str:
    """`-p`, else COMPOSE_PROJECT_NAME, else the project directory's name, like compose."""
    name = explicit or environ.get("COMPOSE_PROJECT_NAME") or directory.resolve().name
    normal = re.sub(r"[^a-z0-9_-]", "", name.lower())
    if explicit and not _PROJECT_NAME.fullmatch(explicit):
        raise ComposeError(
            f'invalid project name "{explicit}": must consist only of lowercase alphanumeric '
            "characters, hyphens, and underscores as well as start with a letter or number"
        )
    if not normal:
        raise ComposeError("project name must not be empty")
    return normal

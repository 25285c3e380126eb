"""The tests' one search for minted secrets in files.

Every secret test mints values and then looks for them everywhere flipgitops could have left
them. The walk is shared so each test searches the same way: regular files only (a FIFO or
socket would block the read; a symlink's target is searched where it lives), and whatever
another process removes meanwhile is skipped, never an error (tests share /tmp).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path


def grep_tree(root: Path, needles: Iterable[str], *, skip: set[Path] | None = None) -> list[str]:
    """Paths of the regular files under ``root`` (recursively) holding any needle."""
    encoded = [n.encode() for n in needles]
    skipped = skip or set()
    hits: list[str] = []
    for parent, _dirs, files in os.walk(root, onerror=lambda _e: None):
        for name in files:
            path = Path(parent) / name
            try:
                if path in skipped or not stat.S_ISREG(path.lstat().st_mode):
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            if any(n in data for n in encoded):
                hits.append(str(path))
    return hits

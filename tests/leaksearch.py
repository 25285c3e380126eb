"""The tests' one search for minted secrets in files.

Every secret test mints values and then looks for them everywhere flipgitops could have left
them. The walk is shared so each test searches the same way: regular files only (a FIFO or
socket would block the read; a symlink's target is searched where it lives), and whatever
another process removes meanwhile is skipped, never an error (tests share /tmp).

A search of a shared tree (all of /tmp) may be limited to the files changed since the test
began (`changed_since`, compared with each file's ctime): a value minted during the test can
only be in a file written (or renamed, linked, chmod-ed) after it was minted, and a file's
ctime cannot be set back from user space the way its mtime can (`os.utime`, `cp -p`).
Everything the test could have leaked into is still read; the gigabytes other tests and
earlier runs keep in /tmp are not.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

# How far a file's ctime may lag the clock the test read: the kernel stamps inodes from a
# coarse clock (a tick, a few ms); a second is far more than that and costs nothing.
CTIME_SLACK_SECONDS = 1.0


def grep_tree(root: Path, needles: Iterable[str], *, skip: set[Path] | None = None,
              changed_since: float | None = None) -> list[str]:
    """Paths of the regular files under ``root`` (recursively) holding any needle; with
    ``changed_since`` (a `time.time()` taken before the needles were minted), only files
    whose ctime is not older than it are read."""
    encoded = [n.encode() for n in needles]
    skipped = skip or set()
    oldest = None if changed_since is None else changed_since - CTIME_SLACK_SECONDS
    hits: list[str] = []
    for parent, _dirs, files in os.walk(root, onerror=lambda _e: None):
        for name in files:
            path = Path(parent) / name
            try:
                info = path.lstat()
                if path in skipped or not stat.S_ISREG(info.st_mode):
                    continue
                if oldest is not None and info.st_ctime < oldest:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            if any(n in data for n in encoded):
                hits.append(str(path))
    return hits

"""One definition of "the same files": the digest of a set of (path, kind, sha256) entries.

The controller hashes FLIP's `trust/` from git blobs (adapters/release.py) and the host
hashes what is on disk (deploy_release, facts); both use these functions, so a deployed
release is intact exactly when the two digests are equal. `kind` is git's view of a file:
`644`, `755` (any execute bit) or `link` (a symlink, hashed by its target).
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    Entry = tuple[str, str, str]

KIND_FILE = "644"
KIND_EXEC = "755"
KIND_LINK = "link"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree_sha256(entries: Iterable[Entry]) -> str:
    """sha256 over `path NUL kind NUL sha256 LF`, sorted by path."""
    h = hashlib.sha256()
    for path, kind, sha in sorted(entries):
        h.update(f"{path}\0{kind}\0{sha}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def kind_of_mode(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return KIND_LINK
    return KIND_EXEC if mode & 0o111 else KIND_FILE


def disk_entry(root: str, rel: str) -> Entry | None:
    """The entry of `root/rel` as it is on disk; None when it is missing or a directory."""
    path = os.path.join(root, rel)
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return rel, KIND_LINK, digest(os.readlink(path).encode("utf-8", "surrogateescape"))
    if not stat.S_ISREG(st.st_mode):
        return None
    with open(path, "rb") as fh:
        return rel, kind_of_mode(st.st_mode), digest(fh.read())


def disk_tree(root: str, rels: Iterable[str]) -> tuple[str, list[str]]:
    """The digest of `rels` under `root` as found, and the ones that are missing."""
    entries: list[Entry] = []
    missing: list[str] = []
    for rel in rels:
        entry = disk_entry(root, rel)
        if entry is None:
            missing.append(rel)
            entries.append((rel, "missing", ""))
        else:
            entries.append(entry)
    return tree_sha256(entries), missing

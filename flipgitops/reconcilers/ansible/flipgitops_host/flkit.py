"""The FL participant kit under `<FL_KIT_DIR>/net-1`: what is there, and what belongs.

`content_sha256` covers every path under net-1 (relative path, type, mode and bytes)
except what FLIP's FL client writes at run time, which the controller names in
``runtime`` (fnmatch patterns relative to net-1): deliver_fl_kit records it right after it
writes the kit, and facts recompute it, so an edit of any kit file (or a mode change) shows.
`stray` lists the top-most paths under net-1 outside the slot's own ``roots`` (another
slot's directory, a file left from another kit).

`listing_fingerprint` is the one recipe for "this slot's kit, as the bucket lists it": a
sha256 over (key relative to the date prefix, ETag, size). The controller computes it from
the bucket listing (adapters/kit_listing.py imports it from here); a host recomputes it from
its own files (`listed_fingerprint`), given the keys, because S3's ETag of an object uploaded
in one part is the MD5 of its bytes and the date prefix's `net-1/...` layout is the one
FLIP's `aws s3 sync` leaves under FL_KIT_DIR. So a kit FLIP delivered, with no record of
flipgitops' on the host, is known to be the bucket's kit when the two fingerprints agree.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator


def _walk(base: str) -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, lstat) of everything under ``base``, parents before children."""
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        here = os.path.join(base, rel_dir) if rel_dir else base
        try:
            names = sorted(os.listdir(here))
        except OSError:
            continue
        for name in names:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            try:
                st = os.lstat(os.path.join(base, rel))
            except OSError:
                continue
            yield rel, st
            if stat.S_ISDIR(st.st_mode):
                stack.append(rel)


def _excluded(rel: str, runtime: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(rel, pattern) for pattern in runtime)


def listing_fingerprint(entries: Iterable[tuple[str, str, int]]) -> str:
    """sha256 over `key NUL etag NUL size LF` of (key, ETag, size) entries, sorted."""
    lines = "".join(f"{k}\0{e}\0{s}\n" for k, e, s in sorted(entries))
    return hashlib.sha256(lines.encode()).hexdigest()


def _md5() -> Any:
    """An MD5 for comparing with ETags, not for security (FIPS hosts refuse plain md5())."""
    try:
        return hashlib.md5(usedforsecurity=False)
    except TypeError:  # Python < 3.9
        return hashlib.md5()


def _md5_and_size(path: str) -> tuple[str, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    h = _md5()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest(), st.st_size


def listed_fingerprint(kit_dir: str, keys: Iterable[str]) -> str | None:
    """`listing_fingerprint` of the host's files at the bucket's ``keys`` (relative to the
    date prefix, i.e. to FL_KIT_DIR): each file's MD5 stands for its ETag. A folder marker
    (a key ending in `/`) is an empty object, so a directory there counts as one. A missing
    file, or a key that is not a plain relative path, gives an entry no bucket has, so the
    fingerprints differ. None when there are no keys to compare."""
    wanted = list(keys)
    if not wanted:
        return None
    empty = _md5().hexdigest()
    entries: list[tuple[str, str, int]] = []
    for key in wanted:
        parts = key.rstrip("/").split("/")
        if key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            entries.append((key, "unsafe", -1))
            continue
        path = os.path.join(kit_dir, *parts)
        if key.endswith("/"):
            entries.append((key, empty, 0) if os.path.isdir(path) else (key, "missing", -1))
            continue
        found = _md5_and_size(path)
        entries.append((key, *found) if found else (key, "missing", -1))
    return listing_fingerprint(entries)


def content_sha256(net1: str, runtime: Iterable[str]) -> str | None:
    """sha256 over `path NUL type NUL mode NUL sha256(bytes)`; None when net-1 is absent."""
    if not os.path.isdir(net1):
        return None
    patterns = list(runtime)
    lines = []
    for rel, st in _walk(net1):
        if _excluded(rel, patterns):
            continue
        mode = f"{stat.S_IMODE(st.st_mode):04o}"
        if stat.S_ISDIR(st.st_mode):
            lines.append(f"{rel}\0d\0{mode}\0")
        elif stat.S_ISLNK(st.st_mode):
            target = os.readlink(os.path.join(net1, rel))
            lines.append(f"{rel}\0l\0{mode}\0{target}")
        elif stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with open(os.path.join(net1, rel), "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            lines.append(f"{rel}\0f\0{mode}\0{h.hexdigest()}")
        else:
            lines.append(f"{rel}\0o\0{mode}\0")
    body = "".join(line + "\n" for line in sorted(lines))
    return hashlib.sha256(body.encode("utf-8", "surrogateescape")).hexdigest()


def stray(net1: str, roots: Iterable[str]) -> list[str]:
    """Top-most paths under net-1 that are neither a slot root, inside one, nor a parent."""
    wanted = [r.strip("/") for r in roots if r.strip("/")]
    out: list[str] = []
    skip: list[str] = []
    for rel, _ in _walk(net1):
        if any(rel.startswith(s + "/") for s in skip):
            continue
        inside = any(rel == r or rel.startswith(r + "/") for r in wanted)
        parent = any(r.startswith(rel + "/") for r in wanted)
        if inside:
            skip.append(rel)
        elif not parent:
            out.append(rel)
            skip.append(rel)
    return sorted(out)


def fqsn(slot_dir: str) -> str | None:
    """`client.fqsn` of `<slot_dir>/startup/fed_client.json` (nvflare), when readable."""
    import json

    try:
        with open(os.path.join(slot_dir, "startup", "fed_client.json"), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    client = data.get("client") if isinstance(data, dict) else None
    value = client.get("fqsn") if isinstance(client, dict) else None
    return value if isinstance(value, str) else None

"""The world file: where the stand-in hub listens, the one fact the trust side needs from it.

A kit file names the hub as FLIP's does (`CENTRAL_HUB_API_URL=https://<domain>/api`). The
sandbox has no DNS or TLS for that domain, so the stand-in plays both: the world file maps
each `https://<domain>` origin to the stand-in hub's plain-HTTP address, and the stand-in
trust-api rewrites the origin before it connects. Shape (JSON, 0600):

    {"hub_urls": {"https://hub.flip.example": "http://127.0.0.1:8123"}}

A name the world file does not map does not resolve (the stand-in never asks real DNS), except
loopback literals (`127.0.0.1`, `localhost`, `[::1]`), which are reached as they are.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class WorldError(Exception):
    """A world file that cannot be read; the message names the file and the fix."""


def write_world(path: Path, hub_urls: Mapping[str, str]) -> Path:
    """Write (atomically, 0600) the mapping of public hub origins to local addresses."""
    for public, local in hub_urls.items():
        if urlsplit(public).scheme not in ("https", "http") or not urlsplit(public).hostname:
            raise WorldError(f"hub origin {public!r} must look like https://<domain>")
        if urlsplit(local).scheme != "http" or not urlsplit(local).hostname:
            raise WorldError(f"hub address {local!r} must look like http://127.0.0.1:<port>")
    data = {"hub_urls": {_origin(k): v.rstrip("/") for k, v in hub_urls.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".world-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def read_world(path: Path | None) -> dict[str, str]:
    """The hub_urls mapping; an absent path means an empty world (nothing resolves)."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorldError(f"world file {path} does not exist; write it with write_world()") from None
    except (OSError, ValueError) as exc:
        raise WorldError(f"world file {path} is not JSON ({exc.__class__.__name__})") from None
    urls = data.get("hub_urls") if isinstance(data, dict) else None
    if not isinstance(urls, dict):
        raise WorldError(f'world file {path} needs {{"hub_urls": {{...}}}}')
    return {_origin(str(k)): str(v).rstrip("/") for k, v in urls.items()}


def resolve(url: str, hub_urls: Mapping[str, str]) -> str | None:
    """The URL to connect to for `url`, or None when its host does not resolve."""
    parts = urlsplit(url)
    origin = _origin(url)
    if origin in hub_urls:
        tail = url[len(f"{parts.scheme}://{parts.netloc}"):]
        return hub_urls[origin] + tail
    if parts.scheme == "http" and parts.hostname in _LOOPBACK:
        return url
    return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"

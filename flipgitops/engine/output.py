"""Writing report files: atomically, so a CI step never uploads half a plan."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

Echo = Callable[..., Any]


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same directory and ``os.replace`` it into place. A
    failure is an error naming the file (never a traceback)."""
    from flipgitops.errors import FlipGitopsError

    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise FlipGitopsError(f"cannot write {path}: {exc.strerror or type(exc).__name__}"
                              ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise FlipGitopsError(f"cannot write {path}: {exc.strerror or type(exc).__name__}"
                              ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _probe(directory: Path) -> str | None:
    """Why a file cannot be created in ``directory`` (tried for real: as root, access(2)
    says yes to directories such as /proc that refuse every new file), or None."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".flipgitops-probe-", dir=directory)
    except OSError as exc:
        return f"{directory} does not accept new files: {exc.strerror or type(exc).__name__}"
    os.close(fd)
    os.unlink(tmp)
    return None


def check_writable(path: Path, option: str) -> None:
    """Fail before any work when ``path`` cannot be written (a missing or read-only
    directory, a directory in its place), naming the option and the reason."""
    from flipgitops.errors import FlipGitopsError

    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    problem = None
    if path.is_dir():
        problem = "it is a directory"
    elif path.exists() and not path.is_file():
        # a device or FIFO (/dev/null, /dev/stdout): the atomic write would replace it
        problem = "it is not a regular file; give a file path"
    elif directory.exists() and not directory.is_dir():
        problem = f"{directory} is not a directory"
    elif directory.exists() and not os.access(directory, os.W_OK | os.X_OK):
        problem = f"{directory} is not writable"
    elif path.exists() and not os.access(path, os.W_OK):
        problem = "the file is not writable"
    elif not directory.exists():
        parent = next((p for p in directory.parents if p.exists()), Path("/"))
        if not parent.is_dir():
            problem = f"{parent} is not a directory"
        elif not os.access(parent, os.W_OK | os.X_OK):
            problem = f"{directory} does not exist and {parent} is not writable"
        else:
            problem = _probe(parent)
    else:
        problem = _probe(directory)
    if problem:
        raise FlipGitopsError(f"{option} {path}: cannot write there ({problem}); nothing was done")

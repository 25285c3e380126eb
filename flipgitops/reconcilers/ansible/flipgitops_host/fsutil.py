"""Files and directories on a trust host, written the way FLIP's own tooling writes them.

`write_secure` is scripts/trust_kit_lib.py's write_secure (@17ae2fae): open O_WRONLY|O_CREAT
with the final mode, fchmod (the file never holds a secret at a wider mode, even if it
existed before), truncate, write. Owners are changed only when running as root, as FLIP's
Ansible roles run (`become: true`); a non-root run keeps the caller's owner.

Every error is a HostFileError naming the path and the reason, never the content.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile


class HostFileError(Exception):
    """A path that could not be written or read (the message names the path only)."""


def is_root() -> bool:
    return os.geteuid() == 0


def describe(exc: OSError, path: str, doing: str = "write") -> HostFileError:
    reason = exc.strerror or type(exc).__name__
    return HostFileError(f"could not {doing} {path}: {reason}")


def _chown(path_or_fd: str | int, uid: int | None, gid: int | None) -> None:
    if not is_root() or (uid is None and gid is None):
        return
    u = -1 if uid is None else uid
    g = -1 if gid is None else gid
    if isinstance(path_or_fd, int):
        os.fchown(path_or_fd, u, g)
    else:
        os.lchown(path_or_fd, u, g)


def _absolute(path: str) -> None:
    """Modules run in whatever directory Ansible chose: a relative path would land there."""
    if not os.path.isabs(path):
        raise HostFileError(f"refusing the relative path {path!r}: flipgitops writes absolute "
                            "paths only")


def ensure_dir(path: str, mode: int, uid: int | None = None, gid: int | None = None) -> bool:
    """`file: state=directory mode=… owner=…` for one path (parents made 0755 as needed)."""
    _absolute(path)
    changed = False
    try:
        if not os.path.isdir(path):
            parent = os.path.dirname(path.rstrip("/"))
            if parent and parent != path and not os.path.isdir(parent):
                changed = ensure_dir(parent, 0o755) or changed
            os.mkdir(path, mode)
            changed = True
        st = os.stat(path)
        if stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)
            changed = True
        if is_root() and ((uid is not None and st.st_uid != uid) or
                          (gid is not None and st.st_gid != gid)):
            _chown(path, uid, gid)
            changed = True
    except OSError as exc:
        raise describe(exc, path, "create the directory") from None
    return changed


def read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise describe(exc, path, "read") from None


def write_secure(path: str, data: bytes, mode: int = 0o600,
                 uid: int | None = None, gid: int | None = None) -> None:
    """FLIP's write_secure: the mode is set before a byte of the new content is written."""
    _absolute(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), mode)
    except OSError as exc:
        raise describe(exc, path) from None
    try:
        os.fchmod(fd, mode)
        _chown(fd, uid, gid)
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError as exc:
        raise describe(exc, path) from None
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, mode: int,
                 uid: int | None = None, gid: int | None = None) -> None:
    """Write beside the target (created at ``mode``) and rename over it."""
    _absolute(path)
    directory = os.path.dirname(path) or "."
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".flipgitops-")
    except OSError as exc:
        raise describe(exc, path) from None
    try:
        try:
            os.fchmod(fd, mode)
            _chown(fd, uid, gid)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise describe(exc, path) from None


def write_link(path: str, target: str) -> None:
    try:
        if os.path.lexists(path):
            if os.path.islink(path) and os.readlink(path) == target:
                return
            remove(path)
        os.symlink(target, path)
    except OSError as exc:
        raise describe(exc, path) from None


def remove(path: str) -> None:
    """Remove a file, link or tree; a missing path is fine."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise describe(exc, path, "remove") from None


def wipe_contents(path: str) -> None:
    """`find <path> -mindepth 1 -delete` (flip_fl_kit/tasks/s3.yml@83e67f0e)."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise describe(exc, path, "list") from None
    for name in names:
        remove(os.path.join(path, name))


def owner_ids(user: str | None) -> tuple[int | None, int | None]:
    """(uid, gid) of a user name or a numeric uid; (None, None) for none."""
    if not user:
        return None, None
    if user.isdigit():
        return int(user), int(user)
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise HostFileError(f"user {user} does not exist on this host") from None
    return entry.pw_uid, entry.pw_gid

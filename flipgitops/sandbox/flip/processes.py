"""The stand-in's container processes, seen through /proc.

A container process is started in a new session, so its process group id is its pid and
one `killpg` reaches everything it started. A pid alone can be reused after the process
exits, so every record keeps the process's start time (field 22 of /proc/<pid>/stat) and a
pid only counts as *ours* while both match. A zombie counts as dead: the sandbox's pid 1 may
not reap orphans.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the container CLI imports this module on every command: no subprocess
    import subprocess

PROC = Path("/proc")


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (field 3 on), or None if gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return stat.rsplit(")", 1)[-1].split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks, or None if it is gone or a zombie."""
    fields = _stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def cpu_seconds(pid: int) -> float:
    """CPU the process and its reaped children used (utime+stime+cutime+cstime); 0 if gone."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def alive(pid: int, started: int) -> bool:
    """True while `pid` is the very process recorded (same start time) and not a zombie."""
    _reap(pid)
    return start_time(pid) == started


def _reap(pid: int) -> None:
    """Collect our own exited child so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def terminate(pid: int, started: int, grace: float = 3.0) -> bool:
    """SIGTERM the process group, SIGKILL it after `grace` seconds; True once it is gone.

    Like `docker stop`: the process gets a chance to log its shutdown line first.
    """
    if not alive(pid, started):
        return True
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid, started):
                return True
            time.sleep(0.02)
    return not alive(pid, started)


def stop_child(proc: subprocess.Popen[str], grace: float) -> None:
    """Stop a child we started and hold: SIGTERM, so it cleans up after itself (the CLI
    server removes its socket, the demo its sandbox), SIGKILL after ``grace`` seconds."""
    from subprocess import TimeoutExpired

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except TimeoutExpired:
            proc.kill()
            proc.wait()


def cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def find(module: str, flag: str, value: str) -> list[int]:
    """Live pids running `python -m <module>` with `<flag> <value>` in their argv."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        argv = cmdline(pid)
        if module not in argv or start_time(pid) is None:
            continue
        pairs = itertools.pairwise(argv)
        if any(a == flag and b == value for a, b in pairs):
            found.append(pid)
    return found

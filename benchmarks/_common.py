"""Shared pieces of the benchmark scripts: the banner, timing, verdicts, generated trusts.

Benchmarks are plain scripts (`uv run python benchmarks/<name>.py`, from the repository
root) that print figures and ratios measured in one run on one machine; ratios are what
the targets are about, because absolute times depend on the machine. The repository root
goes on sys.path so the scripts import this checkout's `flipgitops` (and `tests.builders`,
the one home of "an observed world in sync with a manifest").
"""

from __future__ import annotations

import ipaddress
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

T = TypeVar("T")

# Public addresses for generated trusts (the validator rejects private ones): the
# documentation ranges first, as the examples use, then public space.
_IP_POOLS = ("203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24", "81.2.0.0/16")


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def banner(title: str) -> tuple[float, float, float]:
    """Print what the figures depend on; returns the load average at the start."""
    load = load_average()
    cpus = os.cpu_count() or 1
    print(f"# {title}")
    print(f"machine: {platform.platform()} | cpus: {cpus} | "
          f"python: {platform.python_version()} ({platform.python_implementation()})")
    print(f"commit: {commit()} | date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')} | "
          f"load average: {', '.join(f'{x:.2f}' for x in load)}")
    if load[0] > 1:
        print(f"note: load average {load[0]:.1f} > 1 on {cpus} CPU(s): the machine is busy "
              "(other work is running); wall times are inflated, CPU times and ratios less so")
    print()
    return load


def commit() -> str:
    """HEAD's short hash, with `+dirty` when the working tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def public_ips() -> Iterator[str]:
    for pool in _IP_POOLS:
        for ip in ipaddress.ip_network(pool).hosts():
            yield str(ip)


def timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """(result, wall seconds, CPU seconds of the calling thread): an in-process emulator
    (moto, the stand-in hub) works in other threads, and its work is not ours."""
    wall, cpu = time.perf_counter(), time.thread_time()
    out = fn()
    return out, time.perf_counter() - wall, time.thread_time() - cpu


def best_of(n: int, fn: Callable[[], T]) -> tuple[T, float, float]:
    """Fastest of n runs (wall; and the least CPU): the least noisy figure on a shared
    machine."""
    best_wall = best_cpu = float("inf")
    out: Any = None
    for _ in range(n):
        out, wall, cpu = timed(fn)
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    return out, best_wall, best_cpu


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


"""Bounded waits for state that only time changes (a task stopping, a deployment settling).

Polling is not retrying: botocore's standard mode still retries each call; this only decides
how often to look and when to give up, and says what it saw each time so a long wait shows
progress. The clock is injectable so tests wait milliseconds, not minutes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from flipgitops.adapters.env_json import json_object_env
from flipgitops.errors import AdapterError

T = TypeVar("T")


class WaitTimeout(AdapterError):
    """The state was not reached within the bound; the message says what was last seen."""


@dataclass(frozen=True)
class Waits:
    """How long each kind of wait may take, and how often it looks (seconds)."""

    task_timeout: float = 900.0  # a one-off flip-api task (register/delete/reset)
    stable_timeout: float = 1200.0  # a service deployment (services-stable waits 10 min x2)
    snapshot_timeout: float = 3600.0
    interval: float = 6.0  # the longest pause between two looks
    # The first pause; each next one doubles, up to `interval`. A one-off task that is done
    # in a second (FLIP's register_trust on a warm cluster, the sandbox) is seen done in a
    # second, not after a whole interval, while a long wait still looks every `interval`.
    first_interval: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


def poll(
    look: Callable[[], tuple[T | None, str]],
    *,
    what: str,
    timeout: float,
    waits: Waits,
    report: Callable[[str], None],
) -> T:
    """Call ``look`` until it returns a value; each call also returns what it saw (a progress
    line, reported when it changes). Raises WaitTimeout naming ``what`` and the last sight."""
    deadline = waits.monotonic() + timeout
    last_seen = ""
    pause = min(waits.first_interval, waits.interval)
    while True:
        value, seen = look()
        if value is not None:
            return value
        if seen != last_seen:
            report(f"{what}: {seen}")
            last_seen = seen
        if waits.monotonic() >= deadline:
            raise WaitTimeout(f"gave up {what} after {timeout:.0f}s; last seen: {seen}")
        waits.sleep(pause)
        pause = min(pause * 2, waits.interval)


WAITS_ENV = "FLIPGITOPS_WAITS"
_WAIT_KEYS = ("task_timeout", "stable_timeout", "snapshot_timeout", "interval")


def waits_from_env(environ: Mapping[str, str] | None = None) -> Waits:
    """The bounds of this process: FLIP's own (`services-stable`, a one-off task) unless
    ``FLIPGITOPS_WAITS`` (JSON, seconds) sets some of them — a hub whose deployments take
    longer than 20 minutes, or the sandbox, whose stand-in settles in a second.

        FLIPGITOPS_WAITS='{"stable_timeout": 1800, "interval": 10}'

    A malformed value is an error naming the key, never a silent default."""
    data = json_object_env(WAITS_ENV, (os.environ if environ is None else environ).get(
        WAITS_ENV), _WAIT_KEYS, example='{"stable_timeout": 1800}',
        unset_means="FLIP's own bounds")
    if data is None:
        return Waits()
    values: dict[str, float] = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise AdapterError(f"{WAITS_ENV}: {key} must be a positive number of seconds")
        values[key] = float(value)
    base = Waits()
    return replace(base, task_timeout=values.get("task_timeout", base.task_timeout),
                   stable_timeout=values.get("stable_timeout", base.stable_timeout),
                   snapshot_timeout=values.get("snapshot_timeout", base.snapshot_timeout),
                   interval=values.get("interval", base.interval))

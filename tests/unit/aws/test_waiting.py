"""poll() looks again after 0.5 s, then ever less often, up to the interval (a fake clock)."""

from __future__ import annotations

import pytest

from flipgitops.adapters.waiting import Waits, WaitTimeout, poll


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def test_pauses_double_from_the_first_up_to_the_interval() -> None:
    clock = Clock()
    waits = Waits(interval=6.0, sleep=clock.sleep, monotonic=clock.monotonic)
    looks = iter([None] * 6 + ["done"])
    seen: list[str] = []
    got = poll(lambda: (next(looks), "running"), what="waiting", timeout=100, waits=waits,
               report=seen.append)
    assert got == "done"
    assert clock.pauses == [0.5, 1.0, 2.0, 4.0, 6.0, 6.0]
    assert seen == ["waiting: running"]  # reported once: it did not change


def test_gives_up_after_the_timeout_naming_the_last_sight() -> None:
    clock = Clock()
    waits = Waits(interval=1.0, first_interval=5.0, sleep=clock.sleep,
                  monotonic=clock.monotonic)
    with pytest.raises(WaitTimeout, match="gave up the task after 3s; last seen: PENDING"):
        poll(lambda: (None, "PENDING"), what="the task", timeout=3, waits=waits,
             report=lambda _: None)
    assert set(clock.pauses) == {1.0}  # first_interval never exceeds interval

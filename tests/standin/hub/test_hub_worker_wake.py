"""The hub worker hears of moto's ECS writes (moto_server.listen) instead of polling fast:
idle, it polls once a second, and an ECS write wakes it at once."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from flipgitops.sandbox.flip import worker
from flipgitops.sandbox.flip.world import StandinHub
from flipgitops.sandbox.moto_server import MotoServer, listen


def test_a_moto_server_of_this_process_tells_its_listeners_of_each_request(
        moto: MotoServer, ecs: Any) -> None:
    heard: list[str] = []
    stop = listen(moto.url, heard.append)
    assert stop is not None
    ecs.list_clusters()
    assert "AmazonEC2ContainerServiceV20141113.ListClusters" in heard
    stop()
    count = len(heard)
    ecs.list_clusters()
    assert len(heard) == count  # stopped
    assert listen("http://127.0.0.1:9", heard.append) is None  # not a server of ours


def _ticks_after(hub: StandinHub, ticks: int, seconds: float) -> float | None:
    """Seconds until the worker ticked past ``ticks``, None if it did not in ``seconds``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if hub.worker.ticks > ticks:
            return time.monotonic() - started
        time.sleep(0.01)
    return None


def test_an_idle_worker_sleeps_until_an_ecs_write_wakes_it(
        hub: StandinHub, ecs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # An idle poll so rare the test would see none: only a heard write can wake it.
    monkeypatch.setattr(worker, "HEARD_IDLE_AFTER", 0.2)
    monkeypatch.setattr(worker, "HEARD_IDLE_INTERVAL", 60.0)
    time.sleep(1.5)  # past any wait begun with the old intervals (1 s at most)
    ticks = hub.worker.ticks
    ecs.list_clusters()  # a read: nothing for the worker to do
    assert _ticks_after(hub, ticks, 0.5) is None
    with contextlib.suppress(ClientError):  # moto refuses; the write is still heard
        ecs.update_service(cluster="flip-cluster", service="no-such-service")
    woke = _ticks_after(hub, ticks, 2.0)
    assert woke is not None and woke < 0.5, woke

"""Fixtures for the hub adapter tests: clients on the real moto server (tests/conftest.py),
and the stand-in FLIP hub (`flipgitops.sandbox.flip`) playing FLIP's side against it.

Nothing is patched: boto3 talks HTTP to moto, flipgitops talks HTTP to the stand-in's
flip-api and registry through ``FLIPGITOPS_ENDPOINTS``, and the stand-in's worker executes
the one-off tasks flipgitops starts and plays ECS's scheduler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_hubworld import REGION, Standin, new_clients

from flipgitops.adapters.aws_session import CallCounter, Clients
from flipgitops.model.manifest import Manifest
from flipgitops.sandbox.flip.seed import seed_hub
from flipgitops.sandbox.flip.world import StandinHub
from flipgitops.sandbox.moto_server import MotoServer


@pytest.fixture
def clients(moto: MotoServer) -> Clients:
    return new_clients()


@pytest.fixture
def counter() -> CallCounter:
    return CallCounter()


@pytest.fixture
def counted(moto: MotoServer, counter: CallCounter) -> Clients:
    """Fresh clients whose every API call is recorded in ``counter``."""
    return new_clients(counter)


@pytest.fixture
def standin(moto: MotoServer, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[Callable[..., Standin]]:
    """``standin(manifest, **seed_options)``: start the stand-in hub for the manifest's
    domain, seed FLIP's hub for it, point FLIPGITOPS_ENDPOINTS at it."""
    started: list[StandinHub] = []

    def start(manifest: Manifest, **seed: Any) -> Standin:
        hub = StandinHub(moto.url, REGION, domain=manifest.hub.domain,
                         era=seed.get("era") or manifest.hub.trust_registry)
        hub.start()
        started.append(hub)
        monkeypatch.setenv("FLIPGITOPS_ENDPOINTS", hub.endpoints_json)
        world = Standin(hub)
        world.seed = seed_hub(manifest, hub, **seed)
        return world

    yield start
    for hub in started:
        hub.close()

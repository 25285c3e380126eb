"""Fixtures for AWS integration tests: manifests, clients on the real moto server, a seeded hub.

Every fixture here talks to the `moto` server from tests/conftest.py over HTTP; nothing is
patched. A test that needs the hub to differ from the manifest changes it with plain boto3.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typing import Any

from awsworld import make_manifest, new_clients

from flipgitops.adapters.aws_session import CallCounter, Clients
from flipgitops.model.manifest import Manifest
from flipgitops.sandbox.moto_server import MotoServer

# v1's write side and seeder no longer exist in v2; imported where used so that the v2
# tests below this directory (tests/integration/aws/) still collect.


@pytest.fixture
def manifest_factory() -> Callable[..., Manifest]:
    return make_manifest


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
def hub(clients: Clients) -> tuple[Manifest, Any]:
    """A seeded hub in sync with a 3-trust manifest."""
    from flipgitops.sandbox.seed import seed_hub

    m = make_manifest(3)
    return m, seed_hub(m, clients)


@pytest.fixture
def actions(hub: tuple[Manifest, Any], clients: Clients) -> Any:
    """The write side (AwsActions) for the seeded hub, with short waits for moto."""
    from flipgitops.adapters.aws_actions import AwsActions  # type: ignore[import-not-found]

    return AwsActions(hub[0], clients, wait_delay=1, wait_max_attempts=30)

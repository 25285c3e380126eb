"""Fixtures for AWS integration tests: manifests, clients on the real moto server, a seeded hub.

Every fixture here talks to the `moto` server from tests/conftest.py over HTTP; nothing is
patched. A test that needs the hub to differ from the manifest changes it with plain boto3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from flipgitops.adapters.aws_actions import AwsActions
from flipgitops.adapters.aws_session import CallCounter, Clients
from flipgitops.model.manifest import Manifest
from flipgitops.sandbox.moto_server import MOTO_ACCOUNT_ID, MotoServer
from flipgitops.sandbox.seed import SeedResult, seed_hub

REGION = "eu-west-2"


def trust_ip(i: int) -> str:
    """Distinct documentation-range IPs for up to 750 trusts."""
    block = ("203.0.113", "198.51.100", "192.0.2")[i // 250]
    return f"{block}.{i % 250 + 1}"


def make_manifest(
    n_trusts: int = 3,
    *,
    environment: str = "dev",
    account_id: str = MOTO_ACCOUNT_ID,
    trusts: list[dict[str, Any]] | None = None,
    **hub: Any,
) -> Manifest:
    """A manifest for Trust_1..Trust_N (kind tre: hub side only), hub fields overridable."""
    if trusts is None:
        trusts = [
            {"name": f"Trust_{i}", "kind": "tre", "public_ip": trust_ip(i - 1),
             "fl_kit_slot": f"Trust_{i}"}
            for i in range(1, n_trusts + 1)
        ]
    hub_doc: dict[str, Any] = {
        "domain": f"{environment}.flip.example.org",
        "images": {"hub_tag": "v2.3.0", "fl_tag": "v2.3.0"},
    }
    hub_doc.update(hub)
    return Manifest.model_validate(
        {
            "version": 1,
            "environment": environment,
            "aws": {"account_id": account_id, "region": REGION},
            "state": {"bucket": f"flip-gitops-state-{environment}", "prefix": "flipgitops"},
            "hub": hub_doc,
            "trusts": trusts,
        }
    )


@pytest.fixture
def manifest_factory() -> Callable[..., Manifest]:
    return make_manifest


_SESSION: list[boto3.Session] = []


def session() -> boto3.Session:
    """One boto3 session (and its loaded service models) for all tests: loading the EC2
    model alone takes a second. Clients are still new per test, so hooks do not leak."""
    if not _SESSION:
        _SESSION.append(boto3.Session(region_name=REGION))
    return _SESSION[0]


def new_clients(counter: CallCounter | None = None) -> Clients:
    return Clients(session(), counter=counter)


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
def hub(clients: Clients) -> tuple[Manifest, SeedResult]:
    """A seeded hub in sync with a 3-trust manifest."""
    m = make_manifest(3)
    return m, seed_hub(m, clients)


@pytest.fixture
def actions(hub: tuple[Manifest, SeedResult], clients: Clients) -> AwsActions:
    """The write side (AwsActions) for the seeded hub, with short waits for moto."""
    return AwsActions(hub[0], clients, wait_delay=1, wait_max_attempts=30)

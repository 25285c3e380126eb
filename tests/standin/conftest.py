"""Fixtures for the stand-in hub: one real moto server per session, a world per test.

Same pattern as tests/conftest.py (v1): a ThreadedMotoServer reached over HTTP, reset
before each test, with the AWS_* environment pointing boto3 at it. Nothing is patched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hubworld import REGION, aws, make_manifest

from flipgitops.model.manifest import Manifest
from flipgitops.sandbox.flip.aws import client
from flipgitops.sandbox.flip.seed import SeedResult, seed_hub
from flipgitops.sandbox.flip.world import StandinHub
from flipgitops.sandbox.moto_server import SANDBOX_ENV, MotoServer, moto_server


@pytest.fixture(scope="session")
def _moto_session() -> Iterator[MotoServer]:
    """One server per session, with every backend the seeder uses loaded once up front
    (moto imports a backend on its first request: seconds the first test would pay)."""
    with moto_server() as server:
        for service, call in (("ec2", "describe_vpcs"), ("ecs", "list_clusters"),
                              ("s3", "list_buckets"), ("ssm", "describe_parameters"),
                              ("secretsmanager", "list_secrets"), ("logs", "describe_log_groups"),
                              ("rds", "describe_db_instances"),
                              ("cognito-idp", "list_user_pools")):
            kwargs = {"MaxResults": 1} if service == "cognito-idp" else {}
            getattr(client(service, server.url, REGION), call)(**kwargs)
        yield server


@pytest.fixture
def moto(_moto_session: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """A clean moto server reached over HTTP; AWS_* env points boto3 at it."""
    _moto_session.reset()
    for key, value in SANDBOX_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", _moto_session.url)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield _moto_session


@pytest.fixture
def hub(moto: MotoServer) -> Iterator[StandinHub]:
    """A running stand-in hub; the worker must not have hit an error by the end."""
    with StandinHub(moto.url, REGION, domain="dev.flip.example.org") as world:
        yield world
        assert world.worker.errors == []


@pytest.fixture
def seed(hub: StandinHub) -> Callable[..., tuple[Manifest, SeedResult]]:
    """``seed(era=..., existing=..., **seed_hub options)`` -> (manifest, result)."""
    def build(*, manifest: Manifest | None = None, era: str = "database",
              backend: str = "nvflare", trusts: int = 2, **options: Any
              ) -> tuple[Manifest, SeedResult]:
        m = manifest or make_manifest(era=era, backend=backend, trusts=trusts)
        options.setdefault("kit_dates", [])
        return m, seed_hub(m, hub, **options)
    return build


@pytest.fixture
def ecs(moto: MotoServer) -> Any:
    return aws("ecs", moto.url)


@pytest.fixture
def ssm(moto: MotoServer) -> Any:
    return aws("ssm", moto.url)


@pytest.fixture
def logs(moto: MotoServer) -> Any:
    return aws("logs", moto.url)


@pytest.fixture
def secretsmanager(moto: MotoServer) -> Any:
    return aws("secretsmanager", moto.url)

"""Shared fixtures: one real moto server per session, reset before each test that uses it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flipgitops.sandbox.moto_server import SANDBOX_ENV, MotoServer, moto_server

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def _moto_session() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


@pytest.fixture
def moto(_moto_session: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """A clean moto server reached over HTTP; AWS_* env points boto3 (and subprocesses) at it."""
    _moto_session.reset()
    for key, value in SANDBOX_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", _moto_session.url)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield _moto_session

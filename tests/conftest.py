"""Shared fixtures: one real moto server per session, reset before each test that uses it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from flipgitops.sandbox.moto_server import SANDBOX_ENV, MotoServer, moto_server

REPO_ROOT = Path(__file__).resolve().parent.parent

# Hypothesis profiles: `dev` (default, quick) and `ci` (2,000 examples; .ci/run selects it).
_PROFILE = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}
settings.register_profile("ci", max_examples=2000, **_PROFILE)  # type: ignore[arg-type]
settings.register_profile("dev", max_examples=200, **_PROFILE)  # type: ignore[arg-type]
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


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

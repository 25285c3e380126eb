"""Shared fixtures: one real moto server per session, reset before each test that uses it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from flipgitops.gc_thresholds import collect_rarely
from flipgitops.sandbox.moto_server import SANDBOX_ENV, MotoServer, moto_server
from tests.sshhosts import SshHosts, SshHostsError, skip_or_fail, unavailable

REPO_ROOT = Path(__file__).resolve().parent.parent

# Each xdist worker builds and keeps a large heap (moto's backends and models, botocore's,
# every test module) and churns through short-lived objects on top of it; CPython's default
# thresholds walk that heap in a full collection every ~70,000 net allocations. The CLI's
# thresholds (flipgitops/gc_thresholds.py) suit them too.
collect_rarely()

# Hypothesis profiles: `dev` (default, quick) and `ci` (1,000 examples; .ci/run selects it).
_PROFILE = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}
settings.register_profile("ci", max_examples=1000, **_PROFILE)  # type: ignore[arg-type]
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


@pytest.fixture
def ssh_hosts() -> Iterator[Callable[[int], SshHosts]]:
    """Make SSH trust hosts (tests/sshhosts.py): `ssh_hosts(2)`. Skipped where namespaces
    cannot be made, failed instead when CI is set. Teardown removes everything even after a
    failure, and fails the test if anything of them is left on the machine."""
    made: list[SshHosts] = []

    def make(count: int) -> SshHosts:
        reason = unavailable()
        if reason is not None:
            skip_or_fail(reason)
        hosts = SshHosts(count)
        made.append(hosts)
        hosts.start()
        return hosts

    yield make
    problems: list[str] = []
    for hosts in made:
        try:
            hosts.close()
        except SshHostsError as exc:
            problems.append(str(exc))
        problems += hosts.leftovers()
    assert not problems, f"SSH hosts left behind: {problems}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow tests first (a stable sort, so each module's order holds): whole applies of
    a minute or two must not be the last thing one worker runs while the others idle; the
    many short tests fill the end instead."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker per core, plus one. The slow tests wait on their subprocesses
    (Ansible, sshd, the stand-in hub's waits) a fifth of the time; a third worker on two
    cores fills it (10:32 -> see benchmarks/RESULTS.md)."""
    return (os.cpu_count() or 1) + 1

"""Fixtures for the host-step integration tests (the sandbox is in hostsandbox.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from flipgitops.engine.executors import load_executors
from flipgitops.sandbox.moto_server import MotoServer
from tests.integration.hosts.hostsandbox import HostWorld, build_world


@pytest.fixture
def host_world(tmp_path: Path, moto: MotoServer) -> Iterator[HostWorld]:
    load_executors()
    yield from build_world(tmp_path, moto)


@pytest.fixture
def clean_tmp() -> Iterator[None]:
    """Fail a test that leaves a private run dir behind."""
    yield
    left = [n for n in os.listdir("/tmp") if n.startswith("flipgitops-ansible-")
            and os.path.isdir(os.path.join("/tmp", n))
            and int(n.split("-")[2]) == os.getpid()]
    for name in left:
        shutil.rmtree(os.path.join("/tmp", name), ignore_errors=True)
    assert not left, f"private dirs left behind: {left}"


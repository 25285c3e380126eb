"""Fixtures for the trust-side stand-in: a FLIP checkout, hosts, kits, a fake hub, a world file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from standin_helpers import HUB_ORIGIN, TRUST_ID, Host, Kit, live_pids_under, minted_values
from standin_hub import FakeHub, key_hash

from flipgitops.sandbox.flip import trust_api
from flipgitops.sandbox.flip.checkout import (
    FlipCheckout,
    make_flip_checkout,
    render_kit,
    write_kit,
)
from flipgitops.sandbox.flip.world import write_world


@pytest.fixture(scope="session")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> FlipCheckout:
    return make_flip_checkout(tmp_path_factory.mktemp("flip") / "FLIP")


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    fake = FakeHub(trusts={})
    yield fake
    fake.stop()


@pytest.fixture
def world(tmp_path: Path, hub: FakeHub) -> Path:
    return write_world(tmp_path / "world.json", {HUB_ORIGIN: hub.url})


@pytest.fixture
def host(tmp_path: Path, world: Path) -> Iterator[Host]:
    machine = Host(tmp_path / "host1", world)
    yield machine
    trust_api.stop_all(machine.daemon_dir)
    assert live_pids_under(machine.daemon_dir) == []


@pytest.fixture
def kit(tmp_path: Path, checkout: FlipCheckout, hub: FakeHub) -> Kit:
    """A registered kit with freshly minted secrets, its FL kit staged; the hub knows its key."""
    fl_kit = tmp_path / "fl-kit"
    for part in ("local", "startup", "transfer"):
        (fl_kit / "net-1" / "services" / "Trust_1" / part).mkdir(parents=True)
    values = minted_values(fl_kit, checkout, tmp_path / "data")
    hub.trusts[key_hash(values["TRUST_API_KEY"])] = (TRUST_ID, "Trust_1")
    path = write_kit(tmp_path / "kits" / ".env.GSTT.production", render_kit(values))
    return Kit(path, values)

"""One run serves every host of a call; a host that cannot be reached fails alone."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from flipgitops.engine.ports_hosts import HostTarget, HostTask, StackInput
from flipgitops.model.actions import ActionKind
from tests.integration.hosts.hostsandbox import bare_world
from tests.unit.hosts.hostworld import make_manifest, trust_entry


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.slow
def test_an_unreachable_ssh_host_is_unknown_and_the_other_host_is_observed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = bare_world(tmp_path)
    monkeypatch.setenv("TRUST_2_KEY", "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nx\n-----END "
                       "OPENSSH " + "PRIVATE KEY-----\n")
    far = make_manifest([trust_entry("Trust_2", "C2X", flip_root="/opt/flip", connection="ssh",
                                     host={"address": f"127.0.0.1:{_closed_port()}",
                                           "user": "nobody", "ssh_key": "env:TRUST_2_KEY"})])
    targets = [HostTarget.of(world.manifest, world.manifest.trusts[0]),
               HostTarget.of(far, far.trusts[0])]
    facts = world.hosts.gather(targets)
    assert facts["Trust_1"].reachable, facts["Trust_1"].reason
    assert not facts["Trust_2"].reachable and facts["Trust_2"].reason
    results = world.hosts.run(ActionKind.HOST_STOP_STACK,
                              [HostTask(t, StackInput()) for t in targets])
    assert results["Trust_1"].ok and not results["Trust_1"].changed
    assert not results["Trust_2"].ok and results["Trust_2"].unreachable
    assert world.hosts.module_invocations == {"Trust_1": 2, "Trust_2": 0}

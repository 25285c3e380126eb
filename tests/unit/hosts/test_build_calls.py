"""The hosts adapter's one way of turning targets into per-trust calls (`_calls`): what
gather, read_kit_secrets and run share, checked without running Ansible."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flipgitops.adapters import hosts_build
from flipgitops.adapters.hosts import AnsibleHosts, _calls
from flipgitops.engine.ports_hosts import HostTarget
from flipgitops.errors import HostError
from flipgitops.model.manifest import Host


def _target(trust: str, flip_root: str = "/srv/flip") -> HostTarget:
    return HostTarget(trust=trust, host=Host(connection="local", flip_root=flip_root),
                      code="C1X", kit_file=".env.C1X.production", backend="nvflare",
                      ec2=False, hub_endpoint="127.0.0.1:1", fl_endpoint="127.0.0.1:1")


def test_a_call_that_cannot_be_built_fails_its_trust_alone() -> None:
    def make(target: HostTarget, given: str) -> tuple[str, dict[str, Any], None]:
        if given == "bad":
            raise hosts_build.BuildError(f"{target.trust}: no good")
        return "flip_x", {"given": given}, None

    calls, problems = _calls([(_target("A"), "ok"), (_target("B"), "bad")], make)
    assert set(calls) == {"A"} and calls["A"].spec == {"given": "ok"}
    assert calls["A"].entry == "flip_x" and calls["A"].secret is None
    assert problems == {"B": "B: no good"}


def test_a_trust_named_twice_is_refused_even_when_its_first_call_failed() -> None:
    def make(target: HostTarget, given: str) -> tuple[str, dict[str, Any], None]:
        if given == "bad":
            raise hosts_build.BuildError("no good")
        return "flip_x", {}, None

    for first in ("ok", "bad"):
        with pytest.raises(HostError, match="one run handles each host once"):
            _calls([(_target("A"), first), (_target("A"), "ok")], make)


def test_gather_and_read_kit_secrets_report_a_relative_flip_root_without_running(
        tmp_path: Path) -> None:
    # A relative flip_root is a BuildError: the trust's failure, and no run is started
    # (nothing to run: no ansible-runner is needed for this test to pass).
    hosts = AnsibleHosts(endpoints={}, tmp_root=str(tmp_path))
    bad = _target("Trust_1", flip_root="relative/flip")
    facts = hosts.gather([bad])["Trust_1"]
    assert not facts.reachable and "must be an absolute path" in (facts.reason or "")
    read = hosts.read_kit_secrets([bad], ["TRUST_API_KEY"])["Trust_1"]
    assert not read.ok and "must be an absolute path" in read.message
    assert list(tmp_path.iterdir()) == []

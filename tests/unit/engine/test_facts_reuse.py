"""The re-observation after an apply takes a host's facts from the apply's last host run
only when that host's target is still the one those facts were taken against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from flipgitops.engine.ports_hosts import HostTarget
from flipgitops.engine.wiring import Wiring
from flipgitops.model.observed import ObservedHost
from tests.builders import manifest


class GatheringHosts:
    def __init__(self) -> None:
        self.gathered: list[list[str]] = []

    def gather(self, targets: Sequence[HostTarget]) -> dict[str, ObservedHost]:
        self.gathered.append([t.trust for t in targets])
        return {t.trust: ObservedHost(trust=t.trust, reachable=True, reason="gathered")
                for t in targets}


def _wiring(hosts: GatheringHosts) -> tuple[Wiring, list[HostTarget]]:
    m = manifest(trusts=2)
    wiring = Wiring(manifest=m, path=Path("/tmp/dev.yaml"), clients=None,  # type: ignore[arg-type]
                    endpoints=None, _hosts=hosts)  # type: ignore[arg-type]
    return wiring, [HostTarget.of(m, t) for t in m.trusts if t.host]


def _taken(target: HostTarget) -> tuple[HostTarget, ObservedHost]:
    return target, ObservedHost(trust=target.trust, reachable=True, reason="from the run")


def test_equal_targets_reuse_the_runs_facts_and_the_rest_are_gathered() -> None:
    hosts = GatheringHosts()
    wiring, (t1, t2) = _wiring(hosts)
    said: list[str] = []
    wiring.remember_facts({"Trust_1": _taken(t1)})
    got = wiring.gather_hosts(said.append, [t1, t2])
    assert got["Trust_1"].reason == "from the run" and got["Trust_2"].reason == "gathered"
    assert hosts.gathered == [["Trust_2"]]
    assert said == ["facts of 1 trust host(s) from the apply's host run",
                    "gathering facts from 1 trust host(s)..."]


def test_a_changed_target_is_gathered_again() -> None:
    # e.g. register_trust assigned a slot after the facts' spec was built: other kit keys
    hosts = GatheringHosts()
    wiring, (t1, t2) = _wiring(hosts)
    wiring.remember_facts({"Trust_1": _taken(replace(t1, fl_kit_keys=("a/b",))),
                           "Trust_2": _taken(t2)})
    got = wiring.gather_hosts(lambda _s: None, [t1, t2])
    assert got["Trust_1"].reason == "gathered" and got["Trust_2"].reason == "from the run"
    assert hosts.gathered == [["Trust_1"]]


def test_facts_serve_one_observation_only() -> None:
    hosts = GatheringHosts()
    wiring, (t1, t2) = _wiring(hosts)
    wiring.remember_facts({"Trust_1": _taken(t1), "Trust_2": _taken(t2)})
    first = wiring.gather_hosts(lambda _s: None, [t1, t2])
    second = wiring.gather_hosts(lambda _s: None, [t1, t2])
    assert {h.reason for h in first.values()} == {"from the run"}
    assert {h.reason for h in second.values()} == {"gathered"}
    assert hosts.gathered == [["Trust_1", "Trust_2"]]

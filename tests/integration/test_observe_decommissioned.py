"""observe() gathers host facts for decommissioned trusts too: the planner can only stop a
decommissioned trust's stack if it sees it running (and must know when the host is gone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from awsworld import make_manifest
from hostfixtures import make_local_host, make_unreachable_host

from flipgitops.adapters.aws_session import Clients
from flipgitops.core.planner import plan
from flipgitops.engine.observe import observe
from flipgitops.model.plan import PlanOptions
from flipgitops.sandbox.moto_server import MotoServer
from flipgitops.sandbox.seed import seed_hub


def on_prem(name: str, ip: str, state: str, host: Any) -> dict[str, Any]:
    return {"name": name, "kind": "on-prem", "public_ip": ip, "fl_kit_slot": name,
            "state": state, "host": host.model_dump(mode="json", exclude_none=True)}


def test_decommissioned_hosts_are_observed(
    moto: MotoServer, clients: Clients, tmp_path: Path
) -> None:
    trusts = [
        on_prem("Trust_1", "203.0.113.11", "decommissioned", make_local_host(tmp_path, "Trust_1")),
        on_prem("Trust_2", "203.0.113.12", "decommissioned",
                make_unreachable_host(tmp_path, "Trust_2")),
        {"name": "Trust_3", "kind": "tre", "public_ip": "203.0.113.13", "fl_kit_slot": "Trust_3"},
    ]
    m = make_manifest(trusts=trusts)
    seed_hub(m, clients, trusts=False)

    o = observe(m, manifest_path=tmp_path / "dev.yaml", clients=clients)

    assert sorted(o.hosts) == ["Trust_1", "Trust_2"], "tre trusts have no host to observe"
    gone = o.hosts["Trust_2"]
    assert not gone.reachable and gone.reason, gone
    here = o.hosts["Trust_1"]
    assert here.reachable and here.docker_present and not here.stack_running, here
    # Nothing of theirs is left on the hub and no stack runs: nothing to do, nothing unknown.
    p = plan(m, o, PlanOptions())
    assert not any(a.kind == "host.stop_stack" for a in p.actions), p.actions
    assert p.unknown == (), p.unknown

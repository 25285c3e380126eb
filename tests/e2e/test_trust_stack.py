"""A trust host runs FLIP's own stack with FLIP's kit file, end to end (issue 15).

(`apply` exits 0 only when its fresh re-observation plans nothing, so a converged apply is
itself the "plan is then empty" check; `plan` is run explicitly where the story says so.)

One world (moto + the stand-in FLIP hub, a FLIP checkout with v2.3.0/v2.4.0, one local
trust host on the stand-in container CLI) and the real `python -m flipgitops` as a
subprocess. The host is read the way an operator reads it: its files, git for FLIP's
checkout, the stand-in daemon's records, `docker compose logs`. FLIP's side decides: the
stand-in refuses `up` when a variable FLIP's compose files need is unset, records which
service got which variable, and runs a trust-api that really polls the hub.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import boto3
import pytest

from flipgitops.sandbox.environment import REGION, TrustSpec, sandbox
from flipgitops.sandbox.flip.seed import publish_release
from flipgitops.sandbox.moto_server import MotoServer
from tests.e2e.hostside import (
    Operator,
    drop_kit_value,
    git_trust_tree,
    host_tree,
    kit_values,
    set_kit_value,
)

TRUST = TrustSpec("Trust_1", "GSTT", "203.0.113.11", region="London")
KIT = ".env.GSTT.development"
PROJECT = "trust1"
SERVICES = {"omop-db", "orthanc", "imaging-api", "data-access-api", "trust-api", "loki",
            "alloy", "grafana", "fl-client-net-1"}
HUB_CREDENTIALS = {"TRUST_API_KEY", "AES_KEY_BASE64", "CENTRAL_HUB_API_URL",
                   "TRUST_API_KEY_HEADER"}
AUTHENTICATED = "Authenticated to hub as trust 'Trust_1'"
UNAUTHORIZED = "Unexpected status 401 polling for tasks"


def facts_of(report: dict[str, object], trust: str = "Trust_1") -> set[str]:
    return {f["fact"] for f in report["findings"]  # type: ignore[attr-defined]
            if f["target"] in (f"host:{trust}", f"trust:{trust}")}  # type: ignore[index]


def action_ids(plan: dict[str, object]) -> set[str]:
    return {a["id"] for a in plan["actions"]}  # type: ignore[attr-defined,index]


@pytest.mark.slow
@pytest.mark.long  # the long lane: `pytest -m long`
def test_a_trust_host_runs_flips_own_stack(tmp_path: Path, moto: MotoServer) -> None:
    with sandbox(tmp_path / "box", trusts=[TRUST], moto=moto) as box:
        op = Operator(box)
        try:
            onboard(op)
            started_by_hand_the_flip_way(op)
            drift_is_caught_and_repaired(op)
            upgrade(op)
            op.assert_no_leaks(op.minted_secrets(), allowed=[op.kit_file("Trust_1", "GSTT")])
        finally:
            print("\n" + op.report_timings())


def onboard(op: Operator) -> None:
    box = op.box
    plan_file = box.root / "plan.json"
    op.cli("plan", "--env", "dev", "--out", str(plan_file), expect=2)
    op.cli("apply", "--env", "dev", "--plan", str(plan_file), "--yes", expect=0)

    # <flip_root>/trust is exactly the checkout's tracked trust/ at the manifest's ref.
    trust_dir = op.trust_dir("Trust_1")
    assert host_tree(trust_dir, skip=[KIT]) == git_trust_tree(box.checkout.root, "v2.3.0")
    assert not any((trust_dir / rel).exists() for rel in ("operator-notes.txt", "data"))

    # FLIP's kit file: 0600, FLIP's sections, the hub's values.
    kit = op.kit_file("Trust_1", "GSTT")
    assert stat.S_IMODE(kit.stat().st_mode) == 0o600
    values = kit_values(kit)
    assert values["FL_KIT_SLOT"] == "Trust_1" and values["FL_KIT_SLOT_NUMBER"] == "1"
    assert values["DOCKER_TAG"] == values["DOCKER_FL_TAG"] == "v2.3.0"
    assert not [k for k, v in values.items() if v.startswith("<run-make-")]

    # Every variable FLIP's compose files need is set: the stand-in refuses `up` otherwise,
    # naming the variable (a copy without one, from the base file and from the overlay).
    scratch = box.root / "scratch"
    scratch.mkdir()
    for key in ("TRUST_API_PORT", "MEMORY_PER_GPU_IN_GIB"):
        without = scratch / f"{KIT}.without-{key}"
        drop_kit_value(kit, key, without)
        proc = op.flip_make("Trust_1", "GSTT", "up", number=1, kit=without, project="trust91")
        assert proc.returncode != 0 and key in proc.stderr, proc.stderr
        without.unlink()  # the test's own copy holds the keys: gone before the leak search
    assert op.projects("Trust_1") == [PROJECT]

    # The project FLIP's Makefile names, with the FL client FLIP's overlay names; compose
    # gave the FL client none of the hub's credentials, and trust-api all of them.
    containers = op.containers("Trust_1", PROJECT)
    assert set(containers) == SERVICES
    assert containers["fl-client-net-1"]["image"] == \
        "ghcr.io/londonaicentre/flare-fl-client:v2.3.0"
    assert not HUB_CREDENTIALS & set(containers["fl-client-net-1"]["environment"])
    assert "TRUST_INTERNAL_SERVICE_KEY" in containers["fl-client-net-1"]["environment"]
    assert set(containers["trust-api"]["environment"]) >= HUB_CREDENTIALS

    # trust-api authenticated to the hub with the kit file's key: FLIP's own line.
    trust_id = values["EXPECTED_TRUST_ID"]
    op.wait_log("Trust_1", PROJECT, "trust-api", f"{AUTHENTICATED} ({trust_id}).")


def started_by_hand_the_flip_way(op: Operator) -> None:
    """An operator stops the stack and starts it again with FLIP's Makefile's command line:
    flipgitops sees the same stack and starts no second one."""
    down = op.flip_make("Trust_1", "GSTT", "down", number=1)
    assert down.returncode == 0, down.stderr
    assert op.projects("Trust_1") == []
    up = op.flip_make("Trust_1", "GSTT", "up", number=1)
    assert up.returncode == 0, up.stderr
    by_hand = op.container_ids("Trust_1", PROJECT)
    op.wait_log("Trust_1", PROJECT, "trust-api", AUTHENTICATED)

    plan = op.json("plan", "--env", "dev", expect=0)
    assert plan["actions"] == [] and plan["summary"]["in_sync"], plan  # type: ignore[index]
    op.cli("apply", "--env", "dev", "--yes", expect=0)
    assert op.projects("Trust_1") == [PROJECT]
    assert op.container_ids("Trust_1", PROJECT) == by_hand


def drift_is_caught_and_repaired(op: Operator) -> None:
    box, kit = op.box, op.kit_file("Trust_1", "GSTT")
    before = op.container_ids("Trust_1", PROJECT)

    # 1. A tag edited in the kit file, the file made world-readable, and the host egressing
    #    from another address than public_ip.
    set_kit_value(kit, "DOCKER_TAG", "v2.3.1")
    kit.chmod(0o644)
    box.hub.set_egress("Trust_1", "198.51.100.77")
    report = op.json("drift", "--env", "dev", expect=2)
    assert {"host.kit_values", "host.kit_file", "host.egress_ip"} <= facts_of(report), report
    plan = op.json("plan", "--env", "dev", expect=2)
    assert "host.write_kit_file:Trust_1" in action_ids(plan)
    assert any("198.51.100.77" in a for a in plan["advisories"]), plan["advisories"]  # type: ignore[attr-defined]
    box.hub.set_egress("Trust_1", TRUST.public_ip)
    op.cli("apply", "--env", "dev", "--yes", expect=0)
    assert stat.S_IMODE(kit.stat().st_mode) == 0o600
    assert kit_values(kit)["DOCKER_TAG"] == "v2.3.0"
    # The running containers never saw the edit: compose recreates nothing.
    assert op.container_ids("Trust_1", PROJECT) == before

    # 2. trust-api stopped by hand.
    stopped = op.docker("Trust_1", "stop", "trust1-trust-api-1")
    assert stopped.returncode == 0, stopped.stderr
    assert op.containers("Trust_1", PROJECT)["trust-api"]["state"] != "running"
    assert "host.stack_running" in facts_of(op.json("drift", "--env", "dev", expect=2))
    assert "host.start_stack:Trust_1" in action_ids(op.json("plan", "--env", "dev", expect=2))
    op.cli("apply", "--env", "dev", "--yes", expect=0)
    assert op.containers("Trust_1", PROJECT)["trust-api"]["state"] == "running"

    # 3. Another key in the kit file and the stack brought up by hand: compose recreates
    #    trust-api only, and the hub answers it 401.
    set_kit_value(kit, "TRUST_API_KEY", "a-key-the-hub-never-issued-0123456789")
    up = op.flip_make("Trust_1", "GSTT", "up", number=1)
    assert up.returncode == 0, up.stderr
    rekeyed = op.container_ids("Trust_1", PROJECT)
    assert {s for s in rekeyed if rekeyed[s] != before[s]} == {"trust-api"}
    op.wait_log("Trust_1", PROJECT, "trust-api", UNAUTHORIZED)
    facts = facts_of(op.json("drift", "--env", "dev", expect=2))
    assert {"host.trust_api_rejected", "host.kit_secrets"} <= facts, facts
    assert "host.write_kit_file:Trust_1" in action_ids(op.json("plan", "--env", "dev", expect=2))
    op.cli("apply", "--env", "dev", "--yes", expect=0)
    repaired = op.container_ids("Trust_1", PROJECT)
    assert {s for s in repaired if repaired[s] != rekeyed[s]} == {"trust-api"}
    op.wait_log("Trust_1", PROJECT, "trust-api", AUTHENTICATED)


def upgrade(op: Operator) -> None:
    box = op.box
    before = op.container_ids("Trust_1", PROJECT)
    op.edit_manifest("FLIP v2.4.0", hub__images__hub_tag="v2.4.0",
                     hub__images__fl_tag="v2.4.0", flip__ref="v2.4.0")
    publish_release(box.hub, box.load_manifest())  # FLIP's CI built the release
    blocked = op.json("plan", "--env", "dev", expect=3)
    assert {v["guard"] for v in blocked["violations"]} == {"FG007"}  # type: ignore[attr-defined,index]
    op.cli("plan", "--env", "dev", "--fl-quiesced", expect=2)
    op.cli("apply", "--env", "dev", "--yes", "--fl-quiesced", expect=0)

    # The hub deployed the new tags (each service's task definition, as deploy-centralhub
    # leaves it) and flip-api booted on it.
    ecs = boto3.client("ecs", endpoint_url=box.moto.url, region_name=REGION)
    services = ecs.describe_services(cluster="flip-cluster", services=[
        "flip-api", "fl-api-net-1", "fl-server-net-1"])["services"]
    for svc in services:
        td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
        image = next(c["image"] for c in td["containerDefinitions"]
                     if c["name"] == svc["serviceName"])
        assert image.endswith(":v2.4.0"), (svc["serviceName"], image)
    assert box.hub.wait_booted("v2.4.0", timeout=5)

    # The host's trust/ is FLIP's at v2.4.0, its containers run the new tags, recreated.
    assert host_tree(op.trust_dir("Trust_1"), skip=[KIT]) == \
        git_trust_tree(box.checkout.root, "v2.4.0")
    containers = op.containers("Trust_1", PROJECT)
    assert containers["trust-api"]["image"] == "ghcr.io/londonaicentre/trust-api:v2.4.0"
    assert containers["fl-client-net-1"]["image"] == \
        "ghcr.io/londonaicentre/flare-fl-client:v2.4.0"
    for service in ("trust-api", "fl-client-net-1", "imaging-api", "orthanc"):
        assert containers[service]["id"] != before[service], service
    op.wait_log("Trust_1", PROJECT, "trust-api", AUTHENTICATED)
    op.cli("plan", "--env", "dev", expect=0)
    assert os.stat(op.kit_file("Trust_1", "GSTT")).st_mode & 0o077 == 0

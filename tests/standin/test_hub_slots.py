"""The FL kit slot pool: FLIP's claim order, exhaustion and its one reconcile from SSM.

trusts_services/services/register_trust.py@160f4bf2 (`_claim_free_slot`), fl_kit_slots.py@315baf08.
"""

from __future__ import annotations

import json
from typing import Any

from hubworld import delete_command, log_lines, register_command, run_flip_task, wait_stopped

from flipgitops.sandbox.flip.flipnames import slot_number
from flipgitops.sandbox.flip.world import StandinHub

POOL = "/flip/fl_kit_slot_names"


def register(ecs: Any, ssm: Any, name: str) -> tuple[list[Any], str]:
    param = f"/flip/trust-kits/ephemeral/{name}"
    arn = run_flip_task(ecs, register_command(name, code="HX", out=param))
    wait_stopped(ecs, arn)
    kits = json.loads(ssm.get_parameter(Name=param, WithDecryption=True)["Parameter"]["Value"])
    return kits, arn


def test_slot_numbers_follow_flip() -> None:
    assert [slot_number(n) for n in ("Trust_007", "Trust_10", "Trust_K8s", "net_1_x")] == [
        7, 10, 10_000, 10_000]


def test_the_lowest_free_slot_by_number_is_claimed(
        hub: StandinHub, seed: Any, ecs: Any, ssm: Any) -> None:
    # Listed out of order, and "Trust_10" sorts before "Trust_2" as text.
    seed(slot_names=["Trust_10", "Trust_K8s", "Trust_2", "Trust_1"])
    claimed = [register(ecs, ssm, f"Hospital-{c}")[0][0]["fl_kit_slot"] for c in "ABCD"]
    assert claimed == ["Trust_1", "Trust_2", "Trust_10", "Trust_K8s"]

    arn = run_flip_task(ecs, delete_command("Hospital-A"), started_by="delete-trust")
    wait_stopped(ecs, arn)
    [kit], _ = register(ecs, ssm, "Hospital-E")
    assert (kit["fl_kit_slot"], kit["fl_kit_slot_number"]) == ("Trust_1", 1)


def test_an_exhausted_pool_gives_an_empty_kit(
        hub: StandinHub, seed: Any, ecs: Any, ssm: Any, logs: Any) -> None:
    seed(slot_count=1)
    assert register(ecs, ssm, "Hospital-A")[0][0]["fl_kit_slot"] == "Trust_1"
    kits, arn = register(ecs, ssm, "Hospital-B")
    assert kits == []
    assert ("ERROR - Failed to register trust 'Hospital-B': No FL kit slots available. "
            "Pre-provision more FL kits and try again.") in log_lines(logs, arn)
    assert hub.state.trust("Hospital-B") is None


def test_the_pool_is_read_from_ssm_when_it_runs_out(
        hub: StandinHub, seed: Any, ecs: Any, ssm: Any) -> None:
    """`make apply-fl-kit-slots` grows the parameter; the next registration claims the new
    slot without a flip-api redeploy (one reconcile inside the claim)."""
    seed(slot_count=1)
    register(ecs, ssm, "Hospital-A")
    ssm.put_parameter(Name=POOL, Value=json.dumps(["Trust_1", "Trust_2"]), Type="String",
                      Overwrite=True)
    assert [s.slot_name for s in hub.state.slots()] == ["Trust_1"]  # not re-read yet
    [kit], _ = register(ecs, ssm, "Hospital-B")
    assert kit["fl_kit_slot"] == "Trust_2"


def test_a_missing_pool_parameter_means_no_slots(
        hub: StandinHub, seed: Any, ecs: Any, ssm: Any, logs: Any) -> None:
    seed(slot_count=1)
    register(ecs, ssm, "Hospital-A")
    ssm.delete_parameter(Name=POOL)
    kits, arn = register(ecs, ssm, "Hospital-B")
    assert kits == []
    assert any(ln.startswith("WARNING - SSM parameter '/flip/fl_kit_slot_names' not found")
               for ln in log_lines(logs, arn))


def test_boot_seeds_the_pool_additively(
        hub: StandinHub, seed: Any, ecs: Any, ssm: Any) -> None:
    seed(existing=["Hospital-A"], slot_count=2)
    ssm.put_parameter(Name=POOL, Value=json.dumps(["Trust_2", "Trust_3"]), Type="String",
                      Overwrite=True)
    ecs.update_service(cluster="flip-cluster", service="flip-api", forceNewDeployment=True)
    hub.worker.poke()
    assert hub.state.wait_for(lambda: len([e for e in hub.state.events if e[0] == "boot"]) == 2)
    slots = {s.slot_name: s.assigned_to_trust_id for s in hub.state.slots()}
    assert set(slots) == {"Trust_1", "Trust_2", "Trust_3"}  # never deletes Trust_1
    assert slots["Trust_1"] == hub.state.trust("Hospital-A").id  # type: ignore[union-attr]

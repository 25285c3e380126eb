"""Several host steps as ONE real Ansible run and one host program run per host: order,
a failed step stops only what depends on it, secrets stay out of every message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from flipgitops.core import kitfile
from flipgitops.engine.ports_hosts import (
    HostStep,
    HostTarget,
    HostTask,
    KitFileInput,
    ProvisionInput,
    StackInput,
    VerifyInput,
)
from flipgitops.model.actions import ActionKind
from tests.integration.hosts.hostsandbox import bare_world

K = ActionKind
SECRET = "s3cr3t-trust-api-key-0600-do-not-show"


def _provision_and_kit_file(tmp_path: Path) -> tuple[Any, HostTarget, list[HostStep]]:
    """A bare local host, and the steps provision ("p") -> write_kit_file ("w")."""
    world = bare_world(tmp_path)
    trust = world.manifest.trusts[0]
    target = HostTarget.of(world.manifest, trust, world.root)
    profile = kitfile.host_profile(world.manifest, trust, slot_number=1)
    return world, target, [
        HostStep("p", K.HOST_PROVISION, HostTask(target, ProvisionInput(profile, 1))),
        HostStep("w", K.HOST_WRITE_KIT_FILE,
                 HostTask(target, KitFileInput(SecretStr(f"TRUST_API_KEY={SECRET}\n"))), ("p",)),
    ]


@pytest.mark.slow
def test_one_run_one_invocation_and_a_failure_stops_only_its_dependents(
        tmp_path: Path, clean_tmp: None) -> None:
    world, target, steps = _provision_and_kit_file(tmp_path)
    steps += [
        HostStep("s", K.HOST_START_STACK, HostTask(target, StackInput()), ("w",)),
        HostStep("v", K.HOST_VERIFY, HostTask(target, VerifyInput("Trust_1", 5)), ("s",)),
    ]
    got = world.hosts.run_steps(steps)
    assert world.hosts.module_invocations == {"Trust_1": 1}
    assert got["p"].ok and got["w"].ok, (got["p"], got["w"])
    kit_file = world.flip_root() / "trust" / target.kit_file
    assert kit_file.read_text() == f"TRUST_API_KEY={SECRET}\n"
    assert got["w"].message.endswith("(0600)")  # the secret masked, not its neighbours
    assert not got["s"].ok and got["s"].skipped_after is None
    assert "the kit file has no usable FL_KIT_SLOT_NUMBER" in got["s"].message  # refused
    assert not got["v"].ok and got["v"].skipped_after == "s"
    assert all(SECRET not in r.message for r in got.values())


@pytest.mark.slow
def test_facts_taken_after_the_steps_are_the_facts_a_gather_then_finds(
        tmp_path: Path, clean_tmp: None) -> None:
    # The re-observation after an apply uses these instead of a run of its own, so they must
    # be what a separate gather says of the host once the steps are done, and hold no secret.
    world, target, steps = _provision_and_kit_file(tmp_path)
    results, facts = world.hosts.run_steps_then_gather(steps, [target])
    assert results["p"].ok and results["w"].ok
    assert world.hosts.module_invocations == {"Trust_1": 1}
    after = facts["Trust_1"]
    assert after.reachable and after.kit_file.present, after
    assert SECRET not in after.model_dump_json()
    assert after == world.hosts.gather([target])["Trust_1"]
    # A target without steps gets a facts-only invocation of the same module.
    _, only = world.hosts.run_steps_then_gather([], [target])
    assert only["Trust_1"] == after

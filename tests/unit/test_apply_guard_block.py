"""A guard that refuses at apply time (on the hub Terraform's own plan) ends the run with
exit 3, like a plan-time block, unless something else really failed too.

The Terraform executor is replaced here because the offline stand-in root can only hold
`terraform_data` resources, which no guard protects; the real guard is tested on plan JSON
in tests/e2e/test_apply_flows.py, and the wrapper refusing with real terraform in
tests/integration/test_terraform.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from flipgitops.engine import apply as engine
from flipgitops.engine import executors
from flipgitops.errors import GuardBlocked
from flipgitops.model.plan import Action, ActionKind

REFUSAL = "FG007: aws_ecs_service.fl_server_net_1[0] would change (update)"


def refuse(ctx: Any, actions: Any) -> Any:
    raise GuardBlocked(REFUSAL)


def conclude(result: engine.ApplyResult) -> engine.ApplyResult:
    nothing = cast(Any, None)
    engine._conclude(nothing, Path("."), nothing, result, nothing, {})
    return result


def test_guard_refusal_is_exit_3_and_a_real_failure_is_exit_1(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(executors.EXECUTORS, ActionKind.TERRAFORM_APPLY,
                        executors.Executor(run=refuse))
    tf = Action(id="terraform.apply", kind=ActionKind.TERRAFORM_APPLY, target="flip_root")
    outcome = engine._run_group(cast(Any, None), [tf])["terraform.apply"]
    assert not outcome.ok and outcome.blocked and outcome.message == REFUSAL

    blocked = engine.ApplyResult("prod", 0, "", completed=["hub_secret.update"],
                                 failed={"terraform.apply": REFUSAL},
                                 guard_blocked=["terraform.apply"])
    assert conclude(blocked).exit_code == engine.EXIT_BLOCKED
    assert "blocked at apply time" in blocked.message
    assert blocked.to_json()["failed"] == [
        {"id": "terraform.apply", "message": REFUSAL, "blocked": True}]

    mixed = engine.ApplyResult("prod", 0, "", failed={"terraform.apply": REFUSAL,
                                                      "host.deliver:Trust_1": "ssh refused"},
                               guard_blocked=["terraform.apply"])
    assert conclude(mixed).exit_code == engine.EXIT_FAILED

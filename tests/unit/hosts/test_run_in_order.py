"""Several steps of one host in one host program run: order, gating on `after`, secrets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flipgitops.reconcilers.ansible.flipgitops_host import runner, steps


def _registry(calls: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    def ok(name: str) -> Any:
        def step(spec: Mapping[str, Any]) -> tuple[bool, str]:
            calls.append((name, dict(spec)))
            return True, f"{name} done"
        return step

    def broken(spec: Mapping[str, Any]) -> tuple[bool, str]:
        calls.append(("start_stack", dict(spec)))
        raise steps.StepError("`docker compose up` failed: no such network")

    return {"provision": ok("provision"), "write_kit_file": ok("write_kit_file"),
            "deliver_fl_kit": ok("deliver_fl_kit"), "start_stack": broken,
            "verify": ok("verify")}


def test_steps_run_in_order_and_a_failure_stops_only_what_depends_on_it() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    items = [
        {"key": "p", "step": "provision", "spec": {"a": 1}, "after": []},
        {"key": "w", "step": "write_kit_file", "spec": {"b": 2}, "after": ["p"]},
        {"key": "d", "step": "deliver_fl_kit", "spec": {}, "after": ["p"]},
        {"key": "s", "step": "start_stack", "spec": {}, "after": ["w", "d"]},
        {"key": "v", "step": "verify", "spec": {}, "after": ["s"]},
        {"key": "x", "step": "verify", "spec": {}, "after": ["missing"]},
    ]
    secret = {"w": json.dumps({"content": "TRUST_API_KEY=k3y"})}
    got = runner.run_in_order(items, secret, _registry(calls))
    assert [name for name, _ in calls] == ["provision", "write_kit_file", "deliver_fl_kit",
                                           "start_stack"]
    assert calls[1][1] == {"b": 2, "content": "TRUST_API_KEY=k3y"}  # secret joined, own only
    assert "content" not in calls[2][1]
    assert got["p"] == {"ok": True, "changed": True, "msg": "provision done"}
    assert got["s"] == {"ok": False, "changed": False,
                        "msg": "`docker compose up` failed: no such network"}
    assert got["v"]["skipped"] and got["v"]["after"] == "s" and not got["v"]["ok"]
    assert got["x"]["after"] == "missing"  # a step that never came (not built) blocks too


def test_an_unknown_step_fails_alone() -> None:
    got = runner.run_in_order([{"key": "k", "step": "rm_rf", "spec": {}}], {}, {})
    assert got == {"k": {"ok": False, "changed": False, "msg": "unknown host step rm_rf"}}


def test_every_host_kind_has_a_step_function() -> None:
    from flipgitops.model.actions import HOST_KINDS, KINDS

    assert {KINDS[k].host_step for k in HOST_KINDS} == set(steps.STEPS)

"""register_trust tasks of a wave: started in the manifest's order (FLIP's slots are claimed
in start order), earlier runs' tasks listed once, then waited for and judged side by side;
and `side_by_side` itself."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from flipgitops.adapters.ecs_tasks import TaskInfo
from flipgitops.engine.executors import ExecContext, side_by_side
from flipgitops.engine.hub_executors import register_trusts
from flipgitops.engine.ports import Ports
from flipgitops.model.actions import Action, ActionKind
from flipgitops.model.observed import ObservedLedger
from tests.builders import manifest, observed_matching

PREFIX = "/flip/trust-kits/ephemeral/"


class _Hub:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.listings = 0
        self.kits: dict[str, str] = {}
        self.waiting = 0
        self.most_waiting = 0
        self._lock = threading.Lock()

    def running_tasks(self, started_by: str) -> list[TaskInfo]:
        self.listings += 1
        return []

    def run_task(self, command: list[str], started_by: str) -> TaskInfo:
        name = command[command.index("--name") + 1] if "--name" in command else "?"
        self.started.append(name)
        parameter = next(c for c in command if c.startswith(PREFIX))
        self.kits[parameter] = json.dumps([{
            "trust_id": f"id-{name}", "trust_name": name, "trust_api_key": f"k-{name}",
            "trust_internal_service_key": f"i-{name}", "fl_kit_slot": f"slot-{name}"}])
        return TaskInfo(arn=f"arn:aws:ecs:eu-west-2:1:task/c/{name}", status="RUNNING",
                        desired_status="RUNNING", command=tuple(command))

    def wait_task(self, task: TaskInfo, what: str, report: Any) -> TaskInfo:
        with self._lock:
            self.waiting += 1
            self.most_waiting = max(self.most_waiting, self.waiting)
        time.sleep(0.2)
        with self._lock:
            self.waiting -= 1
        return TaskInfo(arn=task.arn, status="STOPPED", desired_status="STOPPED")

    def read_parameter(self, name: str) -> str | None:
        return self.kits.get(name)

    def delete_parameter(self, name: str) -> None:
        self.kits.pop(name, None)

    def delete_task_log(self, task_id: str) -> None:
        pass


class _Escrow:
    def __init__(self) -> None:
        self.written: list[str] = []

    def read_kit(self, trust: str) -> None:
        return None

    def write_kit(self, trust: str, held: Any) -> None:
        self.written.append(trust)


class _State:
    def __init__(self) -> None:
        self.ledger = ObservedLedger()
        self._lock = threading.Lock()

    def update_ledger(self, fn: Any) -> ObservedLedger:
        with self._lock:
            self.ledger = fn(self.ledger)
            return self.ledger


def test_starts_keep_the_manifest_order_and_the_waits_overlap(tmp_path: Path) -> None:
    m = manifest(trusts=5)
    hub, escrow, state = _Hub(), _Escrow(), _State()
    ports = Ports(hub=hub, escrow=escrow, state=state,  # type: ignore[arg-type]
                  hosts=None, kits=None, release=None)  # type: ignore[arg-type]
    ctx = ExecContext(manifest=m, manifest_dir=tmp_path, observed=observed_matching(m),
                      ports=ports)
    names = [t.name for t in m.trusts]
    actions = [Action(id=f"registry.register:{n}", kind=ActionKind.REGISTRY_REGISTER, target=n,
                      params={"name": n, "code": f"T{i}", "credentials_generation": 1,
                              "database_generation": 1,
                              "ephemeral_parameter": f"{PREFIX}flipgitops-dev-{n}-c1-d1"})
               for i, n in enumerate(names)]
    started = time.monotonic()
    out = register_trusts(ctx, actions)
    took = time.monotonic() - started
    assert hub.started == names  # FLIP claims slots in this order
    assert hub.listings == 1  # earlier runs' tasks: once for the wave, not once per trust
    assert all(out[a.id].ok for a in actions), out
    assert sorted(escrow.written) == sorted(names)
    assert sorted(state.ledger.trusts) == sorted(names)
    assert hub.most_waiting > 1 and took < 0.2 * len(names), (hub.most_waiting, took)


def test_side_by_side_keeps_the_order_and_raises_what_a_call_raised() -> None:
    def slow_square(n: int) -> int:
        time.sleep(0.05 * (5 - n))
        return n * n

    assert side_by_side(slow_square, [1, 2, 3, 4]) == [1, 4, 9, 16]
    assert side_by_side(slow_square, []) == []

    def boom(n: int) -> int:
        if n == 2:
            raise RuntimeError("two")
        return n

    with pytest.raises(RuntimeError, match="two"):
        side_by_side(boom, [1, 2, 3])

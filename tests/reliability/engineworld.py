"""The real apply engine over a hand-built world (tests/builders.py), for engine tests.

`World` is one environment: a manifest, what is live, and trust hosts that play a host step
the way `simulate_apply` says (an in-memory HostPort of our own port, not a stand-in for
Ansible: the host adapter has its own tests on real runs). `make_run` gives the engine's
`Run` with the real planner; `ListJournal` keeps a run's journal lines in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from flipgitops.core.planner import plan
from flipgitops.engine.apply import Interrupt, Run
from flipgitops.engine.executors import ExecContext
from flipgitops.engine.ports import Ports
from flipgitops.engine.ports_hosts import HostResult, HostStep, HostTask
from flipgitops.model.actions import ActionKind
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Plan, PlanOptions
from tests.builders import simulate_apply


class World:
    """One environment: a manifest, what is live, and hosts that change it when told."""

    def __init__(self, m: Manifest, observed: ObservedState) -> None:
        self.m = m
        self.observed = observed
        self.recorded: list[str] = []
        self.host_runs: list[str] = []
        self.on_host_run: Any = None  # called before a host run (the "bad day")
        self.interrupt = Interrupt()

    # -- the HostPort (only what host executors call) --------------------------------------

    def run(self, kind: ActionKind, tasks: Sequence[HostTask], *,
            cancel: Any = None) -> dict[str, HostResult]:
        if self.on_host_run is not None:
            self.on_host_run(kind)
        self.host_runs.append(str(kind))
        fresh = plan(self.m, self.observed)
        names = {t.target.trust for t in tasks}
        done = [a for a in fresh.actions if a.kind == kind and a.target in names]
        self.observed = simulate_apply(self.m, self.observed, done)
        return {n: HostResult(n, True, True, f"{kind}: done") for n in names}

    def run_steps(self, steps: Sequence[HostStep], *,
                  cancel: Any = None) -> dict[str, HostResult]:
        """A chain of host waves: each kind's steps as one `run`, in the order given; a
        step after a key that did not succeed is skipped, as the real port does."""
        out: dict[str, HostResult] = {}
        kinds: dict[ActionKind, list[HostStep]] = {}
        for s in steps:
            kinds.setdefault(s.kind, []).append(s)
        for kind, batch in kinds.items():
            ready = [s for s in batch if all(out.get(a) is not None and out[a].ok
                                             for a in s.after)]
            for s in batch:
                if s not in ready:
                    out[s.key] = HostResult(s.task.target.trust, False, False,
                                            f"not run: {s.after[0]} did not succeed",
                                            skipped_after=s.after[0])
            if ready:
                done = self.run(kind, [s.task for s in ready], cancel=cancel)
                out.update((s.key, done[s.task.target.trust]) for s in ready)
        return out

    def run_steps_then_gather(self, steps: Sequence[HostStep], facts_after: Any, *,
                              cancel: Any = None) -> tuple[dict[str, HostResult], dict[str, Any]]:
        """Takes no facts: the re-observation gathers every host itself."""
        return self.run_steps(steps, cancel=cancel), {}

    def resolve_references(self, refs: Any, *, region: str | None = None) -> dict[str, Any]:
        return {}

    # -- the Run ---------------------------------------------------------------------------

    def observe_and_plan(self) -> tuple[ObservedState, Plan]:
        return self.observed, plan(self.m, self.observed)

    def context(self, observed: ObservedState, p: Plan) -> ExecContext:
        ports = Ports(hub=None, escrow=None, state=None, hosts=self,  # type: ignore[arg-type]
                      kits=None, release=None)  # type: ignore[arg-type]
        return ExecContext(manifest=self.m, manifest_dir=Path("."), observed=observed,
                           ports=ports, cancel=self.interrupt.is_set)

    def record(self, observed: ObservedState, p: Plan) -> str:
        self.recorded.append(p.fingerprint)
        return "c0ffee"

    def make_run(self, journal: Any = None) -> Run:
        return Run(manifest=self.m, manifest_path=Path("environments/dev.yaml"),
                   options=PlanOptions(), observe_and_plan=self.observe_and_plan,
                   context=self.context, journal=journal, interrupt=self.interrupt,
                   record_converged=self.record, run_id="20260101T000000Z-0badda7a")


class ListJournal:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def event(self, event: str, **fields: Any) -> None:
        self.lines.append({"event": event, **fields})

    def start(self, action: Any) -> None:
        self.event("action.start", action=action.id)

    def finish(self, action: Any, *, changed: bool | None = None,
               message: str | None = None) -> None:
        self.event("action.finish", action=action.id)

    def failure(self, action: Any, error: str) -> None:
        self.event("action.failure", action=action.id)

    def skipped(self, action: Any, reason: str) -> None:
        self.event("action.not_run", action=action.id, reason=reason)

    def hold(self) -> AbstractContextManager[None]:
        return nullcontext()  # every event is in the list at once

    def flush(self) -> None:
        return None

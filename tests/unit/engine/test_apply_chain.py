"""The engine runs consecutive host waves as ONE host run (HostPort.run_steps), keeping
"a failure stops only what depends on it" (a fake HostPort that honours `after`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flipgitops.engine.apply import Run, execute
from flipgitops.engine.executors import ExecContext
from flipgitops.engine.ports import Ports
from flipgitops.engine.ports_hosts import HostResult, HostStep, HostTarget, HostTask
from flipgitops.model.actions import Action, ActionKind
from flipgitops.model.plan import Plan, PlanOptions
from tests.builders import manifest, observed_matching

K = ActionKind


class FakeHosts:
    """Records each run; a step listed in ``fail`` fails, one behind it is skipped."""

    def __init__(self, fail: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.fail = fail
        self.runs: list[tuple[str, list[str]]] = []
        self.afters: dict[str, tuple[str, ...]] = {}
        self.facts_asked: list[list[str]] = []
        self.no_facts: set[str] = set()

    def gather(self, targets: Sequence[Any]) -> dict[str, Any]:
        return {}

    def run(self, kind: ActionKind, tasks: Sequence[HostTask], *,
            cancel: Any = None) -> dict[str, HostResult]:
        self.runs.append((f"run {kind}", [t.target.trust for t in tasks]))
        return {t.target.trust: HostResult(t.target.trust, True, True, f"{kind} ok")
                for t in tasks}

    def run_steps(self, steps: Sequence[HostStep], *,
                  cancel: Any = None) -> dict[str, HostResult]:
        self.runs.append(("run_steps", [s.key for s in steps]))
        out: dict[str, HostResult] = {}
        for s in steps:
            trust = s.task.target.trust
            self.afters[s.key] = s.after
            blocker = next((k for k in s.after if not out[k].ok), None) if s.after else None
            if blocker:
                out[s.key] = HostResult(trust, False, False, f"not run: {blocker}",
                                        skipped_after=blocker)
            elif s.key in self.fail:
                out[s.key] = HostResult(trust, False, False, "failed: compose up")
            else:
                out[s.key] = HostResult(trust, True, True, "ok")
        return out

    def run_steps_then_gather(self, steps: Sequence[HostStep], facts_after: Any, *,
                              cancel: Any = None) -> tuple[dict[str, HostResult], dict[str, Any]]:
        """Facts of every ``facts_after`` target but those in ``no_facts``."""
        self.facts_asked.append([t.trust for t in facts_after])
        return self.run_steps(steps, cancel=cancel), {
            t.trust: f"facts of {t.trust}" for t in facts_after if t.trust not in self.no_facts}

    def resolve_references(self, refs: Mapping[str, str], **_: Any) -> dict[str, Any]:
        return {}


def _action(kind: ActionKind, trust: str, *deps: str, **params: Any) -> Action:
    return Action(id=f"{kind}:{trust}", kind=kind, target=trust, params=params,
                  depends_on=deps)


def _apply(plan: Plan, hosts: FakeHosts, *, dry_run: bool = False,
           remembered: list[dict[str, Any]] | None = None) -> Any:
    m = manifest(trusts=2)
    observed = observed_matching(m)
    empty = plan.model_copy(update={"actions": (), "waves": ()})
    plans = iter([plan, empty])
    ports = Ports(hub=None, escrow=None, state=None, hosts=hosts, kits=None,  # type: ignore[arg-type]
                  release=None)

    def context(o: Any, p: Plan) -> ExecContext:
        return ExecContext(manifest=m, manifest_dir=Path("/tmp"), observed=o, ports=ports,
                           dry_run=dry_run)

    run = Run(manifest=m, manifest_path=Path("/tmp/dev.yaml"), options=PlanOptions(),
              observe_and_plan=lambda: (observed, next(plans)), context=context,
              dry_run=dry_run)
    if remembered is not None:
        run.facts_targets = lambda: [HostTarget.of(m, t) for t in m.trusts if t.host]
        run.remember_facts = lambda facts: remembered.append(dict(facts))
    return execute(run)


def _plan(waves: list[list[Action]]) -> Plan:
    return Plan(environment="dev", fingerprint="sha256:test",
                actions=tuple(a for w in waves for a in w),
                waves=tuple(tuple(a.id for a in w) for w in waves))


def _stack(trust: str, *deps: str) -> Action:
    return _action(K.HOST_START_STACK, trust, *deps, hub_tag="v2.3.0", fl_tag="v2.3.0")


def _verify(trust: str, *deps: str) -> Action:
    return _action(K.HOST_VERIFY, trust, *deps, expect_trust=trust)


def test_host_waves_are_one_run_and_a_failure_stops_only_its_dependents() -> None:
    s1, s2 = _stack("Trust_1"), _stack("Trust_2")
    v1, v2 = _verify("Trust_1", s1.id), _verify("Trust_2", s2.id)
    hosts = FakeHosts(fail={s1.id})
    result = _apply(_plan([[s1, s2], [v1, v2]]), hosts)
    assert hosts.runs == [("run_steps", [s1.id, s2.id, v1.id, v2.id])]
    assert hosts.afters[v1.id] == (s1.id,) and hosts.afters[s1.id] == ()
    assert result.failed == {s1.id: "failed: compose up"}
    assert result.completed == [s2.id, v2.id]
    assert result.not_run == [v1.id]
    assert result.not_run_reasons[v1.id] == f"depends on failed {s1.id}"
    assert result.exit_code == 1


def test_a_dependency_on_another_hosts_step_splits_the_run() -> None:
    s1, s2 = _stack("Trust_1"), _stack("Trust_2")
    v2 = _verify("Trust_2", s1.id)  # Trust_2 waits for Trust_1's stack: not in one host run
    hosts = FakeHosts()
    result = _apply(_plan([[s1, s2], [v2]]), hosts)
    assert hosts.runs == [("run host.start_stack", ["Trust_1", "Trust_2"]),
                          ("run host.verify", ["Trust_2"])]
    assert result.converged and result.exit_code == 0


def test_a_dry_run_never_runs_steps() -> None:
    s1 = _stack("Trust_1")
    hosts = FakeHosts()
    result = _apply(_plan([[s1], [_verify("Trust_1", s1.id)]]), hosts, dry_run=True)
    assert hosts.runs == [] and result.exit_code == 0 and len(result.completed) == 2


def test_the_host_run_takes_every_hosts_facts_for_the_re_observation() -> None:
    # Both hosts' facts come from the chain's run, also Trust_2's, which has no step in it;
    # a host whose facts were not taken is simply not handed on (it is gathered again).
    s1 = _stack("Trust_1")
    hosts = FakeHosts()
    hosts.no_facts = {"Trust_2"}
    remembered: list[dict[str, Any]] = []
    result = _apply(_plan([[s1], [_verify("Trust_1", s1.id)]]), hosts, remembered=remembered)
    assert result.converged
    assert hosts.facts_asked == [["Trust_1", "Trust_2"]]
    assert [{k: v[1] for k, v in r.items()} for r in remembered] == [
        {}, {"Trust_1": "facts of Trust_1"}]
    target, _ = remembered[-1]["Trust_1"]
    assert target.trust == "Trust_1"


def test_an_action_after_the_host_run_voids_its_facts() -> None:
    # Wave 3 runs on its own after the chain: what it changes, the chain's facts may miss.
    s1, s2 = _stack("Trust_1"), _stack("Trust_2")
    v1 = _verify("Trust_1", s1.id)
    v2 = _verify("Trust_2", s1.id)  # another host's step: not part of the chain
    hosts = FakeHosts()
    remembered: list[dict[str, Any]] = []
    result = _apply(_plan([[s1, s2], [v1], [v2]]), hosts, remembered=remembered)
    assert result.converged
    assert hosts.runs[0][0] == "run_steps" and hosts.runs[-1] == ("run host.verify", ["Trust_2"])
    assert remembered[-1] == {}


def test_a_dry_run_takes_no_facts() -> None:
    s1 = _stack("Trust_1")
    hosts = FakeHosts()
    remembered: list[dict[str, Any]] = []
    _apply(_plan([[s1], [_verify("Trust_1", s1.id)]]), hosts, dry_run=True,
           remembered=remembered)
    assert hosts.facts_asked == [] and all(r == {} for r in remembered)

"""What a planner phase returns, and how fragments become one ordered plan.

A phase is a pure function of the planning context (and, where it must order itself after
another phase's actions, of the fragments before it, passed explicitly). It returns a
`Fragment`; `assemble()` merges them, refuses a dependency on an id no phase planned (a bug,
raised loudly, never a silently dropped ordering edge), and orders the result into waves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from flipgitops.core.ordering import ordered
from flipgitops.model.actions import Action, ActionKind, Params, RedeployParams


class PlanningError(ValueError):
    """The planner built something inconsistent: a bug in flipgitops, never operator input."""


@dataclass(frozen=True)
class Spec:
    id: str
    kind: ActionKind
    target: str
    params: Params
    deps: frozenset[str] = frozenset()
    description: str = ""


@dataclass
class Fragment:
    specs: list[Spec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unknown: set[str] = field(default_factory=set)
    left_behind: set[str] = field(default_factory=set)

    def add(self, id_: str, kind: ActionKind, target: str, params: Params, *,
            deps: Iterable[str] = (), description: str = "") -> str:
        self.specs.append(Spec(id_, kind, target, params, frozenset(deps), description))
        return id_

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def has(self, id_: str) -> bool:
        return any(s.id == id_ for s in self.specs)


def planned(fragments: Iterable[Fragment]) -> frozenset[str]:
    """Ids planned by ``fragments`` (what a later phase may depend on)."""
    return frozenset(s.id for f in fragments for s in f.specs)


def _merge(a: Spec, b: Spec) -> Spec:
    """Two phases may ask for the same redeploy (a schema reset and a registry change both
    need flip-api restarted): one action with both reasons and both sets of dependencies."""
    if a.kind != b.kind or a.target != b.target or a.kind != ActionKind.HUB_REDEPLOY:
        raise PlanningError(f"two different actions share the id {a.id}")
    pa, pb = a.params, b.params
    assert isinstance(pa, RedeployParams) and isinstance(pb, RedeployParams)
    reasons = [*pa.reason.split("; "), *(r for r in pb.reason.split("; ")
                                        if r not in pa.reason.split("; "))]
    reason = "; ".join(reasons)
    return Spec(a.id, a.kind, a.target, RedeployParams(role=pa.role, reason=reason),
                a.deps | b.deps, a.description.split(" (")[0] + f" ({reason})")


def assemble(fragments: Iterable[Fragment]) -> tuple[tuple[Action, ...],
                                                      tuple[tuple[str, ...], ...]]:
    specs: dict[str, Spec] = {}
    for fragment in fragments:
        for spec in fragment.specs:
            specs[spec.id] = _merge(specs[spec.id], spec) if spec.id in specs else spec
    for spec in specs.values():
        missing = sorted(d for d in spec.deps if d not in specs)
        if missing:
            raise PlanningError(f"{spec.id} depends on {', '.join(missing)}, which no phase "
                                "planned")
    actions = [
        Action(id=s.id, kind=s.kind, target=s.target, params=s.params,
               depends_on=tuple(sorted(s.deps - {s.id})), description=s.description)
        for s in specs.values()
    ]
    return ordered(actions)

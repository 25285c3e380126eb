"""Dependency waves: which actions may run together, and in what order the waves go.

A wave is every action whose dependencies all finished in earlier waves, so executors can
run one wave in parallel (one Ansible run over many hosts) and still respect every edge.
Ids inside a wave are sorted so the same graph always yields the same order.
"""

from __future__ import annotations

import graphlib
from collections import Counter
from collections.abc import Iterable, Sequence

from flipgitops.model.actions import Action


class DependencyCycleError(ValueError):
    """The planner built a cycle; this is a bug in the planner, never an operator error."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = tuple(cycle)
        super().__init__("action dependency cycle: " + " -> ".join(self.cycle))


class UnknownDependencyError(ValueError):
    """An action depends on an id that is not in the plan."""


def waves(actions: Iterable[Action]) -> tuple[tuple[str, ...], ...]:
    acts = list(actions)
    ids = [a.id for a in acts]
    dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
    if dupes:
        raise ValueError(f"duplicate action ids: {', '.join(dupes)}")
    known = set(ids)
    graph: dict[str, set[str]] = {}
    for a in acts:
        missing = sorted(set(a.depends_on) - known)
        if missing:
            raise UnknownDependencyError(
                f"action {a.id} depends on {', '.join(missing)}, which is not in the plan"
            )
        graph[a.id] = set(a.depends_on)
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise DependencyCycleError(list(exc.args[1])) from None
    out: list[tuple[str, ...]] = []
    while sorter.is_active():
        ready = tuple(sorted(sorter.get_ready()))
        out.append(ready)
        sorter.done(*ready)
    return tuple(out)


def ordered(actions: Iterable[Action]) -> tuple[tuple[Action, ...], tuple[tuple[str, ...], ...]]:
    """Actions in execution order (wave by wave, id order inside a wave), and the waves."""
    acts = list(actions)
    by_id = {a.id: a for a in acts}
    ws = waves(acts)
    return tuple(by_id[i] for wave in ws for i in wave), ws

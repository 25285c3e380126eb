"""The planning context: the world, the options, and the differing facts phases act on."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from flipgitops.core.facts import FactValue, differing
from flipgitops.core.world import World
from flipgitops.model.plan import PlanOptions


@dataclass(frozen=True)
class Ctx:
    w: World
    opts: PlanOptions

    @cached_property
    def gaps(self) -> dict[tuple[str, str | None], FactValue]:
        """Differing facts, keyed by (fact id, trust name or hub role)."""
        return {(v.fact.id, v.subject.name or v.subject.role): v for v in differing(self.w)}

    def gap(self, fact_id: str, name: str | None = None) -> FactValue | None:
        return self.gaps.get((fact_id, name))

    def has_gap(self, fact_id: str, name: str | None = None) -> bool:
        return (fact_id, name) in self.gaps

    @cached_property
    def _by_fact(self) -> dict[str, list[FactValue]]:
        out: dict[str, list[FactValue]] = {}
        for (fid, _), v in sorted(self.gaps.items(), key=lambda kv: str(kv[0])):
            out.setdefault(fid, []).append(v)
        return out

    @cached_property
    def _by_subject(self) -> dict[str | None, frozenset[str]]:
        out: dict[str | None, set[str]] = {}
        for fid, who in self.gaps:
            out.setdefault(who, set()).add(fid)
        return {who: frozenset(ids) for who, ids in out.items()}

    def gaps_of(self, fact_id: str) -> list[FactValue]:
        return list(self._by_fact.get(fact_id, ()))

    def facts_differing_for(self, name: str | None) -> frozenset[str]:
        """The ids of the differing facts about one trust (or hub role)."""
        return self._by_subject.get(name, frozenset())

    def leaving(self, name: str) -> bool:
        """A trust this plan takes away: decommissioned, or unmanaged with --prune."""
        trust = self.w.by_name.get(name)
        if trust is not None:
            return trust.state == "decommissioned"
        return self.opts.prune and self.w.actionable(name)

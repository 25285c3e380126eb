"""Drift: every difference between the manifest and live state, graded for the nightly report.

Pure: (desired, observed) -> DriftReport. Drift compares nothing itself: it grades the
differing values of the facts table (`core/facts.py`), the same values the planner acts on,
and adds the guard violations the planner would raise (a wrong account, a wrong registry
era), so `drift` is in sync exactly when `plan` has nothing to do or report. A host that
could not be reached is always reported as *unknown*: silence about it would read as in sync.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from flipgitops.core.facts import differing
from flipgitops.core.world import World
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Finding

_GROUP_ORDER = {"changed": 0, "missing": 1, "unmanaged": 2, "unknown": 3}
_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


class DriftReport(BaseModel):
    """Findings for one environment, ordered by group, severity, target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    environment: str
    findings: tuple[Finding, ...] = ()
    observed_at: str | None = None

    @property
    def in_sync(self) -> bool:
        return not self.findings

    def by_group(self, group: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.group == group)

    def severity_counts(self) -> dict[str, int]:
        out = dict.fromkeys(_SEVERITY_ORDER, 0)
        for f in self.findings:
            out[f.severity] += 1
        return out


def drift_report(desired: Manifest, observed: ObservedState) -> DriftReport:
    world = World(desired, observed)
    findings: dict[tuple[str, str, str], Finding] = {}
    for value in differing(world):
        target = (f"host:{value.subject.name}" if value.fact.scope == "host"
                  else f"trust:{value.subject.name}" if value.subject.name
                  else value.path)
        finding = Finding(group=value.group, severity=value.fact.severity, target=target,
                          message=value.text(world), fact=value.fact.id,
                          fix=value.fix_text(world))
        findings[(finding.group, finding.target, finding.message)] = finding
    ordered = sorted(findings.values(), key=lambda f: (
        _GROUP_ORDER[f.group], _SEVERITY_ORDER[f.severity], f.target, f.message))
    return DriftReport(environment=desired.environment, findings=tuple(ordered),
                       observed_at=observed.observed_at)

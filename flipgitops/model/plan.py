"""Changes, guard violations, drift findings and the plan: the data the core hands on.

A Plan is JSON-serialisable and deterministic for the same inputs, so a reviewed plan file
can be compared with a fresh one by fingerprint. Actions (model/actions.py) carry no secret.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flipgitops.model.actions import Action

FORMAT_VERSION = "1"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


ChangeOp = Literal["add", "remove", "change"]


class Change(Frozen):
    """One semantic difference between desired and observed, keyed by identity not index.

    ``path`` is dotted and uses identities, e.g. ``trusts.Trust_2.public_ip``.
    """

    op: ChangeOp
    path: str
    before: Any = None
    after: Any = None

    def describe(self) -> str:
        if self.op == "add":
            return f"{self.path}: (absent) → {_show(self.after)}"
        if self.op == "remove":
            return f"{self.path}: {_show(self.before)} → (absent)"
        return f"{self.path}: {_show(self.before)} → {_show(self.after)}"


def _show(value: Any) -> str:
    return "(none)" if value is None else str(value)


class Violation(Frozen):
    """A guard firing: which guard, on what, and how to proceed."""

    guard: str  # FG001..FG013
    target: str
    message: str
    how_to_proceed: str
    overridable: bool = True
    allowed: bool = False  # overridden with --allow (or --fl-quiesced for FG007)


Group = Literal["changed", "missing", "unmanaged", "unknown"]
Severity = Literal["critical", "high", "medium", "low"]


class Finding(Frozen):
    """A drift finding for reports: grouped and graded, with the fix an operator applies."""

    group: Group
    severity: Severity
    target: str
    message: str
    fact: str = ""  # the fact id of core/facts.py it grades
    fix: str = ""  # what to do about it (apply, or a manual step)


class PlanOptions(Frozen):
    """Operator choices that change what is planned or what guards let through."""

    prune: bool = False
    allow: frozenset[str] = frozenset()
    fl_quiesced: bool = False
    # `terraform show -json` of the hub's Terraform plan (terraform allowlist); the engine
    # produces it read-only at plan time, guards (FG002/FG007/FG008) read it.
    terraform_plan: dict[str, Any] | None = None

    def decision_inputs(self) -> dict[str, Any]:
        """What the fingerprint covers: the options decisions are made from."""
        return {"prune": self.prune}


class Confirmation(Frozen):
    """Which evidence of the hub itself backs a trust's registration in this observation."""

    trust: str
    confirmed_by: tuple[str, ...] = ()  # "admin api", "trust-api authenticated", ...
    ledger_only: bool = False


class Plan(Frozen):
    format_version: str = FORMAT_VERSION
    environment: str
    fingerprint: str = Field(description="sha256 of the decision inputs; see apply --plan.")
    changes: tuple[Change, ...] = ()
    actions: tuple[Action, ...] = ()  # in execution order (wave by wave, then by id)
    waves: tuple[tuple[str, ...], ...] = ()  # action ids per wave
    violations: tuple[Violation, ...] = ()
    unmanaged: tuple[str, ...] = ()  # live things not in the manifest (pruned only with --prune)
    left_behind: tuple[str, ...] = ()  # paused trusts not moved by an FL upgrade
    unknown: tuple[str, ...] = ()  # unreachable hosts: facts unknown
    advisories: tuple[str, ...] = ()  # differences flipgitops reports but never acts on
    confirmations: tuple[Confirmation, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.actions

    @property
    def in_sync(self) -> bool:
        """Nothing to do and nothing to report: what `drift` calls in sync."""
        return not (self.actions or self.violations or self.unmanaged or self.unknown
                    or self.advisories)

    @property
    def blocked(self) -> bool:
        return any(not v.allowed for v in self.violations)

    def action(self, action_id: str) -> Action:
        return next(a for a in self.actions if a.id == action_id)

"""User-facing output for every report: text for terminals, markdown for PRs and issues,
json for machines; and reading a plan file back.

The engine and CLI call only these functions, so the three formats stay in step. Every
value a report carries is data (manifest text, AWS text, host log lines): text strips its
control characters, markdown escapes it so it cannot restructure a comment (`md.py`), json
encodes it.
"""

from __future__ import annotations

from flipgitops.core.drift import DriftReport
from flipgitops.core.render.json_out import (
    render_drift_json,
    render_observed_json,
    render_plan_json,
)
from flipgitops.core.render.markdown import (
    MAX_CHARS,
    render_drift_markdown,
    render_observed_markdown,
    render_plan_markdown,
)
from flipgitops.core.render.planfile import PlanFileError, load_manifest_change, load_plan_json
from flipgitops.core.render.text import render_drift_text, render_observed_text, render_plan_text
from flipgitops.errors import FlipGitopsError
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Change, Plan

FORMATS = ("text", "markdown", "json")

__all__ = [
    "FORMATS",
    "MAX_CHARS",
    "PlanFileError",
    "load_manifest_change",
    "load_plan_json",
    "render_drift",
    "render_observed",
    "render_plan",
]


def _check(fmt: str) -> None:
    if fmt not in FORMATS:
        raise FlipGitopsError(f"unknown output format {fmt!r}; use one of {', '.join(FORMATS)}")


def render_plan(plan: Plan, fmt: str, *, color: bool = False,
                manifest_change: tuple[Change, ...] | None = None,
                artifact_name: str = "plan.json") -> str:
    _check(fmt)
    if fmt == "json":
        return render_plan_json(plan, manifest_change=manifest_change)
    if fmt == "markdown":
        return render_plan_markdown(plan, manifest_change=manifest_change,
                                    artifact_name=artifact_name)
    return render_plan_text(plan, color=color, manifest_change=manifest_change)


def render_observed(state: ObservedState, fmt: str, *, color: bool = False) -> str:
    _check(fmt)
    if fmt == "json":
        return render_observed_json(state)
    if fmt == "markdown":
        return render_observed_markdown(state)
    return render_observed_text(state, color=color)


def render_drift(report: DriftReport, fmt: str, *, color: bool = False) -> str:
    _check(fmt)
    if fmt == "json":
        return render_drift_json(report)
    if fmt == "markdown":
        return render_drift_markdown(report)
    return render_drift_text(report, color=color)

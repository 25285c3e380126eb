"""Machine output: stable, sorted JSON. A plan's JSON is the artifact ``apply --plan`` reads.

Key order is sorted and indentation fixed so the same plan always gives the same bytes (a
reviewer can diff two artifacts; CI can cache by hash). Hashes are shortened everywhere the
output may carry one; a Plan never holds a secret, so its dump is loaded back as is.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from flipgitops.core.drift import DriftReport
from flipgitops.core.render._common import mask_hashes, waves
from flipgitops.errors import FlipGitopsError
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import FORMAT_VERSION, Change, Plan


class PlanFileError(FlipGitopsError):
    """A plan file could not be read back: wrong format version, not a plan, corrupt."""


def dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def render_plan_json(plan: Plan, *, manifest_change: tuple[Change, ...] | None = None) -> str:
    data: dict[str, Any] = plan.model_dump(mode="json")
    data["format_version"] = FORMAT_VERSION
    if manifest_change is not None:
        data["manifest_change"] = [c.model_dump(mode="json") for c in manifest_change]
    data["summary"] = {"blocked": plan.blocked, "actions": len(plan.actions),
                       "waves": len(waves(plan))}
    return dumps(data)


def load_plan_json(text: str) -> Plan:
    """The Plan a ``render_plan_json`` artifact holds (report-only keys are dropped)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanFileError(f"plan file is not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise PlanFileError("plan file is not a JSON object")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise PlanFileError(
            f"plan file format_version is {version!r}; this flipgitops reads {FORMAT_VERSION!r}"
        )
    data.pop("manifest_change", None)
    data.pop("summary", None)
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanFileError(f"plan file is not a valid plan: {exc.error_count()} error(s), "
                            f"first at {'.'.join(map(str, exc.errors()[0]['loc']))}") from None


def load_manifest_change(text: str) -> tuple[Change, ...] | None:
    """The manifest change recorded next to a plan, if the plan was made with ``--base``."""
    raw = json.loads(text).get("manifest_change")
    return None if raw is None else tuple(Change.model_validate(c) for c in raw)


def render_observed_json(state: ObservedState) -> str:
    data = mask_hashes(state.model_dump(mode="json"))
    data["format_version"] = FORMAT_VERSION
    return dumps(data)


def render_drift_json(report: DriftReport) -> str:
    data: dict[str, Any] = report.model_dump(mode="json")
    data.update(format_version=FORMAT_VERSION, in_sync=report.in_sync,
                counts=report.severity_counts(),
                groups={g: len(report.by_group(g))
                        for g in ("changed", "missing", "unmanaged", "unknown")})
    return dumps(mask_hashes(data))

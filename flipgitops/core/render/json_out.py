"""Machine output: stable, sorted JSON. A plan's JSON is the artifact ``apply --plan`` reads
(`planfile.load_plan_json`).

Key order is sorted, indentation fixed and non-ASCII escaped, so the same plan always gives
the same bytes (a reviewer can diff two artifacts; CI can cache by hash) and any text writes
to any file. A Plan holds no secret, but its ``changes`` quote fact values and some facts are
hashes of keys: those are shortened to ``sha256:<12 hex>`` like in every other output (the
fingerprint and the action params, which `apply` needs, carry no key material and stay whole).
"""

from __future__ import annotations

import json
from typing import Any

from flipgitops.core.drift import DriftReport
from flipgitops.core.render._common import mask_hashes, waves
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import FORMAT_VERSION, Change, Plan


def dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=True) + "\n"


def _changes(changes: tuple[Change, ...]) -> list[dict[str, Any]]:
    return [mask_hashes(c.model_dump(mode="json")) for c in changes]


def render_plan_json(plan: Plan, *, manifest_change: tuple[Change, ...] | None = None) -> str:
    data: dict[str, Any] = plan.model_dump(mode="json")
    data["format_version"] = FORMAT_VERSION
    data["changes"] = _changes(plan.changes)
    if manifest_change is not None:
        data["manifest_change"] = _changes(manifest_change)
    data["summary"] = {"blocked": plan.blocked, "in_sync": plan.in_sync,
                       "actions": len(plan.actions), "waves": len(waves(plan))}
    return dumps(data)


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

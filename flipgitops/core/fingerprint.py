"""Plan fingerprints: what `apply --plan` compares to refuse a stale reviewed plan.

The fingerprint covers what decisions are made from (the facts table's desired and observed
views, and the options that change what is planned), never volatile facts: an RDS instance in
its nightly `backing-up` window, a new secret version id or a re-registered task definition
ARN do not change a decision, so they must not fail the merge-to-main apply of a reviewed
plan. Volatile fields are simply not facts (`core/facts.py`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flipgitops.core.facts import views
from flipgitops.core.world import World
from flipgitops.model.plan import PlanOptions


def canonical_json(data: Any) -> str:
    """Stable JSON: sorted keys, no whitespace variance, so equal data hashes equal."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint(world: World, options: PlanOptions) -> str:
    want, have = views(world)
    payload = {"desired": want, "observed": have, "options": options.decision_inputs()}
    return "sha256:" + hashlib.sha256(canonical_json(payload).encode()).hexdigest()
